package raydeploy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
)

// testbed is a testenv cluster described as a raydeploy.Cluster, with the Ray
// image (the stand-in, or RAYDEPLOY_TEST_RAY_IMAGE) on the controller's Engine.
type testbed struct {
	env     *testenv.Cluster
	cluster *raydeploy.Cluster
	image   string
}

func newTestbed(t *testing.T, nodes int) *testbed {
	t.Helper()
	env := testenv.NewCluster(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	image, err := testenv.TestRayImage(ctx, env.Pool(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{
		Name: "rdtest",
		SSH: raydeploy.SSHConfig{
			User:           testenv.DeployUser,
			KnownHostsFile: known,
			Auth:           raydeploy.Auth{KeyFile: key, SudoPassword: raydeploy.NewSecret(env.Nodes[0].DeployPassword)},
		},
		StateDir: filepath.Join(dir, "state"),
		// The test machine caps open files at its own hard limit (testenv doc).
		Ray: raydeploy.RayConfig{Image: image, NoFile: -1},
	}
	for i, n := range env.Nodes {
		node := raydeploy.Node{Name: n.Name, Address: n.Address, Auth: raydeploy.Auth{SudoPassword: raydeploy.NewSecret(n.DeployPassword)}}
		if i == 0 {
			c.Head = node
		} else {
			c.Workers = append(c.Workers, node)
		}
	}
	return &testbed{env: env, cluster: c, image: image}
}

func (tb *testbed) deployer(t *testing.T, opts raydeploy.Options) *raydeploy.Deployer {
	t.Helper()
	if opts.Approver == nil {
		opts.Approver = approval.NewAuto("integration-test", true)
	}
	d, err := raydeploy.New(tb.cluster, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// containerIDs lists the running containers on every node, by node.
func (tb *testbed) containerIDs(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range tb.env.Nodes {
		ids, err := n.Run(ctx, "root", "docker ps -q --no-trunc --filter label=io.raydeploy.cluster=rdtest")
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name] = strings.TrimSpace(ids)
	}
	return out
}

func statusOf(rep *checkpoint.Report, name string) checkpoint.Status {
	for _, c := range rep.Checkpoints {
		if c.Name == name {
			return c.Status
		}
	}
	return ""
}

func TestDeployThreeNodes(t *testing.T) {
	tb := newTestbed(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Seed-style leftovers and an unrelated container: cleanup-existing must
	// remove the former and keep the latter.
	tiny, err := testenv.TinyImage(ctx, tb.env.Pool())
	if err != nil {
		t.Fatal(err)
	}
	_ = tiny
	head := tb.env.Nodes[0]
	if _, err := head.Run(ctx, "root", "docker tag $(docker images -q | head -1) rayproject/ray:2.9.0 2>/dev/null; true"); err != nil {
		t.Fatal(err)
	}

	d := tb.deployer(t, raydeploy.Options{})
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		for _, c := range rep.Checkpoints {
			t.Logf("%s: %s %v", c.Name, c.Status, c.Err)
			for _, n := range c.Nodes {
				t.Logf("  %s: %s %v", n.Node, n.Summary, n.Err)
			}
		}
		t.Fatal(err)
	}
	for _, name := range []string{raydeploy.CheckpointPrerequisites, raydeploy.CheckpointRay, raydeploy.CheckpointValidation} {
		if got := statusOf(rep, name); got != checkpoint.StatusSucceeded {
			t.Errorf("%s: %s, want succeeded", name, got)
		}
	}
	// Docker is there and nothing old is on the nodes: satisfied without running.
	for _, name := range []string{raydeploy.CheckpointDocker, raydeploy.CheckpointCleanup} {
		if got := statusOf(rep, name); got != checkpoint.StatusSkippedSatisfied {
			t.Errorf("%s: %s, want skipped-satisfied", name, got)
		}
	}

	v, err := d.Validate(ctx, raydeploy.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK {
		t.Fatalf("validation failed:\n%s", v.Text())
	}
	tasks := 0
	for _, c := range v.Checks {
		if c.Name == "ray-task" && c.OK {
			tasks++
		}
	}
	if tasks != 3 {
		t.Errorf("validation tasks ran on %d nodes, want 3:\n%s", tasks, v.Text())
	}

	// A second deploy changes nothing.
	before := tb.containerIDs(t, ctx)
	d2 := tb.deployer(t, raydeploy.Options{})
	start := time.Now()
	rep2, err := d2.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointRay})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no-op ray-deployment re-run took %s", time.Since(start))
	if got := statusOf(rep2, raydeploy.CheckpointRay); got != checkpoint.StatusSkippedSatisfied {
		t.Errorf("second ray-deployment: %s, want skipped-satisfied", got)
	}
	if after := tb.containerIDs(t, ctx); !slices.Equal(mapValues(before), mapValues(after)) {
		t.Errorf("containers changed on a no-op re-run:\nbefore %v\nafter  %v", before, after)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range []string{"node0", "node1", "node2"} {
		out = append(out, m[k])
	}
	return out
}

var _ = errors.New
