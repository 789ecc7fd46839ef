package approval

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzAuditTamper changes a real audit log of three records (the approval
// request, its decision, the outcome) in one of three ways and checks the
// verifier: any changed byte is detected; a cut in the middle of a line is
// reported as an incomplete line, one at a line end leaves exactly the
// records before it; text appended after the last record is reported,
// naming the line after the intact ones. Errors are *ChainError.
func FuzzAuditTamper(f *testing.F) {
	good := auditLogForFuzz(f)
	records := bytes.Count(good, []byte("\n"))
	// Seeds: testdata/fuzz/FuzzAuditTamper.
	f.Fuzz(func(t *testing.T, mode uint8, pos uint32, b byte, tail []byte) {
		var in []byte
		p := int(pos % uint32(len(good)))
		switch mode % 3 {
		case 0: // change one byte
			if good[p] == b {
				t.Skip()
			}
			in = bytes.Clone(good)
			in[p] = b
		case 1: // cut
			in = good[:p]
		case 2: // append
			if len(tail) == 0 {
				t.Skip()
			}
			in = append(bytes.Clone(good), tail...)
		}
		n, err := VerifyReader("fuzz", bytes.NewReader(in))
		var ce *ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if ce != nil && ce.Line != n+1 {
			t.Fatalf("break at line %d after %d intact records", ce.Line, n)
		}
		switch mode % 3 {
		case 0:
			if err == nil {
				t.Fatalf("byte %d changed from %q to %q: not detected", p, good[p], b)
			}
		case 1:
			whole := bytes.Count(in, []byte("\n"))
			atEnd := p == 0 || good[p-1] == '\n'
			if atEnd && (err != nil || n != whole) || !atEnd && (err == nil || n != whole) {
				t.Fatalf("cut at %d: %d records, %v; want %d intact records and an error only for a partial line", p, n, err, whole)
			}
		case 2:
			if err == nil || n != records {
				t.Fatalf("appended %q: %d records, %v; want the %d records and an error", tail, n, err, records)
			}
		}
	})
}

// auditLogForFuzz writes a real log: an approval request, its decision and
// an outcome.
func auditLogForFuzz(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "a.jsonl")
	log, err := OpenAuditLog(path)
	if err != nil {
		f.Fatal(err)
	}
	a := Audited(NewAuto("bot", true), log)
	if _, err := a.Approve(context.Background(), request(true)); err != nil {
		f.Fatal(err)
	}
	if err := log.RecordOutcome(context.Background(), "cp", "req", "succeeded", nil); err != nil {
		f.Fatal(err)
	}
	log.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return good
}
