package approval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditActorRecordIsChainedAndVerified(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	act := &Actor{Principal: "alice", Remote: "192.0.2.7:5555", Method: "POST", Path: "/api/v1/plans", Status: 200}
	if err := log.Append(ctx, AuditRecord{Kind: AuditAPI, Actor: act}); err != nil {
		t.Fatal(err)
	}
	if err := log.RecordOutcome(ctx, "cleanup-existing", "r1", "succeeded", nil); err != nil {
		t.Fatal(err)
	}
	log.Close()
	if n, err := Verify(path); err != nil || n != 2 {
		t.Fatalf("Verify = %d, %v; want 2 intact records", n, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if !strings.Contains(first, `"principal":"alice"`) || !strings.Contains(first, `"remote":"192.0.2.7:5555"`) {
		t.Fatalf("first record lacks the actor: %s", first)
	}
	// A record without an actor encodes as before (no "actor" key), so older logs still verify.
	second := strings.Split(string(b), "\n")[1]
	if strings.Contains(second, `"actor"`) {
		t.Fatalf("record without actor carries the key: %s", second)
	}
	tampered := strings.Replace(string(b), `"principal":"alice"`, `"principal":"mallory"`, 1)
	if err := os.WriteFile(path, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); err == nil {
		t.Fatal("Verify accepted a changed principal")
	}
}
