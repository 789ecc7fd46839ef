package checkpoint

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/raydeploy/sdk/approval"
)

// Event is a progress event of a Runner. The concrete types are listed below;
// use a type switch.
type Event interface {
	// EventTime is when the event happened.
	EventTime() time.Time
}

// CheckpointStarted: a checkpoint is about to be planned.
type CheckpointStarted struct {
	Checkpoint string
	At         time.Time
}

// CheckpointPlanned: the plan is known (empty = satisfied).
type CheckpointPlanned struct {
	Checkpoint string
	Plan       Plan
	Digest     string
	At         time.Time
}

// ApprovalWaiting: the runner asked the Approver and waits.
type ApprovalWaiting struct {
	Checkpoint string
	Request    approval.Request
	At         time.Time
}

// ApprovalDecided: the Approver answered (Err set when it could not).
type ApprovalDecided struct {
	Checkpoint string
	Decision   approval.Decision
	Err        error
	At         time.Time
}

// NodeStarted: the checkpoint starts on a node.
type NodeStarted struct {
	Checkpoint string
	Node       string
	At         time.Time
}

// NodeFinished: the checkpoint finished on a node.
type NodeFinished struct {
	Checkpoint string
	Node       string
	Status     Status
	Summary    string
	Err        error
	At         time.Time
}

// CheckpointSkipped: not run, because its plan is empty or (on resume) it
// already succeeded with the same config digest.
type CheckpointSkipped struct {
	Checkpoint string
	Reason     string
	At         time.Time
}

// CheckpointFinished: the checkpoint succeeded on every node.
type CheckpointFinished struct {
	Checkpoint string
	At         time.Time
}

// CheckpointFailed: the checkpoint failed (planning, approval, or a node).
type CheckpointFailed struct {
	Checkpoint string
	Err        error
	At         time.Time
}

// RunFinished: the run ended; Dropped counts events not delivered because the sink was too slow.
type RunFinished struct {
	Err     error
	Dropped int64
	At      time.Time
}

// EventTime returns At.
func (e CheckpointStarted) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e CheckpointPlanned) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e ApprovalWaiting) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e ApprovalDecided) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e NodeStarted) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e NodeFinished) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e CheckpointSkipped) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e CheckpointFinished) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e CheckpointFailed) EventTime() time.Time { return e.At }

// EventTime returns At.
func (e RunFinished) EventTime() time.Time { return e.At }

// EventSink receives events, in order, on one goroutine of its own. The
// runner never blocks on a slow sink: events are buffered (Options.EventBuffer)
// and, when the buffer is full, dropped and counted (Runner.DroppedEvents).
// At the end of each run the runner waits at most Options.EventFlushTimeout
// for the sink to catch up.
type EventSink func(Event)

// dispatcher delivers events to the sink through a bounded buffer on one
// goroutine. The runner never waits for the sink: when the buffer is full
// (the sink is slower than the run), the event is dropped and counted
// (Runner.DroppedEvents, RunFinished.Dropped). RunFinished itself waits up to
// the flush timeout for room, and at the end of a run the runner waits for
// the buffer to drain for at most the flush timeout.
type dispatcher struct {
	sink    EventSink
	ch      chan Event
	dropped atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
}

func newDispatcher(sink EventSink, buffer int) *dispatcher {
	d := &dispatcher{sink: sink}
	if sink == nil {
		return d
	}
	d.ch = make(chan Event, buffer)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for e := range d.ch {
			if m, ok := e.(flushMarker); ok {
				close(m.done)
				continue
			}
			d.sink(e)
		}
	}()
	return d
}

func (d *dispatcher) emit(e Event) {
	if d.sink == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	select {
	case d.ch <- e:
	default:
		d.dropped.Add(1)
	}
}

// emitWait is emit, but waits up to timeout for room in the buffer.
func (d *dispatcher) emitWait(e Event, timeout time.Duration) {
	if d.sink == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case d.ch <- e:
	case <-t.C:
		d.dropped.Add(1)
	}
}

// drain waits until every event emitted so far was delivered, or timeout passes.
func (d *dispatcher) drain(timeout time.Duration) {
	if d.sink == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	m := flushMarker{done: make(chan struct{})}
	select {
	case d.ch <- m:
	case <-t.C:
		return
	}
	select {
	case <-m.done:
	case <-t.C:
	}
}

type flushMarker struct{ done chan struct{} }

func (flushMarker) EventTime() time.Time { return time.Time{} }

// close stops accepting events and waits for delivery up to timeout.
func (d *dispatcher) close(timeout time.Duration) {
	if d.sink == nil {
		return
	}
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.ch)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}
