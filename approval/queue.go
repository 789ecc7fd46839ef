package approval

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Queue holds pending requests that another goroutine (for example the REST
// API) lists with Pending and answers with Decide. It is safe for concurrent use.
type Queue struct {
	timeout time.Duration

	mu      sync.Mutex
	pending map[string]*queued
}

type queued struct {
	req Request
	ch  chan Decision
}

// NewQueue returns an empty Queue; Approve gives up after timeout (0: wait until ctx ends).
func NewQueue(timeout time.Duration) *Queue {
	return &Queue{timeout: timeout, pending: map[string]*queued{}}
}

// Approve enqueues r and waits for Decide, the timeout or the end of ctx.
func (q *Queue) Approve(ctx context.Context, r Request) (Decision, error) {
	if r.ID == "" {
		r.ID = NewID()
	}
	e := &queued{req: r, ch: make(chan Decision, 1)}
	q.mu.Lock()
	if _, dup := q.pending[r.ID]; dup {
		q.mu.Unlock()
		return Decision{}, fmt.Errorf("queue approval of checkpoint %s: request %s is already pending", r.Checkpoint, r.ID)
	}
	q.pending[r.ID] = e
	q.mu.Unlock()

	var deadline <-chan time.Time
	if q.timeout > 0 {
		tm := time.NewTimer(q.timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	var cause error
	select {
	case d := <-e.ch:
		return d, nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-deadline:
		cause = fmt.Errorf("%w after %s", ErrTimeout, q.timeout)
	}
	q.mu.Lock()
	delete(q.pending, r.ID)
	q.mu.Unlock()
	select { // a decision that raced with the timeout still counts
	case d := <-e.ch:
		return d, nil
	default:
	}
	return Decision{}, fmt.Errorf("queue approval of checkpoint %s: %w", r.Checkpoint, cause)
}

// Pending lists the requests waiting for a decision, oldest first.
func (q *Queue) Pending() []Request {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Request, 0, len(q.pending))
	for _, e := range q.pending {
		out = append(out, e.req)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].RequestedAt.Equal(out[j].RequestedAt) {
			return out[i].RequestedAt.Before(out[j].RequestedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Decide answers the pending request id. Channel is set to "queue", and ID,
// RequestID, DecidedAt and an empty PlanDigest are filled in from the request
// (deciding by request ID binds the decision to that request's plan).
func (q *Queue) Decide(id string, d Decision) error {
	q.mu.Lock()
	e, ok := q.pending[id]
	if ok {
		delete(q.pending, id)
	}
	q.mu.Unlock()
	if !ok {
		return fmt.Errorf("decide %s: %w", id, ErrUnknownRequest)
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	if d.DecidedAt.IsZero() {
		d.DecidedAt = time.Now()
	}
	if d.PlanDigest == "" {
		d.PlanDigest = e.req.PlanDigest
	}
	d.RequestID = id
	d.Channel = ChannelQueue
	e.ch <- d
	return nil
}
