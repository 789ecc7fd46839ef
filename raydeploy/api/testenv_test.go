package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/raydeploy/api"
)

// clusterEnv is an api.Server over a real raydeploy.Deployer on a testenv
// cluster (real sshd and dockerd per node), with seed-style leftovers that
// cleanup-existing must remove.
type clusterEnv struct {
	*env
	tc *testenv.Cluster
}

func newClusterEnv(t *testing.T, nodes int) *clusterEnv {
	t.Helper()
	tc := testenv.NewCluster(t, nodes)
	plantLeftovers(t, tc)
	dir := t.TempDir()
	key, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, tc.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, tc.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{Name: "apitest", StateDir: filepath.Join(dir, "state"),
		SSH: raydeploy.SSHConfig{User: testenv.DeployUser, KnownHostsFile: known,
			Auth: raydeploy.Auth{KeyFile: key, SudoPassword: raydeploy.NewSecret(tc.Nodes[0].DeployPassword)}}}
	for i, n := range tc.Nodes {
		node := raydeploy.Node{Name: n.Name, Address: n.Address, Auth: raydeploy.Auth{SudoPassword: raydeploy.NewSecret(n.DeployPassword)}}
		if i == 0 {
			c.Head = node
		} else {
			c.Workers = append(c.Workers, node)
		}
	}
	e := &env{t: t, state: c.StateDir, tokens: map[string]string{}, tokFile: filepath.Join(dir, "tokens.json")}
	for _, name := range []string{"viewer", "operator", "approver"} {
		tok, err := api.CreateToken(e.tokFile, name, api.Role(name))
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	tokens, err := api.LoadTokens(e.tokFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	d, err := raydeploy.New(c, raydeploy.Options{Approver: srv.Approver(), Events: srv.EventSink(), NoMonitoring: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Attach(d); err != nil { // the server records into the log New opened
		t.Fatal(err)
	}
	audit := d.Audit()
	e.srv, e.audit = srv, audit
	e.ts = httptest.NewServer(srv)
	e.val = newValidator(t)
	e.val.setServer(e.ts.URL)
	t.Cleanup(func() { e.stop(); d.Close() })
	return &clusterEnv{env: e, tc: tc}
}

// plantLeftovers starts the seed's ray_head / ray_worker containers (of a
// tiny image) on the nodes, for cleanup-existing to find.
func plantLeftovers(t *testing.T, tc *testenv.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tiny, err := testenv.TinyImage(ctx, tc.Pool())
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tc.Nodes {
		if err := n.LoadImage(ctx, tiny, tiny); err != nil {
			t.Fatal(err)
		}
		name := map[bool]string{true: "ray_head", false: "ray_worker"}[i == 0]
		if _, err := n.Run(ctx, "root", "docker run -d --name "+name+" "+tiny+" /tinyd"); err != nil {
			t.Fatal(err)
		}
	}
}

// seedCurl returns the seed's curl example called name, rewritten for this
// server and the token.
func seedCurl(t *testing.T, name, url, token string) string {
	t.Helper()
	data, err := os.ReadFile("testdata/seed-curl-examples.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "# "+name+"\n")
	if !ok {
		t.Fatalf("no example %s", name)
	}
	block, _, _ := strings.Cut(rest, "\n\n")
	block = strings.ReplaceAll(block, "http://localhost:8000", url)
	return strings.Replace(block, "curl ", `curl -sS -H "Authorization: Bearer `+token+`" `, 1)
}

func runShell(t *testing.T, script string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", script, err, out.String(), errb.String())
	}
	return out.Bytes()
}

// startCleanup starts cleanup-existing as the operator and returns its
// pending request once the real plan is known.
func (ce *clusterEnv) startCleanup(t *testing.T) (string, api.ApprovalRequest) {
	t.Helper()
	var x api.CheckpointExecution
	if c := ce.call("operator", "POST", "/api/v1/checkpoints/cleanup-existing", map[string]bool{"approve": true}, &x); c != 202 {
		t.Fatalf("start cleanup: %d", c)
	}
	waitFor(t, "the cleanup approval request", func() bool {
		return len(ce.pending()) == 1 || ce.execution(x.ExecutionID).Status == api.ExecFailed
	})
	if ex := ce.execution(x.ExecutionID); ex.Status == api.ExecFailed {
		t.Fatalf("cleanup failed before approval: %+v", ex)
	}
	return x.ExecutionID, ce.pending()[0]
}

// TestOnTestenvCluster runs a server over a real Deployer on a 2-node
// testenv cluster (one cluster for both parts, to keep the suite short):
// the seed's curl examples, then the browser approving a cleanup.
func TestOnTestenvCluster(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("jq is needed by the seed's example (scripts/setup --tests installs it)")
	}
	exe := chromium(t)
	ce := newClusterEnv(t, 2)
	t.Run("SeedCurlExamples", func(t *testing.T) { seedCurlExamples(t, ce) })
	plantLeftovers(t, ce.tc)
	t.Run("BrowserApprovesCleanup", func(t *testing.T) { browserApprovesCleanup(t, ce, exe) })
}

// seedCurlExamples runs the seed's curl examples as written (plus the token
// header) against the server.
func seedCurlExamples(t *testing.T, ce *clusterEnv) {

	var st api.ClusterStatus
	if err := json.Unmarshal(runShell(t, seedCurl(t, "cluster-status", ce.ts.URL, ce.tokens["viewer"])), &st); err != nil {
		t.Fatal(err)
	}
	if st.TotalCheckpoints != 5 || st.DeploymentStatus != "IN_PROGRESS" || st.Cluster != "apitest" {
		t.Fatalf("status: %+v", st)
	}

	var ex api.CheckpointExecution
	if err := json.Unmarshal(runShell(t, seedCurl(t, "execute-docker-installation", ce.ts.URL, ce.tokens["operator"])), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Status != "STARTED" || ex.Checkpoint != "docker-installation" {
		t.Fatalf("execute: %+v", ex)
	}
	waitFor(t, "docker-installation to end or ask", func() bool {
		return len(ce.pending()) == 1 || ce.execution(ex.ExecutionID).Status != api.ExecRunning && ce.execution(ex.ExecutionID).Status != api.ExecStarted
	})
	if p := ce.pending(); len(p) == 1 { // a plan (e.g. the docker group) waits for an approver
		var da api.DecisionAnswer
		ce.call("approver", "POST", "/api/v1/approval-requests/"+p[0].ID+"/decision", map[string]any{"approved": true, "plan_digest": p[0].PlanDigest}, &da)
	}
	waitFor(t, "docker-installation", func() bool { return ce.execution(ex.ExecutionID).Status == api.ExecCompleted })

	id, req := ce.startCleanup(t)
	plan, _ := json.Marshal(req.Plan)
	for _, want := range []string{"ray_head", "ray_worker"} {
		if !strings.Contains(string(plan), want) {
			t.Fatalf("cleanup plan lacks %s: %s", want, plan)
		}
	}
	var ar api.ApprovalResponse
	if err := json.Unmarshal(runShell(t, seedCurl(t, "approve-cleanup", ce.ts.URL, ce.tokens["approver"])), &ar); err != nil {
		t.Fatal(err)
	}
	if !ar.Approved || ar.ApprovedBy != "approver" || ar.PlanDigest != req.PlanDigest {
		t.Fatalf("approval: %+v (body said approved_by admin; the principal is approver)", ar)
	}
	waitFor(t, "cleanup to finish", func() bool { return ce.execution(id).Status != api.ExecRunning })
	if x := ce.execution(id); x.Status != api.ExecCompleted {
		t.Fatalf("cleanup: %+v", x)
	}
	ctx := context.Background()
	for _, n := range ce.tc.Nodes {
		out, err := n.Run(ctx, "root", "docker ps -a --format '{{.Names}}'")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "ray_head") || strings.Contains(out, "ray_worker") {
			t.Errorf("%s still has the seed's containers: %s", n.Name, out)
		}
	}
	var cs api.CheckpointStatus
	if c := ce.call("viewer", "GET", "/api/v1/checkpoints/cleanup-existing", nil, &cs); c != 200 || cs.Status != "PASSED" || cs.ApprovedBy != "approver" {
		t.Fatalf("cleanup status: %d %+v", c, cs)
	}
	observedThroughTheDeployer(t, ce)
}

// observedThroughTheDeployer: node containers come from the real Deployer's
// listing over SSH (refreshed after a plan), and the Prometheus proxy goes
// through the head's SSH connection (nothing listens there: 502).
func observedThroughTheDeployer(t *testing.T, ce *clusterEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tiny, err := testenv.TinyImage(ctx, ce.tc.Pool())
	if err != nil {
		t.Fatal(err)
	}
	head := ce.tc.Nodes[0]
	if _, err := head.Run(ctx, "root", "docker run -d --name apitest-observed --label io.raydeploy.cluster=apitest "+tiny+" /tinyd"); err != nil {
		t.Fatal(err)
	}
	defer head.Run(context.Background(), "root", "docker rm -f apitest-observed")
	var pa api.PlanAnswer
	if c := ce.call("operator", "POST", "/api/v1/plans", map[string]any{"checkpoint": "prerequisites-check"}, &pa); c != 200 {
		t.Fatalf("plan: %d %+v", c, pa)
	}
	var nd api.NodeDetails
	waitFor(t, "the listing after the plan", func() bool {
		nd = api.NodeDetails{}
		ce.call("viewer", "GET", "/api/v1/nodes/"+head.Name, nil, &nd)
		return len(nd.Containers) > 0
	})
	if len(nd.Containers) != 1 || nd.Containers[0].Name != "apitest-observed" || nd.Containers[0].Status != "running" || nd.ContainersError != "" {
		t.Fatalf("head containers: %+v (error %q)", nd.Containers, nd.ContainersError)
	}
	var errb api.ErrorBody
	if c := ce.call("viewer", "GET", "/api/v1/monitoring/prometheus", nil, &errb); c != 502 || errb.Error != "PROMETHEUS_UNREACHABLE" || !strings.Contains(errb.Message, "port 9090") {
		t.Fatalf("prometheus proxy to a head without Prometheus: %d %+v", c, errb)
	}
}
