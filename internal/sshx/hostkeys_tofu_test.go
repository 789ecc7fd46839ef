package sshx

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newEd25519(t *testing.T) ssh.PublicKey {
	t.Helper()
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

// TestTOFUNeverTrustsARecordedHost: with trust-on-first-use on, a host on a
// port other than 22 that the file names under any pattern (wildcard,
// plain name, hashed, another port) is a mismatch naming the recorded line;
// nothing is appended. Only a host the file does not name at all is trusted.
func TestTOFUNeverTrustsARecordedHost(t *testing.T) {
	recorded, offered := newEd25519(t), newEd25519(t)
	const addr = "node7.example.org:2222"
	remote := &net.TCPAddr{IP: net.ParseIP("10.7.0.7"), Port: 2222}
	tests := []struct {
		name, line string
	}{
		{"wildcard", "*.example.org " + string(ssh.MarshalAuthorizedKey(recorded))},
		{"question mark", "node?.example.org " + string(ssh.MarshalAuthorizedKey(recorded))},
		{"plain name, port 22", knownhosts.Line([]string{"node7.example.org"}, recorded) + "\n"},
		{"any port", "[node7.example.org]:* " + string(ssh.MarshalAuthorizedKey(recorded))},
		{"wildcard with port pattern", "[*.example.org]:22?? " + string(ssh.MarshalAuthorizedKey(recorded))},
		{"hashed", knownhosts.Line([]string{knownhosts.HashHostname("node7.example.org")}, recorded) + "\n"},
		{"one of several patterns", "other.host,NODE7.example.org " + string(ssh.MarshalAuthorizedKey(recorded))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known_hosts")
			content := "# first line\n" + tt.line
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			hk := NewHostKeys(path, true)
			err := hk.Callback(addr)(addr, remote, offered)
			if !errors.Is(err, ErrHostKeyMismatch) {
				t.Fatalf("got %v, want ErrHostKeyMismatch", err)
			}
			for _, want := range []string{path + " line 2", ssh.FingerprintSHA256(recorded), ssh.FingerprintSHA256(offered)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Errorf("known_hosts changed:\n%s", data)
			}
			// The recorded key itself is accepted.
			if err := hk.Callback(addr)(addr, remote, recorded); err != nil {
				t.Errorf("recorded key refused: %v", err)
			}
		})
	}
	for name, line := range map[string]string{
		"negated pattern":     "*.example.org,!node7.example.org " + string(ssh.MarshalAuthorizedKey(recorded)),
		"another port":        knownhosts.Line([]string{"node7.example.org:2200"}, recorded) + "\n",
		"another hashed port": knownhosts.Line([]string{knownhosts.HashHostname("[node7.example.org]:2200")}, recorded) + "\n",
	} {
		t.Run(name+" leaves the host unknown", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := NewHostKeys(path, true).Callback(addr)(addr, remote, offered); err != nil {
				t.Fatalf("unrecorded host not trusted: %v", err)
			}
			data, _ := os.ReadFile(path)
			if !strings.Contains(string(data), knownhosts.Line([]string{addr}, offered)) {
				t.Errorf("offered key not appended:\n%s", data)
			}
		})
	}
}

// TestKeyTypeChangeNamesBothKeys: known_hosts records an ECDSA key for a
// server that now offers only ed25519. The refusal names both fingerprints
// and the file and line (before: the handshake failed with "no common
// algorithm for host key", naming neither).
func TestKeyTypeChangeNamesBothKeys(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	content := "# reinstalled since\n" + knownhosts.Line([]string{s.Addr()}, old) + "\n"
	if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tofu := range []bool{false, true} {
		cfg := testConfig(t, s, kh)
		cfg.TrustOnFirstUse = tofu
		_, err := Dial(t.Context(), cfg)
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Fatalf("tofu=%v: %v, want ErrHostKeyMismatch", tofu, err)
		}
		for _, want := range []string{kh + " line 2", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(s.HostKey),
			"ecdsa-sha2-nistp256", "ssh-ed25519", "[127.0.0.1]:" + strconv.Itoa(s.Port)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("tofu=%v: error %q lacks %q", tofu, err, want)
			}
		}
	}
	if data, _ := os.ReadFile(kh); string(data) != content {
		t.Errorf("known_hosts changed:\n%s", data)
	}
}
