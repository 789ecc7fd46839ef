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

	"github.com/google/go-cmp/cmp"
)

// auditWith writes n records through the Audited wrapper and returns the log path.
func auditWith(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	a := Audited(NewAuto("bot", false), log)
	ctx := context.Background()
	if _, err := a.Approve(ctx, request(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Approve(ctx, request(true)); !errors.Is(err, ErrAutoDestructive) {
		t.Fatal(err)
	}
	if err := log.RecordOutcome(ctx, "cleanup-existing", "r1", "succeeded", nil); err != nil {
		t.Fatal(err)
	}
	return path
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(bytes.TrimSuffix(l, []byte("\n")))
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditRecordsRequestsAndDecisions(t *testing.T) {
	path := auditWith(t)
	n, err := Verify(path)
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v; want 5 intact records", n, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	var kinds []string
	var first AuditRecord
	for i, l := range readLines(t, path) {
		var rec AuditRecord
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = rec
		}
		kinds = append(kinds, rec.Kind)
	}
	if diff := cmp.Diff([]string{"request", "decision", "request", "error", "outcome"}, kinds); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	if first.Prev != GenesisHash || first.Request == nil || first.Request.PlanDigest != "sha256:abc" {
		t.Errorf("first record %+v", first)
	}
	// Reopening continues the chain.
	log, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.RecordOutcome(context.Background(), "x", "r9", "failed", errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	log.Close()
	if n, err := Verify(path); err != nil || n != 6 {
		t.Errorf("after reopen: %d, %v", n, err)
	}
}

func TestAuditTamperingDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(lines [][]byte) [][]byte
		line   int
	}{
		{"edit a field", func(ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`"approved":true`), []byte(`"approved":false`), 1)
			return ls
		}, 2},
		{"edit and rehash the record", func(ls [][]byte) [][]byte {
			var rec AuditRecord
			_ = json.Unmarshal(ls[1], &rec)
			rec.Decision.By = "mallory"
			rec.Hash = ""
			body, _ := json.Marshal(rec)
			rec.Hash = hashHex(body)
			ls[1], _ = json.Marshal(rec)
			return ls
		}, 3},
		{"delete a line", func(ls [][]byte) [][]byte { return append(ls[:1], ls[2:]...) }, 2},
		{"delete the first line", func(ls [][]byte) [][]byte { return ls[1:] }, 1},
		{"reorder lines", func(ls [][]byte) [][]byte { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3},
		{"garbage line", func(ls [][]byte) [][]byte { ls[3] = []byte("not json"); return ls }, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := auditWith(t)
			writeLines(t, path, tt.tamper(readLines(t, path)))
			_, err := Verify(path)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want *ChainError", err)
			}
			if ce.Line != tt.line {
				t.Errorf("break reported at line %d (%s), want %d", ce.Line, ce.Reason, tt.line)
			}
			if _, err := OpenAuditLog(path); !errors.As(err, &ce) {
				t.Errorf("OpenAuditLog accepted a broken log: %v", err)
			}
		})
	}
}

func TestAuditedRefusesWhenLogFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	log.Close()
	_, err = Audited(NewAuto("bot", false), log).Approve(context.Background(), request(false))
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("approval with a closed audit log: %v", err)
	}
}

func FuzzVerifyAudit(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	log, err := OpenAuditLog(path)
	if err != nil {
		f.Fatal(err)
	}
	a := Audited(NewAuto("bot", true), log)
	_, _ = a.Approve(context.Background(), request(true))
	log.Close()
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"prev":"` + GenesisHash + `","hash":""}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := VerifyReader("fuzz", bytes.NewReader(data))
		if err != nil {
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if ce.Line != n+1 {
				t.Fatalf("break at line %d after %d intact records", ce.Line, n)
			}
		}
	})
}
