package monitoring

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
)

func TestMetricsFromEvents(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var sink checkpoint.EventSink = m.Observe
	for _, e := range []checkpoint.Event{
		checkpoint.CheckpointStarted{Checkpoint: "prerequisites-check", At: at(0)},
		checkpoint.NodeFinished{Checkpoint: "prerequisites-check", Node: "a", Status: checkpoint.StatusSucceeded, At: at(1)},
		checkpoint.NodeFinished{Checkpoint: "prerequisites-check", Node: "b", Status: checkpoint.StatusSucceeded, At: at(1)},
		checkpoint.CheckpointFinished{Checkpoint: "prerequisites-check", At: at(3)},
		checkpoint.CheckpointStarted{Checkpoint: "docker-installation", At: at(3)},
		checkpoint.ApprovalWaiting{Checkpoint: "docker-installation", At: at(4)},
	} {
		sink(e)
	}
	if got := testutil.ToFloat64(m.ApprovalsPending); got != 1 {
		t.Errorf("approvals pending = %v, want 1", got)
	}
	for _, e := range []checkpoint.Event{
		checkpoint.ApprovalDecided{Checkpoint: "docker-installation", Decision: approval.Decision{Approved: true, Channel: approval.ChannelTerminal}, At: at(10)},
		checkpoint.NodeFinished{Checkpoint: "docker-installation", Node: "a", Status: checkpoint.StatusSucceeded, At: at(40)},
		checkpoint.NodeFinished{Checkpoint: "docker-installation", Node: "b", Status: checkpoint.StatusFailed, Err: errors.New("apt"), At: at(50)},
		checkpoint.CheckpointFailed{Checkpoint: "docker-installation", Err: errors.New("b failed"), At: at(63)},
		checkpoint.CheckpointStarted{Checkpoint: "cleanup-existing", At: at(70)},
		checkpoint.ApprovalWaiting{Checkpoint: "cleanup-existing", At: at(71)},
		checkpoint.ApprovalDecided{Checkpoint: "cleanup-existing", Err: errors.New("no terminal"), At: at(72)},
		checkpoint.CheckpointSkipped{Checkpoint: "ray-deployment", Reason: "satisfied", At: at(80)},
		checkpoint.RunFinished{Dropped: 3, At: at(81)},
	} {
		sink(e)
	}
	m.SSHError("auth")
	m.SSHError("auth")
	m.DockerError("pull")

	expect := `
# HELP raydeploy_checkpoint_runs_total Checkpoint runs that ended, by checkpoint and outcome (succeeded, failed, skipped).
# TYPE raydeploy_checkpoint_runs_total counter
raydeploy_checkpoint_runs_total{checkpoint="docker-installation",outcome="failed"} 1
raydeploy_checkpoint_runs_total{checkpoint="prerequisites-check",outcome="succeeded"} 1
raydeploy_checkpoint_runs_total{checkpoint="ray-deployment",outcome="skipped"} 1
# HELP raydeploy_node_outcomes_total Checkpoint ends on single nodes, by checkpoint and status.
# TYPE raydeploy_node_outcomes_total counter
raydeploy_node_outcomes_total{checkpoint="docker-installation",status="failed"} 1
raydeploy_node_outcomes_total{checkpoint="docker-installation",status="succeeded"} 1
raydeploy_node_outcomes_total{checkpoint="prerequisites-check",status="succeeded"} 2
# HELP raydeploy_approvals_pending Approval requests waiting for a decision.
# TYPE raydeploy_approvals_pending gauge
raydeploy_approvals_pending 0
# HELP raydeploy_approvals_decided_total Approval decisions, by channel and whether approved.
# TYPE raydeploy_approvals_decided_total counter
raydeploy_approvals_decided_total{approved="true",channel="terminal"} 1
# HELP raydeploy_approval_errors_total Approval requests that ended without a decision.
# TYPE raydeploy_approval_errors_total counter
raydeploy_approval_errors_total 1
# HELP raydeploy_ssh_connection_errors_total SSH connection errors, by kind.
# TYPE raydeploy_ssh_connection_errors_total counter
raydeploy_ssh_connection_errors_total{kind="auth"} 2
# HELP raydeploy_docker_api_errors_total Docker Engine API errors, by kind.
# TYPE raydeploy_docker_api_errors_total counter
raydeploy_docker_api_errors_total{kind="pull"} 1
# HELP raydeploy_events_dropped_total Progress events dropped because the consumer was too slow.
# TYPE raydeploy_events_dropped_total counter
raydeploy_events_dropped_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect),
		"raydeploy_checkpoint_runs_total", "raydeploy_node_outcomes_total", "raydeploy_approvals_pending",
		"raydeploy_approvals_decided_total", "raydeploy_approval_errors_total", "raydeploy_ssh_connection_errors_total",
		"raydeploy_docker_api_errors_total", "raydeploy_events_dropped_total"); err != nil {
		t.Error(err)
	}
	// Durations: prerequisites 3 s, docker-installation 60 s; the skipped
	// checkpoint had no start event and the cleanup never ended.
	if n := testutil.CollectAndCount(m.CheckpointDuration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
	expectHist := `
# HELP raydeploy_checkpoint_duration_seconds Time from start to end of a checkpoint run, by checkpoint.
# TYPE raydeploy_checkpoint_duration_seconds histogram
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="1"} 0
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="5"} 0
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="15"} 0
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="30"} 0
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="60"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="120"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="300"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="600"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="1200"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="1800"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="3600"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="docker-installation",le="+Inf"} 1
raydeploy_checkpoint_duration_seconds_sum{checkpoint="docker-installation"} 60
raydeploy_checkpoint_duration_seconds_count{checkpoint="docker-installation"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="1"} 0
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="5"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="15"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="30"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="60"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="120"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="300"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="600"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="1200"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="1800"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="3600"} 1
raydeploy_checkpoint_duration_seconds_bucket{checkpoint="prerequisites-check",le="+Inf"} 1
raydeploy_checkpoint_duration_seconds_sum{checkpoint="prerequisites-check"} 3
raydeploy_checkpoint_duration_seconds_count{checkpoint="prerequisites-check"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expectHist), "raydeploy_checkpoint_duration_seconds"); err != nil {
		t.Error(err)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(problems) == 0 {
		// The linter itself must be able to fail: a badly named metric is reported.
		bad := prometheus.NewRegistry()
		bad.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "raydeploy_errors", Help: "x"}))
		if p, _ := testutil.GatherAndLint(bad); len(p) == 0 {
			t.Error("promlint reports nothing for a counter without _total")
		}
	}
}

func TestNewMetricsOwnRegistry(t *testing.T) {
	if _, err := NewMetrics(nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry did not fail")
	}
	// A second registry works: nothing lives in package state.
	if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Error(err)
	}
}
