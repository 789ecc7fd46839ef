package checkpoint

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/raydeploy/sdk/approval"
)

// describe turns an event into a comparable line.
func describe(e Event) string {
	switch e := e.(type) {
	case CheckpointStarted:
		return "started " + e.Checkpoint
	case CheckpointPlanned:
		return fmt.Sprintf("planned %s items=%d", e.Checkpoint, len(e.Plan.Items))
	case ApprovalWaiting:
		return "approval-waiting " + e.Checkpoint
	case ApprovalDecided:
		return fmt.Sprintf("approval-decided %s approved=%v", e.Checkpoint, e.Decision.Approved)
	case NodeStarted:
		return "node-started " + e.Checkpoint + " " + e.Node
	case NodeFinished:
		return fmt.Sprintf("node-finished %s %s %s err=%v", e.Checkpoint, e.Node, e.Status, e.Err)
	case CheckpointSkipped:
		return "skipped " + e.Checkpoint + ": " + e.Reason
	case CheckpointFinished:
		return "finished " + e.Checkpoint
	case CheckpointFailed:
		return "failed " + e.Checkpoint
	case RunFinished:
		return fmt.Sprintf("run-finished err=%v dropped=%d", e.Err != nil, e.Dropped)
	}
	return fmt.Sprintf("unknown %T", e)
}

func TestEvents(t *testing.T) {
	var mu sync.Mutex
	var got []string
	sink := func(e Event) {
		if e.EventTime().IsZero() {
			t.Errorf("event %T without time", e)
		}
		mu.Lock()
		got = append(got, describe(e))
		mu.Unlock()
	}
	rec := &recorder{}
	b := fake(rec, "b", twoNodes, map[string]error{"n2": fmt.Errorf("x")})
	b.Approval = true
	auto := approval.NewAuto("bot", false)
	r := openRunner(t, t.TempDir(), Options{Events: sink, Approver: auto}, fake(rec, "a", nil, nil), b)
	_, _ = r.RunAll(context.Background())
	want := []string{
		"started a", "planned a items=0", "skipped a: already satisfied",
		"started b", "planned b items=2", "approval-waiting b", "approval-decided b approved=true",
		"node-started b n1", "node-started b n2",
		"node-finished b n1 succeeded err=<nil>", "node-finished b n2 failed err=x",
		"failed b", "run-finished err=true dropped=0",
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// A sink that blocks must not stall the runner: events beyond the buffer are
// dropped and counted.
func TestSlowSinkDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	sink := func(e Event) { <-release }
	rec := &recorder{}
	r := openRunner(t, t.TempDir(), Options{Events: sink, EventBuffer: 2, EventFlushTimeout: 20 * time.Millisecond},
		fake(rec, "a", twoNodes, nil), fake(rec, "b", twoNodes, nil))
	done := make(chan error, 1)
	go func() { _, err := r.RunAll(context.Background()); done <- err }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plan a", "run a", "plan b", "run b"}, rec.get()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if r.DroppedEvents() == 0 {
		t.Error("DroppedEvents = 0; want the events beyond the buffer counted")
	}
	close(release)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
