package api

import (
	"strings"
	"testing"
)

// A subscriber that does not read never holds up publish: it is cut off
// and marked lagged, and a reconnect with its last id gets the rest.
func TestHubNeverWaitsForASlowSubscriber(t *testing.T) {
	h := newHub("b00t", 64)
	slow, _, _ := h.subscribe("", 2)
	fast, _, _ := h.subscribe("", 100)
	for i := range 50 {
		h.publish(Event{Type: EventNodeFinished, Node: strings.Repeat("n", i%3+1)})
	}
	if !slow.lagged {
		t.Fatal("a full subscriber was not cut off")
	}
	var lastSeen string
	for e := range slow.ch { // two buffered, then closed
		lastSeen = e.ID
	}
	if lastSeen != "b00t-2" {
		t.Fatalf("slow subscriber's last event %s", lastSeen)
	}
	if len(fast.ch) != 50 || fast.lagged {
		t.Fatalf("fast subscriber got %d events, lagged %v", len(fast.ch), fast.lagged)
	}
	_, backlog, gap := h.subscribe(lastSeen, 100)
	if gap || len(backlog) != 48 || backlog[0].ID != "b00t-3" {
		t.Fatalf("resume after %s: gap %v, %d events from %s", lastSeen, gap, len(backlog), backlog[0].ID)
	}
	// Beyond the ring, or from another boot: a gap is reported.
	for range 100 {
		h.publish(Event{Type: EventNodeStarted})
	}
	if _, _, gap := h.subscribe(lastSeen, 200); !gap {
		t.Fatal("no gap reported for events the ring no longer holds")
	}
	if _, backlog, gap := h.subscribe("0", 200); gap || len(backlog) != 64 {
		t.Fatalf("from the start: gap %v, %d events", gap, len(backlog))
	}
	if _, backlog, gap := h.subscribe("other-7", 200); !gap || len(backlog) != 64 {
		t.Fatalf("id of an earlier boot: gap %v, %d events", gap, len(backlog))
	}
}
