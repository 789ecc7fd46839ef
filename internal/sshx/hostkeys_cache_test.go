package sshx

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestHostKeysSeeRewrittenFile: HostKeys parses the file once while it stays
// the same, but a rewrite of the same size right after a check (another key
// for the host) is seen by the next check.
func TestHostKeysSeeRewrittenFile(t *testing.T) {
	key := func() ssh.PublicKey { return newEd25519(t) }
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

// TestRecordedFindsEveryPatternKind: the index by host name finds the lines
// a scan of the file would, in file order: plain names (any port),
// [host]:port for that port only, hashed names, wildcards, and not a line
// whose negated pattern excludes the host; a rewritten file is indexed
// again.
func TestRecordedFindsEveryPatternKind(t *testing.T) {
	key := func() ssh.PublicKey { return newEd25519(t) }
	line := func(pattern string, k ssh.PublicKey) string {
		return pattern + " " + string(ssh.MarshalAuthorizedKey(k))
	}
	plain, port, other, hashed, wild, negated, second := key(), key(), key(), key(), key(), key(), key()
	file := line("Node-A.example", plain) + // no port: every port
		line("[node-a.example]:2222", port) +
		line("[node-a.example]:2200", other) + // another port: another service
		line(knownhosts.HashHostname("node-a.example"), hashed) +
		line("*.example", wild) +
		line("*.example,!node-a.example", negated) +
		"# a comment\n" +
		line("node-b.example,node-a.example", second)
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := NewHostKeys(path, false)
	got := func(addr string) []int {
		rec, err := hk.recorded(addr)
		if err != nil {
			t.Fatal(err)
		}
		var lines []int
		for _, r := range rec {
			lines = append(lines, r.Line)
		}
		return lines
	}
	for range 2 { // parsed, then from the cache
		if l := got("node-a.example:2222"); !slices.Equal(l, []int{1, 2, 4, 5, 8}) {
			t.Fatalf("node-a.example:2222: lines %v, want 1 2 4 5 8", l)
		}
	}
	if l := got("node-b.example:22"); !slices.Equal(l, []int{5, 6, 8}) {
		t.Fatalf("node-b.example:22: lines %v, want 5 6 8", l)
	}
	if err := os.WriteFile(path, []byte(line("node-c.example", plain)), 0o600); err != nil {
		t.Fatal(err)
	}
	if l := got("node-a.example:2222"); len(l) != 0 {
		t.Fatalf("after the rewrite node-a.example has lines %v", l)
	}
	if l := got("node-c.example:22"); !slices.Equal(l, []int{1}) {
		t.Fatalf("after the rewrite node-c.example: lines %v, want 1", l)
	}
}
