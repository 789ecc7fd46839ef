package monitoring

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raydeploy/sdk/checkpoint"
)

// Metrics are the deployer's own metrics, on a registry the caller gives.
type Metrics struct {
	// CheckpointRuns counts checkpoint ends by checkpoint and outcome
	// (succeeded, failed, skipped).
	CheckpointRuns *prometheus.CounterVec
	// CheckpointDuration observes the seconds from start to end of a
	// checkpoint, by checkpoint.
	CheckpointDuration *prometheus.HistogramVec
	// NodeOutcomes counts per-node ends by checkpoint and status.
	NodeOutcomes *prometheus.CounterVec
	// ApprovalsPending is the number of approval requests waiting.
	ApprovalsPending prometheus.Gauge
	// ApprovalsDecided counts decisions by channel and approved (true/false).
	ApprovalsDecided *prometheus.CounterVec
	// ApprovalErrors counts approvals that ended without a decision.
	ApprovalErrors prometheus.Counter
	// SSHErrors counts SSH connection errors by kind (dial, auth, hostkey, ...).
	SSHErrors *prometheus.CounterVec
	// DockerErrors counts Docker API errors by kind (connect, pull, create, ...).
	DockerErrors *prometheus.CounterVec
	// EventsDropped counts progress events the runner dropped (slow sink).
	EventsDropped prometheus.Counter

	mu      sync.Mutex
	started map[string]time.Time // checkpoint -> start, while it runs
}

// Outcomes of CheckpointRuns.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// NewMetrics creates the metrics and registers them on reg (never the global
// registry unless the caller passes it).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("monitoring: NewMetrics: nil registerer")
	}
	const ns = "raydeploy"
	m := &Metrics{
		CheckpointRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "checkpoint_runs_total",
			Help: "Checkpoint runs that ended, by checkpoint and outcome (succeeded, failed, skipped).",
		}, []string{"checkpoint", "outcome"}),
		CheckpointDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "checkpoint_duration_seconds",
			Help:    "Time from start to end of a checkpoint run, by checkpoint.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"checkpoint"}),
		NodeOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "node_outcomes_total",
			Help: "Checkpoint ends on single nodes, by checkpoint and status.",
		}, []string{"checkpoint", "status"}),
		ApprovalsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "approvals_pending",
			Help: "Approval requests waiting for a decision.",
		}),
		ApprovalsDecided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "approvals_decided_total",
			Help: "Approval decisions, by channel and whether approved.",
		}, []string{"channel", "approved"}),
		ApprovalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "approval_errors_total",
			Help: "Approval requests that ended without a decision.",
		}),
		SSHErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "ssh_connection_errors_total",
			Help: "SSH connection errors, by kind.",
		}, []string{"kind"}),
		DockerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "docker_api_errors_total",
			Help: "Docker Engine API errors, by kind.",
		}, []string{"kind"}),
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "events_dropped_total",
			Help: "Progress events dropped because the consumer was too slow.",
		}),
		started: map[string]time.Time{},
	}
	for _, c := range []prometheus.Collector{
		m.CheckpointRuns, m.CheckpointDuration, m.NodeOutcomes, m.ApprovalsPending,
		m.ApprovalsDecided, m.ApprovalErrors, m.SSHErrors, m.DockerErrors, m.EventsDropped,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("monitoring: register metrics: %w", err)
		}
	}
	return m, nil
}

// SSHError counts an SSH connection error of the given kind.
func (m *Metrics) SSHError(kind string) { m.SSHErrors.WithLabelValues(kind).Inc() }

// DockerError counts a Docker API error of the given kind.
func (m *Metrics) DockerError(kind string) { m.DockerErrors.WithLabelValues(kind).Inc() }

// Observe updates the metrics from a checkpoint event; pass it as a
// checkpoint.EventSink. Events are expected in order from one runner.
func (m *Metrics) Observe(e checkpoint.Event) {
	switch e := e.(type) {
	case checkpoint.CheckpointStarted:
		m.mu.Lock()
		m.started[e.Checkpoint] = e.At
		m.mu.Unlock()
	case checkpoint.CheckpointFinished:
		m.end(e.Checkpoint, OutcomeSucceeded, e.At)
	case checkpoint.CheckpointFailed:
		m.end(e.Checkpoint, OutcomeFailed, e.At)
	case checkpoint.CheckpointSkipped:
		m.end(e.Checkpoint, OutcomeSkipped, e.At)
	case checkpoint.NodeFinished:
		m.NodeOutcomes.WithLabelValues(e.Checkpoint, string(e.Status)).Inc()
	case checkpoint.ApprovalWaiting:
		m.ApprovalsPending.Inc()
	case checkpoint.ApprovalDecided:
		m.ApprovalsPending.Dec()
		if e.Err != nil {
			m.ApprovalErrors.Inc()
			return
		}
		m.ApprovalsDecided.WithLabelValues(string(e.Decision.Channel), strconv.FormatBool(e.Decision.Approved)).Inc()
	case checkpoint.RunFinished:
		m.EventsDropped.Add(float64(e.Dropped))
		m.mu.Lock()
		clear(m.started)
		m.mu.Unlock()
	}
}

// end counts a checkpoint end and, when its start was seen, its duration.
func (m *Metrics) end(name, outcome string, at time.Time) {
	m.CheckpointRuns.WithLabelValues(name, outcome).Inc()
	m.mu.Lock()
	start, ok := m.started[name]
	delete(m.started, name)
	m.mu.Unlock()
	if ok && !at.Before(start) {
		m.CheckpointDuration.WithLabelValues(name).Observe(at.Sub(start).Seconds())
	}
}

// Sink returns Observe as a checkpoint.EventSink.
func (m *Metrics) Sink() checkpoint.EventSink { return m.Observe }
