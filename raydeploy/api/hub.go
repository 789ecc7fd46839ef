package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one entry of the event stream (GET /api/v1/events): a checkpoint,
// node or approval transition, or the end of a run.
type Event struct {
	// ID is "<boot>-<seq>": boot changes with every server start, seq counts up.
	ID string `json:"id"`
	// Type is one of the Event* types; it is also the stream event's name.
	Type string `json:"type"`
	// At is when it happened, UTC.
	At time.Time `json:"at"`
	// ExecutionID is the execution it belongs to (empty: none started through
	// the API).
	ExecutionID string `json:"execution_id,omitempty"`
	// Checkpoint is the checkpoint concerned (empty in run and execution
	// events).
	Checkpoint string `json:"checkpoint,omitempty"`
	// Node is the node's ID in node events (empty otherwise).
	Node string `json:"node,omitempty"`
	// Status is the node's ledger status in node events, succeeded or failed
	// in run.finished, the execution's status in execution.updated (empty
	// otherwise).
	Status string `json:"status,omitempty"`
	// Summary is the node's summary in node.finished, the reason in
	// checkpoint.skipped, and "rejected: <reason>" in approval.decided of a
	// refusal with a reason.
	Summary string `json:"summary,omitempty"`
	// Error is the text of the error, if any, that the transition reports.
	Error string `json:"error,omitempty"`
	// PlanDigest is the plan's digest in checkpoint.planned and approval
	// events.
	PlanDigest string `json:"plan_digest,omitempty"`
	// RequestID is the approval request's ID in approval events.
	RequestID string `json:"request_id,omitempty"`
	// Approved is set in approval.decided only: true when approved without
	// error.
	Approved *bool `json:"approved,omitempty"`
	// By is the requester in approval.pending and who decided in
	// approval.decided.
	By string `json:"by,omitempty"`
	// Items is the number of plan items in checkpoint.planned (absent: zero
	// or another type).
	Items int `json:"items,omitempty"`
}

// Event types.
const (
	EventCheckpointStarted  = "checkpoint.started"
	EventCheckpointPlanned  = "checkpoint.planned"
	EventCheckpointSkipped  = "checkpoint.skipped"
	EventCheckpointFinished = "checkpoint.finished"
	EventCheckpointFailed   = "checkpoint.failed"
	EventNodeStarted        = "node.started"
	EventNodeFinished       = "node.finished"
	EventApprovalPending    = "approval.pending"
	EventApprovalDecided    = "approval.decided"
	EventRunFinished        = "run.finished"
	EventExecution          = "execution.updated"
)

// hub fans events out to subscribers. Publish never blocks: a subscriber
// whose buffer is full is cut off (its channel closed, lagged set) and told
// so; it reconnects with Last-Event-ID and is served from the ring.
type hub struct {
	boot string

	mu   sync.Mutex
	seq  uint64
	ring []Event // the last len(ring) events, oldest first once full
	head int     // next write position
	full bool
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan Event
	lagged bool
}

func newHub(boot string, size int) *hub {
	return &hub{boot: boot, ring: make([]Event, size), subs: map[*subscriber]struct{}{}}
}

// publish stamps e with the next id, keeps it in the ring and offers it to
// every subscriber without waiting.
func (h *hub) publish(e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.ID = h.boot + "-" + strconv.FormatUint(h.seq, 10)
	h.ring[h.head] = e
	h.head = (h.head + 1) % len(h.ring)
	if h.head == 0 {
		h.full = true
	}
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			s.lagged = true
			close(s.ch)
			delete(h.subs, s)
		}
	}
	return e
}

// subscribe registers a subscriber and returns the events after lastID that
// the ring still holds. gap is true when events after lastID were lost (the
// ring moved past them, or lastID is from an earlier server start).
func (h *hub) subscribe(lastID string, buffer int) (s *subscriber, backlog []Event, gap bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s = &subscriber{ch: make(chan Event, buffer)}
	h.subs[s] = struct{}{}
	if lastID == "" {
		return s, nil, false
	}
	events := h.ordered()
	if lastID == "0" { // "from the start": everything the ring holds
		return s, events, false
	}
	boot, seqStr, ok := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if !ok || err != nil || boot != h.boot || seq > h.seq {
		return s, events, true
	}
	oldest := h.seq - uint64(len(events)) // seq before the oldest event held
	if seq < oldest {
		gap = true
	}
	for _, e := range events {
		if eseq(e.ID) > seq {
			backlog = append(backlog, e)
		}
	}
	return s, backlog, gap
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) ordered() []Event {
	if !h.full {
		return append([]Event(nil), h.ring[:h.head]...)
	}
	return append(append([]Event(nil), h.ring[h.head:]...), h.ring[:h.head]...)
}

func eseq(id string) uint64 {
	_, s, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// writeSSE writes one event in text/event-stream framing.
func writeSSE(w *strings.Builder, id, typ string, data any) {
	b, _ := json.Marshal(data)
	if id != "" {
		fmt.Fprintf(w, "id: %s\n", id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
}
