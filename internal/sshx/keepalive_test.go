package sshx

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestPoolSharesOneKeeper: a Pool's connections are kept alive by one
// keeper (one goroutine), which keeps them open while sshd answers and
// lets go of a connection once it is closed.
func TestPoolSharesOneKeeper(t *testing.T) {
	servers := testenv.LocalSSHDStart(t, 3, testenv.LocalSSHDOptions{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, servers...)
	p := NewPool()
	defer p.CloseAll()
	var conns []*Conn
	for _, s := range servers {
		cfg := testConfig(t, s, kh)
		// A keepalive unanswered for one interval closes the connection:
		// long enough that a loaded machine's sshd answers in time.
		cfg.KeepaliveInterval = 2 * time.Second
		c, err := p.Get(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	k := conns[0].keeper
	for _, c := range conns {
		if c.keeper != k || k == nil {
			t.Fatalf("connections of one pool have different keepers")
		}
	}
	held := func() int {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.conns)
	}
	if n := held(); n != 3 {
		t.Fatalf("keeper holds %d connections, want 3", n)
	}
	// Keepalives go out and are answered: the connections stay up and
	// usable through several sweeps.
	deadline := time.Now().Add(time.Minute)
	for _, c := range conns {
		for c.kaSent.Load() < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if c.kaSent.Load() < 2 {
			t.Fatalf("%s: %d keepalives answered in a minute", c.Addr(), c.kaSent.Load())
		}
		if err := c.Err(); err != nil {
			t.Fatalf("%s closed by keepalives that sshd answers: %v", c.Addr(), err)
		}
		if _, err := c.Run(t.Context(), "true"); err != nil {
			t.Fatal(err)
		}
	}
	_ = conns[1].Close()
	if n := held(); n != 2 {
		t.Fatalf("after a close the keeper holds %d connections, want 2", n)
	}
}
