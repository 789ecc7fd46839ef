package sshx

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// lineWriter reports the first write on a channel.
type lineWriter struct {
	once sync.Once
	ch   chan struct{}
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.ch) })
	return len(b), nil
}

// TestFrozenNodeFailsWithinConfiguredTimeouts: a node that freezes (its
// sshd and every session stopped, the TCP port still accepting) with short
// configured timeouts: the command under way fails once a keepalive goes
// unanswered for KeepaliveTimeout, and the redial gives up on the
// handshake after ConnectTimeout per attempt; both errors name the node
// and what happened. The times are printed against the bound the timeouts
// give (KeepaliveInterval + KeepaliveTimeout, then MaxElapsed +
// ConnectTimeout), not asserted.
func TestFrozenNodeFailsWithinConfiguredTimeouts(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, s)
	cfg := testConfig(t, s, kh)
	cfg.KeepaliveInterval = 1 * time.Second
	cfg.KeepaliveTimeout = 2 * time.Second
	cfg.ConnectTimeout = 1 * time.Second
	cfg.Retry = RetryPolicy{MaxAttempts: 3, MaxElapsed: 2 * time.Second, InitialInterval: 100 * time.Millisecond}
	p := NewPool()
	defer p.CloseAll()
	c, err := p.Get(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	started := &lineWriter{ch: make(chan struct{})}
	runErr := make(chan error, 1)
	go func() {
		_, err := c.Run(t.Context(), "echo started; exec sleep 600", WithStdout(started))
		runErr <- err
	}()
	<-started.ch

	// Freeze the node: the listener first (a redial then gets a TCP
	// connection but never a banner), then the sessions.
	if err := syscall.Kill(s.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(s.Pid(), syscall.SIGCONT) })
	if n := s.FreezeSessions(t); n == 0 {
		t.Fatal("no sshd session process to freeze")
	}
	frozen := time.Now()
	err = <-runErr
	lost := time.Since(frozen)
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), s.Addr()) ||
		!strings.Contains(err.Error(), "no answer to keepalive within 2s") {
		t.Fatalf("Run on the frozen node: %v; want ErrClosed naming %s and the unanswered keepalive (2s)", err, s.Addr())
	}
	t.Logf("command failed %s after the freeze (bound: interval 1s + timeout 2s = 3s): %v", lost.Round(10*time.Millisecond), err)

	redial := time.Now()
	_, err = p.Get(t.Context(), cfg)
	gaveUp := time.Since(redial)
	var de *DialError
	if !errors.As(err, &de) || de.Addr != s.Addr() || de.Attempts < 1 ||
		!strings.Contains(err.Error(), "ssh handshake: no answer within 1s") {
		t.Fatalf("redial of the frozen node: %v; want a *DialError for %s saying the handshake got no answer within 1s", err, s.Addr())
	}
	if errors.Is(err, ErrNonRetryable) {
		t.Fatalf("a handshake timeout was treated as not retryable: %v", err)
	}
	t.Logf("redial gave up %s after it started, %d attempts (bound: total 2s + connect 1s = 3s): %v",
		gaveUp.Round(10*time.Millisecond), de.Attempts, err)
}
