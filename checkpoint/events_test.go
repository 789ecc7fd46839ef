package checkpoint

import (
	"context"
	"fmt"
	"strings"
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

// A 1000-node checkpoint emits 2000 node events at once, more than the
// least buffer (DefaultEventBuffer). A sink that is stalled through that
// burst but catches up afterwards (slow, but keeping up on average) must get
// every event: the runner sizes the buffer from the checkpoint's plan.
func TestBurstOfNodeEventsIsNotDropped(t *testing.T) {
	nodes := make([]string, 1000)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("node-%04d", i)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	nodeEvents, finished := 0, 0
	var runDropped int64 = -1
	sink := func(e Event) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		switch e := e.(type) {
		case NodeStarted, NodeFinished:
			nodeEvents++
		case CheckpointFinished:
			finished++
		case RunFinished:
			runDropped = e.Dropped
		}
	}
	rec := &recorder{}
	// The next checkpoint's planning lets the sink go: by then the big
	// checkpoint has emitted all its events.
	next := &Step{StepName: "next", Desc: "lets the sink go",
		PlanFunc: func(context.Context) (Plan, error) { close(release); return Plan{}, nil },
		RunFunc:  func(context.Context, Plan) ([]NodeResult, error) { return nil, nil }}
	r := openRunner(t, t.TempDir(), Options{Nodes: nodes, Events: sink, EventFlushTimeout: 2 * time.Minute},
		fake(rec, "big", nodes, nil), next)
	if _, err := r.RunAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if r.DroppedEvents() != 0 || runDropped != 0 || nodeEvents != 2*len(nodes) || finished != 1 {
		t.Errorf("dropped %d (RunFinished says %d), delivered %d node events and %d CheckpointFinished; want 0 dropped, %d and 1",
			r.DroppedEvents(), runDropped, nodeEvents, finished, 2*len(nodes))
	}
}

// The buffer sized from the run stays bounded (a blocked sink costs bounded
// memory), and a buffer the caller fixed is not resized.
func TestEventBufferBounds(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	sink := func(Event) { <-block }
	auto := newDispatcher(sink, 0)
	defer auto.close(0)
	auto.reserve(10)
	if auto.limit != DefaultEventBuffer {
		t.Errorf("after a small reserve the limit is %d, want DefaultEventBuffer (%d)", auto.limit, DefaultEventBuffer)
	}
	auto.reserve(1 << 20)
	if auto.limit != MaxEventBuffer {
		t.Errorf("after a huge reserve the limit is %d, want MaxEventBuffer (%d)", auto.limit, MaxEventBuffer)
	}
	fixed := newDispatcher(sink, 2)
	defer fixed.close(0)
	fixed.reserve(100)
	if fixed.limit != 2 {
		t.Errorf("a fixed buffer of 2 became %d", fixed.limit)
	}
	if _, err := Open(context.Background(), &List{}, Options{StateDir: t.TempDir(), EventBuffer: -1}); err == nil || !strings.Contains(err.Error(), "EventBuffer") {
		t.Errorf("EventBuffer -1: err = %v, want one naming EventBuffer", err)
	}
}
