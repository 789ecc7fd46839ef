package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv/hollow"
)

// TestImageRelayFlag runs ray-deployment through deploy-master on hollow
// nodes with and without --image-relay: with it every node is asked to take
// part in the relay (hollow nodes run no OpenSSH client, so the relay fails
// there) and still ends up with the image by the direct side-load, as the
// help text says; without it no node sees the relay.
func TestImageRelayFlag(t *testing.T) {
	const ref = "raydeploy-cli/ray:relay"
	archive, wantID, err := hollow.ImageArchive(ref, "2.40.0", "3.11.2", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, relay := range []bool{true, false} {
		t.Run(fmt.Sprintf("relay=%t", relay), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			hc, err := hollow.Start(ctx, hollow.Options{Nodes: 3})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hc.Close() })
			dir := t.TempDir()
			key, known, err := hc.WriteSSHFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			image := filepath.Join(dir, "ray.tar")
			if err := os.WriteFile(image, archive, 0o600); err != nil {
				t.Fatal(err)
			}
			var y strings.Builder
			fmt.Fprintf(&y, "cluster_name: relay\nstate_dir: %s\nssh:\n  user: root\n  key_file: %s\n  known_hosts: %s\nray:\n  image: %s\n",
				filepath.Join(dir, "state"), key, known, ref)
			for i, n := range hc.Nodes {
				if i == 0 {
					fmt.Fprintf(&y, "head:\n  name: %s\n  address: %s\n  port: %d\nworkers:\n", n.Name, n.Address, n.Port)
				} else {
					fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    port: %d\n", n.Name, n.Address, n.Port)
				}
			}
			cfg := filepath.Join(dir, "cluster.yaml")
			if err := os.WriteFile(cfg, []byte(y.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--config", cfg, "--checkpoint", "ray-deployment", "--approval", "auto", "--images", "side-load", "--image-file", image}
			if relay {
				args = append(args, "--image-relay")
			}
			code, out, errOut := cli(t, ctx, args...)
			if code != exitOK {
				t.Fatalf("deploy-master %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
			}
			for _, n := range hc.Nodes {
				tried := false
				for _, cmd := range n.Commands() {
					tried = tried || strings.Contains(cmd, ".raydeploy-relay.")
				}
				if tried != relay {
					t.Errorf("%s: relay attempted %t, want %t", n.Name, tried, relay)
				}
				if got := n.ImageID(ref); got != wantID {
					t.Errorf("%s: image %s has ID %q, want %s", n.Name, ref, got, wantID)
				}
			}
		})
	}
}
