package imagerelay_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/internal/imagerelay"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
)

// TestRelayOnRealNodes relays an image through four testenv nodes (real
// sshd, dockerd and OpenSSH client) with one of them firewalled off from
// its peers: the controller sends the archive once, every reachable node
// holds the image with the archive's ID, the cut-off node is reported for a
// direct side-load, and no key, authorized_keys line or directory is left.
//
// Every hop's SSH connection is made before the bytes flow (no "not
// connected ahead" warning) and no relay process (the hops' connections
// included) outlives Distribute.
func TestRelayOnRealNodes(t *testing.T) {
	env := testenv.NewCluster(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ref = "raydeploy-relay/test:1"
	archive, wantID, err := hollow.ImageArchive(ref, "2.40.0", "3.11.2", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "image.tar")
	known := filepath.Join(dir, "known_hosts")
	for p, b := range map[string][]byte{file: archive, known: env.KnownHosts()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// node2 refuses SSH from its peers (the controller still reaches it).
	cut := env.Nodes[2]
	for _, n := range env.Nodes {
		if n != cut {
			if out, err := cut.Run(ctx, "root", fmt.Sprintf("iptables -I INPUT -p tcp --dport 22 -s %s -j REJECT", n.Address)); err != nil {
				t.Fatalf("firewall on %s: %v: %s", cut.Name, err, out)
			}
		}
	}
	var nodes []imagerelay.Node
	for _, n := range env.Nodes {
		c, err := sshx.Dial(ctx, sshx.Config{Host: n.Address, Port: n.Port, User: "root",
			Auth: sshx.Auth{Signers: []ssh.Signer{env.ClientKey}}, KnownHostsFile: known})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		nodes = append(nodes, imagerelay.Node{ID: n.Name, Conn: c, Address: n.Address, Port: n.Port})
	}
	var logs syncBuffer
	res, err := imagerelay.Distribute(ctx, file, nodes, imagerelay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("distribute: %v (result %+v)", err, res)
	}
	t.Logf("chains %v, skipped %v, arrived %v, failed %v", res.Chains, res.Skipped, res.Arrived, res.Failed)
	if !slices.Equal(res.Skipped, []string{cut.Name}) {
		t.Errorf("skipped %v, want [%s]", res.Skipped, cut.Name)
	}
	if strings.Contains(logs.String(), "not connected ahead") {
		t.Errorf("a hop was not connected before the bytes flowed:\n%s", logs.String())
	}
	if res.ControllerBytes != int64(len(archive)) {
		t.Errorf("controller sent %d bytes, want the archive once (%d)", res.ControllerBytes, len(archive))
	}
	for _, n := range env.Nodes {
		out, err := n.Run(ctx, "root", "docker image inspect --format '{{.Id}}' "+ref+" 2>&1; "+
			"ls -d ~/.raydeploy-relay.* 2>/dev/null; ps -C ssh,tee,tail -o args= | grep raydeploy-relay; grep -c raydeploy-relay ~/.ssh/authorized_keys 2>/dev/null; true")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[0]
		switch {
		case n == cut && got == wantID:
			t.Errorf("%s: has the image although its peers cannot reach it", n.Name)
		case n != cut && got != wantID:
			t.Errorf("%s: image ID %q, want %s", n.Name, got, wantID)
		}
		if !slices.Equal(lines[1:], []string{"0"}) { // nothing but no authorized_keys line
			t.Errorf("%s: relay leftovers (directories, processes, authorized_keys lines): %q", n.Name, lines[1:])
		}
		if n != cut && !slices.Contains(res.Loaded, n.Name) {
			t.Errorf("%s: not reported loaded", n.Name)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the relay's concurrent log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
