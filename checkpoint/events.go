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
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// At is when it happened (Options.Now).
	At time.Time
}

// CheckpointPlanned: the plan is known (empty = satisfied).
type CheckpointPlanned struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Plan is the plan made, with its planning errors if any.
	Plan Plan
	// Digest is the plan's digest (Plan.Digest).
	Digest string
	// At is when it happened (Options.Now).
	At time.Time
}

// ApprovalWaiting: the runner asked the Approver and waits.
type ApprovalWaiting struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Request is what the Approver was asked.
	Request approval.Request
	// At is when it happened (Options.Now).
	At time.Time
}

// ApprovalDecided: the Approver answered (Err set when it could not).
type ApprovalDecided struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Decision is what the Approver returned; it may still be a refusal or
	// fail approval.Check.
	Decision approval.Decision
	// Err is the Approver's error (nil: it answered).
	Err error
	// At is when it happened (Options.Now).
	At time.Time
}

// NodeStarted: the checkpoint starts on a node.
type NodeStarted struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Node is the node's ID.
	Node string
	// At is when it happened (Options.Now).
	At time.Time
}

// NodeFinished: the checkpoint finished on a node.
type NodeFinished struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Node is the node's ID.
	Node string
	// Status is StatusSucceeded or StatusFailed.
	Status Status
	// Summary is what Run reported for the node, cut to 2048 bytes.
	Summary string
	// Err is why it failed on the node (nil: it succeeded).
	Err error
	// At is when it happened (Options.Now).
	At time.Time
}

// CheckpointSkipped: not run, because its plan is empty or (on resume) it
// already succeeded with the same config digest.
type CheckpointSkipped struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Reason is "already satisfied" (empty plan) or "already succeeded"
	// (resume).
	Reason string
	// At is when it happened (Options.Now).
	At time.Time
}

// CheckpointFinished: the checkpoint succeeded on every node.
type CheckpointFinished struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// At is when it happened (Options.Now).
	At time.Time
}

// CheckpointFailed: the checkpoint failed (planning, approval, or a node).
type CheckpointFailed struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// Err is the failure, as Run returns it ("checkpoint <name>: ...").
	Err error
	// At is when it happened (Options.Now).
	At time.Time
}

// RunFinished: the run ended; Dropped counts events not delivered because the sink was too slow.
type RunFinished struct {
	// Err is the run's error (nil: it succeeded).
	Err error
	// Dropped is the number of events the Runner has dropped so far
	// (Runner.DroppedEvents), earlier runs included.
	Dropped int64
	// At is when it happened (Options.Now).
	At time.Time
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

// Bounds of the event buffer when Options.EventBuffer is 0.
const (
	// DefaultEventBuffer is the least the buffer holds.
	DefaultEventBuffer = 1024
	// MaxEventBuffer is the most it grows to, so that a blocked sink costs
	// bounded memory (at 2 events per node, a checkpoint of 32768 nodes).
	MaxEventBuffer = 1 << 16
)

// dispatcher delivers events to the sink through a bounded FIFO on one
// goroutine. The runner never waits for the sink: when the FIFO is full (the
// sink is slower than the run), the event is dropped and counted
// (Runner.DroppedEvents, RunFinished.Dropped). RunFinished itself waits up to
// the flush timeout for room, and at the end of a run the runner waits for
// the FIFO to drain for at most the flush timeout. Unless its limit is fixed,
// the runner raises it before a checkpoint's node events (reserve), so a
// sink that keeps up on average loses nothing to one checkpoint's burst.
type dispatcher struct {
	sink     EventSink
	dropped  atomic.Int64
	done     chan struct{} // closed when the delivery goroutine ends
	space    chan struct{} // a token when the delivery goroutine took an event
	mu       sync.Mutex
	nonEmpty *sync.Cond // on mu: queue got an event or the dispatcher closed
	queue    []Event
	limit    int  // most events queued
	fixed    bool // limit set by the caller: reserve leaves it alone
	closed   bool
}

// newDispatcher returns a dispatcher to sink; buffer > 0 fixes the limit,
// 0 starts it at DefaultEventBuffer and lets reserve raise it.
func newDispatcher(sink EventSink, buffer int) *dispatcher {
	d := &dispatcher{sink: sink, limit: buffer, fixed: buffer > 0}
	if !d.fixed {
		d.limit = DefaultEventBuffer
	}
	if sink == nil {
		return d
	}
	d.nonEmpty = sync.NewCond(&d.mu)
	d.done = make(chan struct{})
	d.space = make(chan struct{}, 1)
	go d.deliver()
	return d
}

func (d *dispatcher) deliver() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.nonEmpty.Wait()
		}
		if len(d.queue) == 0 { // closed and delivered
			d.mu.Unlock()
			return
		}
		e := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		if len(d.queue) == 0 {
			d.queue = nil // let a burst's backing array go
		}
		d.mu.Unlock()
		select {
		case d.space <- struct{}{}:
		default:
		}
		if m, ok := e.(flushMarker); ok {
			close(m.done)
			continue
		}
		d.sink(e)
	}
}

// reserve makes room for n more events than are queued now (up to
// MaxEventBuffer) unless the limit is fixed. The limit never shrinks.
func (d *dispatcher) reserve(n int) {
	if d.sink == nil || d.fixed {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limit = max(d.limit, min(len(d.queue)+n, MaxEventBuffer))
}

// put queues e if there is room; closed reports a closed dispatcher.
func (d *dispatcher) put(e Event) (ok, closed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, true
	}
	if len(d.queue) >= d.limit {
		return false, false
	}
	d.queue = append(d.queue, e)
	d.nonEmpty.Signal()
	return true, false
}

// putWait is put, waiting until timer fires for room.
func (d *dispatcher) putWait(e Event, timer <-chan time.Time) bool {
	for {
		ok, closed := d.put(e)
		if ok || closed {
			return ok
		}
		select {
		case <-d.space:
		case <-timer:
			return false
		}
	}
}

func (d *dispatcher) emit(e Event) {
	if d.sink == nil {
		return
	}
	if ok, closed := d.put(e); !ok && !closed {
		d.dropped.Add(1)
	}
}

// emitWait is emit, but waits up to timeout for room in the buffer.
func (d *dispatcher) emitWait(e Event, timeout time.Duration) {
	if d.sink == nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	if !d.putWait(e, t.C) && !d.isClosed() {
		d.dropped.Add(1)
	}
}

func (d *dispatcher) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// drain waits until every event emitted so far was delivered, or timeout passes.
func (d *dispatcher) drain(timeout time.Duration) {
	if d.sink == nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	m := flushMarker{done: make(chan struct{})}
	if !d.putWait(m, t.C) {
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
	d.closed = true
	d.nonEmpty.Broadcast()
	d.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.done:
	case <-t.C:
	}
}
