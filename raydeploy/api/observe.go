package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
)

// observe turns a runner event into a stream event, updates the running
// execution and notifies webhooks. It runs on the runner's event goroutine
// and never blocks on a client.
func (s *Server) observe(ev checkpoint.Event) {
	e := Event{At: ev.EventTime().UTC(), ExecutionID: s.currentExec()}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return s.clean(err.Error())
	}
	track := ""
	switch v := ev.(type) {
	case checkpoint.CheckpointStarted:
		e.Type, e.Checkpoint, track = EventCheckpointStarted, v.Checkpoint, string(checkpoint.StatusRunning)
	case checkpoint.CheckpointPlanned:
		e.Type, e.Checkpoint, e.PlanDigest, e.Items = EventCheckpointPlanned, v.Checkpoint, v.Digest, len(v.Plan.Items)
	case checkpoint.ApprovalWaiting:
		e.Type, e.Checkpoint, e.RequestID, e.PlanDigest, e.By = EventApprovalPending, v.Checkpoint, v.Request.ID, v.Request.PlanDigest, v.Request.RequestedBy
		track = "waiting-approval"
	case checkpoint.ApprovalDecided:
		e.Type, e.Checkpoint, e.RequestID, e.PlanDigest, e.By = EventApprovalDecided, v.Checkpoint, v.Decision.RequestID, v.Decision.PlanDigest, v.Decision.By
		ok := v.Err == nil && v.Decision.Approved
		e.Approved, e.Error = &ok, errText(v.Err)
		if v.Err == nil && !v.Decision.Approved && v.Decision.Reason != "" {
			e.Summary = "rejected: " + v.Decision.Reason
		}
		track = string(checkpoint.StatusRunning)
	case checkpoint.NodeStarted:
		e.Type, e.Checkpoint, e.Node, e.Status = EventNodeStarted, v.Checkpoint, v.Node, string(checkpoint.StatusRunning)
	case checkpoint.NodeFinished:
		e.Type, e.Checkpoint, e.Node, e.Status, e.Summary, e.Error = EventNodeFinished, v.Checkpoint, v.Node, string(v.Status), v.Summary, errText(v.Err)
	case checkpoint.CheckpointSkipped:
		e.Type, e.Checkpoint, e.Summary, track = EventCheckpointSkipped, v.Checkpoint, v.Reason, string(checkpoint.StatusSkippedSatisfied)
	case checkpoint.CheckpointFinished:
		e.Type, e.Checkpoint, track = EventCheckpointFinished, v.Checkpoint, string(checkpoint.StatusSucceeded)
	case checkpoint.CheckpointFailed:
		e.Type, e.Checkpoint, e.Error, track = EventCheckpointFailed, v.Checkpoint, errText(v.Err), string(checkpoint.StatusFailed)
	case checkpoint.RunFinished:
		e.Type, e.Error = EventRunFinished, errText(v.Err)
		e.Status = "succeeded"
		if v.Err != nil {
			e.Status = "failed"
		}
	default:
		return
	}
	if track != "" && e.ExecutionID != "" {
		_, st := s.deployer()
		if st != nil {
			_, _ = st.update(e.ExecutionID, func(x *Execution) {
				x.setCheckpoint(e.Checkpoint, track, e.Error)
			})
		}
	}
	s.publish(e)
}

// publish sends e to the stream and the webhooks.
func (s *Server) publish(e Event) {
	e = s.hub.publish(e)
	s.hooks.notify(e)
}

// events serves the event stream (text/event-stream). A client that falls
// SubscriberBuffer events behind gets an "overflow" event and is
// disconnected; it reconnects with Last-Event-ID and receives what it
// missed while the server still holds it ("gap" when it does not).
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ Principal) {
	fl, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, http.StatusInternalServerError, "INTERNAL", "streaming unsupported")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	sub, backlog, gap := s.hub.subscribe(last, s.cfg.SubscriberBuffer)
	defer s.hub.unsubscribe(sub)
	s.metrics.sseClients.Inc()
	defer s.metrics.sseClients.Dec()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var b strings.Builder
	b.WriteString("retry: 2000\n\n")
	if gap {
		writeSSE(&b, "", "gap", map[string]string{"message": "events after " + last + " are no longer held; reload the state"})
	}
	for _, e := range backlog {
		writeSSE(&b, e.ID, e.Type, e)
	}
	if _, err := w.Write([]byte(b.String())); err != nil {
		return
	}
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		b.Reset()
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-keep.C:
			b.WriteString(": keep-alive\n\n")
		case e, ok := <-sub.ch:
			if !ok {
				if sub.lagged {
					s.metrics.sseDropped.Inc()
					writeSSE(&b, "", "overflow", map[string]string{"message": "this client fell behind and is disconnected; reconnect with Last-Event-ID"})
					w.Write([]byte(b.String()))
					fl.Flush()
				}
				return
			}
			writeSSE(&b, e.ID, e.Type, e)
		drain:
			for range 64 {
				select {
				case e, ok := <-sub.ch:
					if !ok {
						break drain
					}
					writeSSE(&b, e.ID, e.Type, e)
				default:
					break drain
				}
			}
		}
		if _, err := w.Write([]byte(b.String())); err != nil {
			return
		}
		fl.Flush()
	}
}
