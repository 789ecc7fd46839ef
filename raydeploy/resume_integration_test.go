package raydeploy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// faultBeforeRun wraps a checkpoint and runs fault after the checkpoint
// planned and before it runs: the fault happens at that step boundary on
// every run, whatever an event sink does with its events.
type faultBeforeRun struct {
	checkpoint.Checkpoint
	fault func(context.Context) error
}

func (f *faultBeforeRun) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Checkpoint.Run(ctx, p)
}

// TestDeployResumesAfterNodeLoss loses node2 between ray-deployment's plan
// and its run, then resumes the way users are told to (RunOptions{Resume:
// true}, what `deploy-master --deploy --resume` runs) once the node is back:
// the checkpoints that succeeded are not run again, ray-deployment is redone
// on node2 only, and the nodes that were done keep their containers.
func TestDeployResumesAfterNodeLoss(t *testing.T) {
	tb := newTestbed(t, 3)
	ctx := t.Context() // no wall-clock bound of its own: the test timeout catches a hang
	victim := tb.env.Nodes[2]

	d := tb.deployer(t, raydeploy.Options{NoMonitoring: true})
	ray, err := d.Checkpoints().Get(raydeploy.CheckpointRay)
	if err != nil {
		t.Fatal(err)
	}
	stopped := 0
	if err := d.Checkpoints().Replace(raydeploy.CheckpointRay, &faultBeforeRun{Checkpoint: ray, fault: func(ctx context.Context) error {
		stopped++
		return victim.Stop(ctx)
	}}); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err == nil {
		t.Fatal("deploy succeeded with a node lost mid-way")
	}
	if stopped != 1 {
		t.Fatalf("the fault ran %d times, want once", stopped)
	}
	if got := statusOf(rep, raydeploy.CheckpointRay); got != checkpoint.StatusFailed {
		logReport(t, rep)
		t.Fatalf("ray-deployment: %s, want failed", got)
	}
	if !strings.Contains(err.Error(), "node2") {
		t.Errorf("error does not name the lost node: %v", err)
	}
	ledger := loadLedger(t, tb)
	for node, want := range map[string]checkpoint.Status{"node0": checkpoint.StatusSucceeded, "node1": checkpoint.StatusSucceeded, "node2": checkpoint.StatusFailed} {
		if r := ledger.Node(raydeploy.CheckpointRay, node); r == nil || r.Status != want {
			t.Errorf("ledger ray-deployment/%s = %+v, want %s", node, r, want)
		}
	}
	failure, err := checkpoint.ReadFailure(tb.cluster.StateDir)
	if err != nil || failure == nil || failure.Checkpoint != raydeploy.CheckpointRay || !slices.Contains(failure.FailedNodes, "node2") {
		t.Errorf("failure record = %+v, %v; want ray-deployment naming node2", failure, err)
	}
	d.Close()

	// The node comes back; the resume skips what succeeded and finishes the
	// job without touching the nodes that were done.
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	before := tb.containerIDs(t, ctx)
	d2 := tb.deployer(t, raydeploy.Options{NoMonitoring: true})
	var skipped []string
	rep2, err := d2.Deploy(ctx, checkpoint.RunOptions{Resume: true})
	if err != nil {
		logReport(t, rep2)
		t.Fatal(err)
	}
	for _, c := range rep2.Checkpoints {
		if c.Skipped == "already succeeded" {
			skipped = append(skipped, c.Name)
		}
		if c.Name == raydeploy.CheckpointRay {
			if got := c.Plan.Nodes(); c.Status != checkpoint.StatusSucceeded || !slices.Equal(got, []string{"node2"}) {
				t.Errorf("resumed ray-deployment: %s, planned on %v; want succeeded, planned on node2 only:\n%s", c.Status, got, c.Plan)
			}
		}
	}
	if want := []string{raydeploy.CheckpointPrerequisites, raydeploy.CheckpointDocker, raydeploy.CheckpointCleanup}; !slices.Equal(skipped, want) {
		logReport(t, rep2)
		t.Errorf("resume skipped %v, want %v (what had succeeded)", skipped, want)
	}
	if got := statusOf(rep2, raydeploy.CheckpointValidation); got != checkpoint.StatusSucceeded {
		t.Errorf("final-validation after the resume: %s, want succeeded", got)
	}
	after := tb.containerIDs(t, ctx)
	for _, node := range []string{"node0", "node1"} {
		if before[node] == "" || after[node] != before[node] {
			t.Errorf("%s: containers %q before the resume, %q after; want the same (the finished node was not redone)", node, before[node], after[node])
		}
	}
	if after["node2"] == "" {
		t.Error("node2 runs no Ray container after the resume")
	}
}
