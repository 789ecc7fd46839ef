package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rehash returns the line of rec re-chained after prev, with a correct hash:
// what someone who knows the format can forge.
func rehash(t *testing.T, rec AuditRecord, prev string) []byte {
	t.Helper()
	rec.Prev, rec.Hash = prev, ""
	body, _ := json.Marshal(rec)
	rec.Hash = hashHex(body)
	line, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestAuditEndTamperingDetected: changes at the end of the log, which the
// chain alone cannot see, are caught by the head anchor.
func TestAuditEndTamperingDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, ls [][]byte) [][]byte
		line   int
		reason string
	}{
		{"delete the last line", func(t *testing.T, ls [][]byte) [][]byte { return ls[:len(ls)-1] }, 5, "removed from its end"},
		{"delete the last two lines", func(t *testing.T, ls [][]byte) [][]byte { return ls[:len(ls)-2] }, 4, "removed from its end"},
		{"rewrite the last record with a correct hash", func(t *testing.T, ls [][]byte) [][]byte {
			var rec AuditRecord
			_ = json.Unmarshal(bytes.TrimSpace(ls[4]), &rec)
			rec.Outcome = "failed"
			ls[4] = rehash(t, rec, rec.Prev)
			return ls
		}, 5, "rewritten"},
		{"append a chained record", func(t *testing.T, ls [][]byte) [][]byte {
			var rec AuditRecord
			_ = json.Unmarshal(bytes.TrimSpace(ls[4]), &rec)
			rec.Seq++
			return append(ls, rehash(t, rec, hashHex(bytes.TrimSpace(ls[4]))))
		}, 6, "appended"},
		{"append a text line", func(t *testing.T, ls [][]byte) [][]byte { return append(ls, []byte("approved by mallory")) }, 6, "not an audit record"},
		{"text after the last record", func(t *testing.T, ls [][]byte) [][]byte {
			ls[4] = append(bytes.TrimSpace(ls[4]), []byte(` {"approved":true}`)...)
			return ls
		}, 5, "text after the record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := auditWith(t)
			lines := readLines(t, path)
			if len(lines) != 5 {
				t.Fatalf("%d lines", len(lines))
			}
			writeLines(t, path, tt.tamper(t, lines))
			_, err := Verify(path)
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Line != tt.line || !strings.Contains(ce.Reason, tt.reason) {
				t.Fatalf("Verify = %v, want a *ChainError at line %d saying %q", err, tt.line, tt.reason)
			}
			if _, err := OpenAuditLog(path); !errors.As(err, &ce) {
				t.Errorf("OpenAuditLog accepted it: %v", err)
			}
		})
	}
}

// TestAuditHeadMissing: a non-empty log without its anchor is refused (else
// deleting the anchor would hide a cut).
func TestAuditHeadMissing(t *testing.T) {
	path := auditWith(t)
	if err := os.Remove(HeadPath(path)); err != nil {
		t.Fatal(err)
	}
	var ce *ChainError
	if _, err := Verify(path); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "missing") {
		t.Fatalf("Verify = %v", err)
	}
}

// TestAuditHeadCrashWindows: a crash between the anchor and the line (either
// side) is not mistaken for tampering, and reopening completes the anchor.
func TestAuditHeadCrashWindows(t *testing.T) {
	path := auditWith(t)
	lines := readLines(t, path)
	last := bytes.TrimSpace(lines[4])
	prevHash := hashHex(bytes.TrimSpace(lines[3]))
	// Crash after the line was written, before the anchor was updated.
	if err := writeHead(path, AuditHead{Seq: 4, Hash: prevHash, Pending: hashHex(last)}); err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(path); err != nil || n != 5 {
		t.Fatalf("after-line crash: %d, %v", n, err)
	}
	// Crash before the line was written.
	writeLines(t, path, lines[:4])
	if n, err := Verify(path); err != nil || n != 4 {
		t.Fatalf("before-line crash: %d, %v", n, err)
	}
	log, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.RecordOutcome(context.Background(), "x", "r", "succeeded", nil); err != nil {
		t.Fatal(err)
	}
	log.Close()
	if n, err := Verify(path); err != nil || n != 5 {
		t.Fatalf("after reopen and append: %d, %v", n, err)
	}
}

// TestAuditFileTrust: a symlinked or world-writable audit log is refused; a
// world-readable one is set to 0600.
func TestAuditFileTrust(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.log")
	if err := os.WriteFile(loose, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAuditLog(loose); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("0666 audit log: %v", err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(filepath.Join(dir, "target.log"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAuditLog(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked audit log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "target.log")); err == nil {
		t.Error("the link was followed: its target was created")
	}
	readable := filepath.Join(dir, "readable.log")
	if err := os.WriteFile(readable, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := OpenAuditLog(readable)
	if err != nil {
		t.Fatal(err)
	}
	log.Close()
	if fi, _ := os.Stat(readable); fi.Mode().Perm() != 0o600 {
		t.Errorf("0644 audit log left at %v", fi.Mode().Perm())
	}
}
