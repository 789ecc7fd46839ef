package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestHostKeysSeeRewrittenFile: HostKeys parses the file once while it stays
// the same, but a rewrite of the same size right after a check (another key
// for the host) is seen by the next check.
func TestHostKeysSeeRewrittenFile(t *testing.T) {
	key := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := key(), key()
	const addr = "10.1.2.3:22"
	path := filepath.Join(t.TempDir(), "known_hosts")
	write := func(k ssh.PublicKey) {
		if err := os.WriteFile(path, []byte(knownhosts.Line([]string{addr}, k)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	remote := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 22}
	hk := NewHostKeys(path, false)
	write(a)
	for range 2 {
		if err := hk.Callback(addr)(addr, remote, a); err != nil {
			t.Fatalf("known key refused: %v", err)
		}
	}
	write(b)
	if err := hk.Callback(addr)(addr, remote, a); !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("old key after the file changed: got %v, want ErrHostKeyMismatch", err)
	}
	if err := hk.Callback(addr)(addr, remote, b); err != nil {
		t.Fatalf("new key refused: %v", err)
	}
}
