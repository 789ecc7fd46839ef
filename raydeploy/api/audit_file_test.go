package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// TestAuditEndpointRefusesUntrustedLog: an audit log replaced by a
// symbolic link or a FIFO is refused by GET /api/v1/audit (and its
// verification) with an error saying what it is, at once: the link is not
// followed and the FIFO's open does not wait for a writer (the client's
// timeout would end a hang with a failure).
func TestAuditEndpointRefusesUntrustedLog(t *testing.T) {
	e := newEnv(t, envOptions{})
	path := filepath.Join(e.state, "audit.log")
	var au api.AuditAnswer
	if c := e.call("viewer", "GET", "/api/v1/audit", nil, &au); c != 200 {
		t.Fatalf("audit of the intact log: %d", c)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(t.TempDir(), "elsewhere.log")
	if err := os.WriteFile(real, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, want string
		plant      func() error
	}{
		{"symlink", "is a symbolic link", func() error { return os.Symlink(real, path) }},
		{"fifo", "is not a regular file", func() error { return syscall.Mkfifo(path, 0o600) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := tt.plant(); err != nil {
				t.Fatal(err)
			}
			var eb api.ErrorBody
			if c := e.call("viewer", "GET", "/api/v1/audit", nil, &eb); c != 500 || eb.Error != "AUDIT_LOG_REFUSED" ||
				!strings.Contains(eb.Message, "the audit log is refused") || !strings.Contains(eb.Message, tt.want) {
				t.Errorf("GET /api/v1/audit with the log a %s: %d %+v; want 500 AUDIT_LOG_REFUSED saying it %s", tt.name, c, eb, tt.want)
			}
			var v api.AuditVerification
			if c := e.call("viewer", "GET", "/api/v1/audit/verify", nil, &v); c != 200 || v.OK || !strings.Contains(v.Reason, tt.want) {
				t.Errorf("GET /api/v1/audit/verify with the log a %s: %d %+v; want not OK, saying it %s", tt.name, c, v, tt.want)
			}
		})
	}
}
