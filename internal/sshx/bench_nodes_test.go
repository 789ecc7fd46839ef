package sshx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/internal/testenv"
)

// The Benchmark*Nodes benchmarks run against ten testenv node containers
// (real sshd on their own addresses, Debian's default shell start-up) rather
// than local sshd processes, whose root login sources this machine's heavy
// ~/.bashrc (pyenv init: about 100 ms per session, for OpenSSH as for the SDK).

func startBenchNodes(b *testing.B) (*testenv.Cluster, string, string) {
	b.Helper()
	c := testenv.NewClusterWith(b, testenv.Options{Nodes: benchNodes, NoDockerd: true, Logf: b.Logf})
	dir := b.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(kh, c.KnownHosts(), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(key, c.ClientKeyPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	return c, kh, key
}

func onAllNodes(b *testing.B, c *testenv.Cluster, f func(n *testenv.Node) error) {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

func nodeConfig(n *testenv.Node, c *testenv.Cluster, hk *HostKeys) Config {
	return Config{Host: n.Address, Port: n.Port, User: "root", Auth: Auth{Signers: []ssh.Signer{c.ClientKey}}, HostKeys: hk}
}

// BenchmarkNodesPrereqsOpenSSH is the baseline: one cold OpenSSH client
// process per node, all in parallel, no connection sharing.
func BenchmarkNodesPrereqsOpenSSH(b *testing.B) {
	c, kh, key := startBenchNodes(b)
	for b.Loop() {
		onAllNodes(b, c, func(n *testenv.Node) error {
			out, err := exec.Command("ssh", "-i", key,
				"-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
				"-o", "ControlMaster=no", "-o", "ControlPath=none",
				"-p", strconv.Itoa(n.Port), "root@"+n.Address, prereqCmds).CombinedOutput()
			if err != nil {
				b.Logf("ssh output: %s", out)
			}
			return err
		})
	}
}

// BenchmarkNodesPrereqsSDKCold dials every node fresh, runs, closes.
func BenchmarkNodesPrereqsSDKCold(b *testing.B) {
	c, kh, _ := startBenchNodes(b)
	hk := NewHostKeys(kh, false)
	ctx := context.Background()
	for b.Loop() {
		onAllNodes(b, c, func(n *testenv.Node) error {
			conn, err := Dial(ctx, nodeConfig(n, c, hk))
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Run(ctx, prereqCmds)
			return err
		})
	}
}

// BenchmarkNodesPrereqsSDKWarm is a second round on the pooled connections.
func BenchmarkNodesPrereqsSDKWarm(b *testing.B) {
	c, kh, _ := startBenchNodes(b)
	hk := NewHostKeys(kh, false)
	ctx := context.Background()
	p := NewPool()
	b.Cleanup(func() { _ = p.CloseAll() })
	onAllNodes(b, c, func(n *testenv.Node) error { _, err := p.Get(ctx, nodeConfig(n, c, hk)); return err })
	for b.Loop() {
		onAllNodes(b, c, func(n *testenv.Node) error {
			conn, err := p.Get(ctx, nodeConfig(n, c, hk))
			if err != nil {
				return err
			}
			_, err = conn.Run(ctx, prereqCmds)
			return err
		})
	}
}
