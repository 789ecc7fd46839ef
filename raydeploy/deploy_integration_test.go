package raydeploy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

// testbed is a testenv cluster described as a raydeploy.Cluster, with the Ray
// image (the stand-in, or RAYDEPLOY_TEST_RAY_IMAGE) on the controller's Engine.
type testbed struct {
	env     *testenv.Cluster
	cluster *raydeploy.Cluster
	image   string
	// monitoring is the stack with the test images (real Prometheus and
	// node-exporter, stand-ins for Grafana and cAdvisor, or the
	// RAYDEPLOY_TEST_*_IMAGE ones).
	monitoring *monitoring.Stack
}

func newTestbed(t *testing.T, nodes int) *testbed {
	t.Helper()
	env := testenv.NewCluster(t, nodes)
	ctx := t.Context() // image builds take what a loaded machine needs; the test timeout bounds them
	image, err := testenv.TestRayImage(ctx, env.Pool(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	mon, err := testenv.TestMonitoringImages(ctx, env.Pool(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	stack := &monitoring.Stack{
		PrometheusImage: mon.Prometheus, NodeExporterImage: mon.NodeExporter,
		GrafanaImage: mon.Grafana, CAdvisorImage: mon.CAdvisor,
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
		Ray:      raydeploy.RayConfig{Image: image},
	}
	for i, n := range env.Nodes {
		node := raydeploy.Node{Name: n.Name, Address: n.Address, Auth: raydeploy.Auth{SudoPassword: raydeploy.NewSecret(n.DeployPassword)}}
		if i == 0 {
			c.Head = node
		} else {
			c.Workers = append(c.Workers, node)
		}
	}
	return &testbed{env: env, cluster: c, image: image, monitoring: stack}
}

func (tb *testbed) deployer(t *testing.T, opts raydeploy.Options) *raydeploy.Deployer {
	t.Helper()
	if opts.Approver == nil {
		opts.Approver = approval.NewAuto("integration-test", true)
	}
	if opts.Monitoring == nil {
		opts.Monitoring = tb.monitoring
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

	// Seed-style leftovers and an unrelated container on node1:
	// cleanup-existing must remove the former and keep the latter.
	tiny, err := testenv.TinyImage(ctx, tb.env.Pool())
	if err != nil {
		t.Fatal(err)
	}
	n1 := tb.env.Nodes[1]
	if err := n1.LoadImage(ctx, tiny, tiny); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ray_worker", "unrelated-app"} {
		if _, err := n1.Run(ctx, "root", "docker run -d --name "+name+" "+tiny+" /tinyd"); err != nil {
			t.Fatal(err)
		}
	}

	d := tb.deployer(t, raydeploy.Options{})
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep)
		t.Fatal(err)
	}
	for _, name := range []string{raydeploy.CheckpointPrerequisites, raydeploy.CheckpointCleanup, raydeploy.CheckpointRay, raydeploy.CheckpointValidation} {
		if got := statusOf(rep, name); got != checkpoint.StatusSucceeded {
			t.Errorf("%s: %s, want succeeded", name, got)
		}
	}
	// Docker is on every node: satisfied without running.
	if got := statusOf(rep, raydeploy.CheckpointDocker); got != checkpoint.StatusSkippedSatisfied {
		t.Errorf("%s: %s, want skipped-satisfied", raydeploy.CheckpointDocker, got)
	}

	// Cleanup removed exactly the seed's container, with a recorded approval.
	names, err := n1.Run(ctx, "root", "docker ps -a --format '{{.Names}}' | sort")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(names, "ray_worker") || !strings.Contains(names, "unrelated-app") {
		t.Errorf("containers on node1 after cleanup:\n%s\nwant ray_worker gone and unrelated-app kept", names)
	}
	ledger := loadLedger(t, tb)
	rec := ledger.Node(raydeploy.CheckpointCleanup, "node1")
	if rec == nil || rec.Status != checkpoint.StatusSucceeded || rec.Approval == nil || rec.Approval.By != "integration-test" {
		t.Errorf("ledger for cleanup-existing on node1 = %+v, want succeeded with the approval recorded", rec)
	}
	if r := ledger.Node(raydeploy.CheckpointCleanup, "node0"); r == nil || r.Status != checkpoint.StatusSkippedSatisfied {
		t.Errorf("ledger for cleanup-existing on node0 = %+v, want skipped-satisfied (nothing to remove there)", r)
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

	// A second deploy changes nothing: every checkpoint that changes things
	// is satisfied and no container is replaced.
	before := tb.containerIDs(t, ctx)
	d2 := tb.deployer(t, raydeploy.Options{})
	start := time.Now()
	rep2, err := d2.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep2)
		t.Fatal(err)
	}
	t.Logf("no-op re-run of all checkpoints took %s", time.Since(start))
	for _, name := range []string{raydeploy.CheckpointDocker, raydeploy.CheckpointCleanup, raydeploy.CheckpointRay} {
		if got := statusOf(rep2, name); got != checkpoint.StatusSkippedSatisfied {
			t.Errorf("second deploy, %s: %s, want skipped-satisfied", name, got)
		}
	}
	if after := tb.containerIDs(t, ctx); !slices.Equal(mapValues(before), mapValues(after)) {
		t.Errorf("containers changed on a no-op re-run:\nbefore %v\nafter  %v", before, after)
	}

	// Down removes what the cluster owns, and only that.
	if _, err := d2.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for node, ids := range tb.containerIDs(t, ctx) {
		if ids != "" {
			t.Errorf("%s still runs cluster containers after Down: %s", node, ids)
		}
	}
	if names, _ := n1.Run(ctx, "root", "docker ps --format '{{.Names}}'"); !strings.Contains(names, "unrelated-app") {
		t.Errorf("Down removed an unrelated container; node1 runs:\n%s", names)
	}
}

func TestVersionMismatchRefusedBeforeStart(t *testing.T) {
	tb := newTestbed(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// node1 holds another Ray release under the same image name.
	old, err := testenv.RayImage(ctx, tb.env.Pool(), "2.57.0", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.env.Nodes[1].LoadImage(ctx, old, tb.image); err != nil {
		t.Fatal(err)
	}
	d := tb.deployer(t, raydeploy.Options{})
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	var mismatch *raydeploy.VersionMismatchError
	if !errors.As(err, &mismatch) {
		logReport(t, rep)
		t.Fatalf("deploy error = %v, want a VersionMismatchError", err)
	}
	if !regexp.MustCompile(`Ray 2\.57\.0, Python [0-9.]+ on node1`).MatchString(mismatch.Detail) ||
		!regexp.MustCompile(`Ray 2\.58\.0, Python [0-9.]+ on node0`).MatchString(mismatch.Detail) {
		t.Errorf("mismatch detail %q does not say which node runs what", mismatch.Detail)
	}
	for node, ids := range tb.containerIDs(t, ctx) {
		if ids != "" {
			t.Errorf("%s runs cluster containers although the versions differ: %s", node, ids)
		}
	}
}

func loadLedger(t *testing.T, tb *testbed) *checkpoint.Ledger {
	t.Helper()
	st, err := checkpoint.OpenStore(tb.cluster.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func logReport(t *testing.T, rep *checkpoint.Report) {
	t.Helper()
	if rep == nil {
		return
	}
	for _, c := range rep.Checkpoints {
		t.Logf("%s: %s %v", c.Name, c.Status, c.Err)
		for _, n := range c.Nodes {
			t.Logf("  %s: %s %v", n.Node, n.Summary, n.Err)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range []string{"node0", "node1", "node2"} {
		out = append(out, m[k])
	}
	return out
}

// docker-installation starts a stopped Engine and gives the login user the
// docker group, after an approval of exactly that plan.
func TestDockerInstallationStartsEngineAndGrantsAccess(t *testing.T) {
	env := testenv.NewClusterWith(t, testenv.Options{Nodes: 1, NoDockerd: true, Logf: t.Logf})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := env.Nodes[0]
	if _, err := n.Run(ctx, "root", "gpasswd -d deploy docker"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, known := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{
		Name:     "dockerinst",
		SSH:      raydeploy.SSHConfig{User: testenv.DeployUser, KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key, SudoPassword: raydeploy.NewSecret(n.DeployPassword)}},
		Head:     raydeploy.Node{Name: n.Name, Address: n.Address},
		StateDir: filepath.Join(dir, "state"),
	}
	queue := approval.NewQueue(time.Minute)
	d, err := raydeploy.New(c, raydeploy.Options{Approver: queue, NoMonitoring: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	plans, err := d.Plan(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointDocker})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, it := range plans[0].Items {
		actions = append(actions, it.Action)
	}
	if !slices.Contains(actions, "start") || !slices.Contains(actions, "grant") || slices.Contains(actions, "install") {
		t.Fatalf("plan actions %v, want start and grant (docker.io is installed):\n%s", actions, plans[0])
	}

	// A person approves through the queue, as the REST API would.
	go func() {
		for ctx.Err() == nil {
			for _, r := range queue.Pending() {
				_ = queue.Decide(r.ID, approval.Decision{Approved: true, By: "operator", Reason: "test", PlanDigest: r.PlanDigest, DecidedAt: time.Now()})
				return
			}
			time.Sleep(20 * time.Millisecond) // a person's reaction; Pending has no wait
		}
	}()
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointDocker})
	if err != nil {
		logReport(t, rep)
		t.Fatal(err)
	}
	if got := statusOf(rep, raydeploy.CheckpointDocker); got != checkpoint.StatusSucceeded {
		t.Fatalf("docker-installation: %s", got)
	}
	if out, err := n.Run(ctx, testenv.DeployUser, "docker info --format '{{.ServerVersion}}'"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("deploy user cannot use the Engine after docker-installation: %q, %v", out, err)
	}
	l := loadLedger(t, &testbed{cluster: c})
	if r := l.Node(raydeploy.CheckpointDocker, n.Name); r == nil || r.Approval == nil || r.Approval.By != "operator" || r.Approval.Channel != "queue" {
		t.Errorf("ledger = %+v, want the operator's queue approval recorded", r)
	}
	// Now satisfied.
	plans, err = d.Plan(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointDocker})
	if err != nil {
		t.Fatal(err)
	}
	if !plans[0].Empty() {
		t.Errorf("plan after the run is not empty:\n%s", plans[0])
	}
}
