package raydeploy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// Where sshd refuses socket forwarding, the Docker client falls back to
// `docker system dial-stdio` in an SSH session.
func TestDockerFallsBackToDialStdio(t *testing.T) {
	env := testenv.NewCluster(t, 1)
	n := env.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := n.Run(ctx, "root", "sed -i 's/^AllowStreamLocalForwarding yes/AllowStreamLocalForwarding no/' /etc/ssh/sshd_config && kill -HUP 1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, known := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := (&Cluster{
		Name:     "fallback",
		SSH:      SSHConfig{User: testenv.DeployUser, KnownHostsFile: known, Auth: Auth{KeyFile: key}},
		Head:     Node{Name: n.Name, Address: n.Address},
		StateDir: filepath.Join(dir, "state"),
	}).WithDefaults()
	conn := newConnector(c, slog.New(slog.DiscardHandler))
	defer conn.close()
	node := c.Nodes()[0]

	// sshd took the new configuration once a streamlocal channel is refused.
	var lastErr error
	for ctx.Err() == nil {
		s, err := conn.ssh(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		sock, err := s.DialUnix(ctx, dockerSocket)
		if err != nil {
			lastErr = err
			break
		}
		sock.Close()
		conn.reconnect(ctx, node) // new login, new sshd configuration
	}
	if lastErr == nil || !forwardingRefused(lastErr) {
		t.Fatalf("socket forwarding still allowed: %v", lastErr)
	}

	e, err := conn.docker(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.ServerVersion(ctx)
	if err != nil {
		t.Fatalf("docker through dial-stdio: %v", err)
	}
	if !strings.Contains(v.Version, ".") {
		t.Errorf("engine version %q", v.Version)
	}
	if !conn.stdio[node.ID()] {
		t.Error("the connector did not record the fallback")
	}
}
