package raydeploy_test

import (
	"strings"
	"testing"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// TestFinalValidationZeroCPUHead deploys the seed's layout: the head gives Ray
// no CPUs (the seed's group_vars/head_nodes.yml says ray_num_cpus: 0, so that
// work stays off the head), a worker with the seed's worker resources, and a
// worker that gives Ray no CPUs, only a custom resource. final-validation must pass and run
// its task on every node, the head included, against a Ray stand-in that
// schedules by resources as Ray does.
func TestFinalValidationZeroCPUHead(t *testing.T) {
	seed, _, err := raydeploy.Load("testdata/seed/inventory.ini")
	if err != nil {
		t.Fatal(err)
	}
	if seed.Head.Resources.CPUs == nil || *seed.Head.Resources.CPUs != 0 {
		t.Fatalf("the seed's head resources %+v: want ray_num_cpus 0", seed.Head.Resources)
	}
	tb := newTestbed(t, 3)
	ctx := t.Context() // no wall-clock bound of its own: the test timeout catches a hang
	tb.cluster.Head.Resources = seed.Head.Resources
	tb.cluster.Workers[0].Resources = seed.Workers[0].Resources
	// No GPUs here: the SDK gives a GPU node's container the GPUs (a device
	// request), which the test nodes cannot grant. The stand-in's own tests
	// and cp_validate_test cover GPU-only nodes.
	tb.cluster.Workers[1].Resources = raydeploy.Resources{CPUs: new(0), Custom: map[string]float64{"tts": 1}}

	d := tb.deployer(t, raydeploy.Options{NoMonitoring: true})
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep)
		t.Fatalf("deploy of the seed's layout: %v", err)
	}
	if got := statusOf(rep, raydeploy.CheckpointValidation); got != checkpoint.StatusSucceeded {
		logReport(t, rep)
		t.Fatalf("final-validation: %s, want succeeded", got)
	}

	v, err := d.Validate(ctx, raydeploy.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK {
		t.Fatalf("validation failed:\n%s", v.Text())
	}
	want := map[string]string{"node0": "ALIVE, 0 CPUs", "node2": "ALIVE, 0 CPUs, tts 1"}
	tasks := map[string]bool{}
	for _, c := range v.Checks {
		switch c.Name {
		case "ray-task":
			tasks[c.Node] = c.OK
		case "ray-node":
			if w, ok := want[c.Node]; ok && !strings.HasPrefix(c.Detail, w) {
				t.Errorf("ray-node %s: %q, want %q", c.Node, c.Detail, w)
			}
		}
	}
	for _, n := range []string{"node0", "node1", "node2"} {
		if !tasks[n] {
			t.Errorf("no validation task ran on %s:\n%s", n, v.Text())
		}
	}
}
