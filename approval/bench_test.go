package approval

import (
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkAuditAppend(b *testing.B) {
	log, err := OpenAuditLog(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	r := request(true)
	for b.Loop() {
		if err := log.Append(context.Background(), AuditRecord{Kind: AuditRequest, Checkpoint: r.Checkpoint, Request: &r}); err != nil {
			b.Fatal(err)
		}
	}
}
