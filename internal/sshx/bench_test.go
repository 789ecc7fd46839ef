package sshx

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
)

// prereqCmds is what the prerequisites-check checkpoint asks every node.
const prereqCmds = "nproc; cat /proc/meminfo; df -Pk /; command -v docker; cat /etc/os-release"

const benchNodes = 10

func benchServers(b *testing.B) ([]*testenv.LocalSSHDServer, string) {
	b.Helper()
	servers := testenv.LocalSSHDStart(b, benchNodes, testenv.LocalSSHDOptions{})
	kh := filepath.Join(b.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(b, kh, servers...)
	return servers, kh
}

// parallel runs f for every server at once and fails b on any error.
func parallel(b *testing.B, servers []*testenv.LocalSSHDServer, f func(i int, s *testenv.LocalSSHDServer) error) {
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() { errs[i] = f(i, s) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrereqsOpenSSH: one cold OpenSSH client process per node, all in
// parallel (no ControlMaster), the baseline.
func BenchmarkPrereqsOpenSSH(b *testing.B) {
	servers, kh := benchServers(b)
	for b.Loop() {
		parallel(b, servers, func(_ int, s *testenv.LocalSSHDServer) error {
			out, err := exec.Command("ssh", "-F", "/dev/null", "-i", s.ClientKeyFile,
				"-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
				"-o", "ControlMaster=no", "-o", "ControlPath=none",
				"-p", strconv.Itoa(s.Port), s.User+"@"+s.Host, prereqCmds).CombinedOutput()
			if err != nil {
				b.Logf("ssh output: %s", out)
			}
			return err
		})
	}
}

// BenchmarkPrereqsSDKCold: dial every node fresh, run, close.
func BenchmarkPrereqsSDKCold(b *testing.B) {
	servers, kh := benchServers(b)
	hk := NewHostKeys(kh, false)
	ctx := context.Background()
	for b.Loop() {
		parallel(b, servers, func(_ int, s *testenv.LocalSSHDServer) error {
			cfg := testConfig(b, s, "")
			cfg.HostKeys = hk
			cfg.Logger = nil
			c, err := Dial(ctx, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Run(ctx, prereqCmds)
			return err
		})
	}
}

// BenchmarkPrereqsSDKWarm: the same round on connections already open.
func BenchmarkPrereqsSDKWarm(b *testing.B) {
	servers, kh := benchServers(b)
	ctx := context.Background()
	p := NewPool()
	b.Cleanup(func() { _ = p.CloseAll() })
	get := func(s *testenv.LocalSSHDServer) (*Conn, error) {
		cfg := testConfig(b, s, kh)
		cfg.Logger = nil
		return p.Get(ctx, cfg)
	}
	parallel(b, servers, func(_ int, s *testenv.LocalSSHDServer) error { _, err := get(s); return err })
	for b.Loop() {
		parallel(b, servers, func(_ int, s *testenv.LocalSSHDServer) error {
			c, err := get(s)
			if err != nil {
				return err
			}
			_, err = c.Run(ctx, prereqCmds)
			return err
		})
	}
}
