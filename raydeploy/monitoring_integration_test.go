package raydeploy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

// TestMonitoringDeployment deploys the monitoring stack with real Prometheus
// and real node-exporter (Debian's packages, or the RAYDEPLOY_TEST_*_IMAGE
// images) and stand-ins for Grafana and cAdvisor on two of three nodes, then
// adds the third node: Prometheus reloads in place and keeps its data.
func TestMonitoringDeployment(t *testing.T) {
	tb := newTestbed(t, 3)
	ctx := t.Context() // no wall-clock bound of its own (the first deploy alone took 14 minutes on the loaded machine)
	head := tb.env.Nodes[0]
	all := tb.cluster.Workers
	tb.cluster.Workers = all[:1] // node0 (head) and node1 first

	reg := prometheus.NewRegistry()
	metrics, err := monitoring.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := tb.deployer(t, raydeploy.Options{Metrics: metrics, Logger: logger})
	start := time.Now()
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep)
		t.Fatal(err)
	}
	t.Logf("first deploy (2 nodes, all checkpoints) took %s", time.Since(start))
	for _, c := range rep.Checkpoints {
		if c.Name == raydeploy.CheckpointMonitoring {
			for _, n := range c.Nodes {
				t.Logf("monitoring-deployment on %s: %s", n.Node, n.Summary)
			}
		}
	}
	for _, name := range []string{raydeploy.CheckpointMonitoring, raydeploy.CheckpointValidation} {
		if got := statusOf(rep, name); got != checkpoint.StatusSucceeded {
			logReport(t, rep)
			t.Fatalf("%s: %s, want succeeded", name, got)
		}
	}

	// Real Prometheus reports the real node-exporter of every node up, and
	// has its series.
	wantUp(t, ctx, head, map[string]int{"node": 2, "cadvisor": 2, "prometheus": 1, "ray": 2})
	if v := promQuery(t, ctx, head, `count(node_uname_info{job="node"})`, time.Time{}); v != 2 {
		t.Errorf("count(node_uname_info) = %g, want 2 (one per node-exporter)", v)
	}
	beforeChange := time.Now()

	// The admin password: 0600 in the state dir, the same on the head (0400,
	// Grafana's uid), accepted by Grafana, and nowhere else.
	pwPath := filepath.Join(tb.cluster.StateDir, monitoring.AdminPasswordFile)
	pwFile, err := os.ReadFile(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(pwPath); st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", pwPath, st.Mode().Perm())
	}
	password := strings.TrimSpace(string(pwFile))
	sum := sha256.Sum256([]byte(password))
	secret := "/var/lib/raydeploy/rdtest/grafana/secrets/" + monitoring.AdminPasswordFile
	out, err := head.Run(ctx, "root", "stat -c '%u %a' "+secret+" && sha256sum < "+secret+
		" && curl -s -o /dev/null -w '%{http_code}' -u admin:\"$(cat "+secret+")\" http://127.0.0.1:3000/api/user")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(out); len(f) < 5 || f[0] != "472" || f[1] != "400" || f[2] != hex.EncodeToString(sum[:]) || f[4] != "200" {
		t.Errorf("password file on the head: %q; want owner 472, mode 400, the state dir's password, and Grafana answering 200 to it", out)
	}
	env, err := head.Run(ctx, "root", "docker inspect --format '{{json .Config.Env}} {{json .Config.Cmd}}' rdtest-grafana")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(env, password) {
		t.Error("the Grafana admin password is in the container's environment or command")
	}
	if strings.Contains(logs.String(), password) {
		t.Error("the Grafana admin password is in the deployer's logs")
	}
	ledgerFile, err := os.ReadFile(filepath.Join(tb.cluster.StateDir, checkpoint.LedgerFile))
	if err != nil || !bytes.Contains(ledgerFile, []byte(`"`+raydeploy.CheckpointMonitoring+`"`)) {
		t.Errorf("the ledger cannot be checked for the password: %v (%d bytes, monitoring-deployment recorded: %v)",
			err, len(ledgerFile), bytes.Contains(ledgerFile, []byte(raydeploy.CheckpointMonitoring)))
	} else if bytes.Contains(ledgerFile, []byte(password)) {
		t.Error("the Grafana admin password is in the ledger")
	}

	// Grafana (the stand-in, or RAYDEPLOY_TEST_GRAFANA_IMAGE) answers what a
	// user checks in the real one: health, the provisioned datasource and
	// our dashboards, through its API with the admin password.
	var health struct {
		Database string `json:"database"`
		Version  string `json:"version"`
	}
	getJSON(t, ctx, head, "http://127.0.0.1:3000/api/health", &health)
	if health.Database != "ok" || health.Version == "" {
		t.Errorf("Grafana /api/health = %+v, want database ok and a version", health)
	}
	var ds struct {
		UID       string `json:"uid"`
		Type      string `json:"type"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
	}
	grafanaAPI(t, ctx, head, secret, "/api/datasources/uid/"+monitoring.DatasourceUID, &ds)
	if ds.UID != monitoring.DatasourceUID || ds.Type != "prometheus" || !strings.Contains(ds.URL, head.Address+":9090") || !ds.IsDefault {
		t.Errorf("Grafana datasource %+v, want the default prometheus datasource at %s:9090", ds, head.Address)
	}
	var boards []struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
	}
	grafanaAPI(t, ctx, head, secret, "/api/search?type=dash-db", &boards)
	found := map[string]bool{}
	for _, b := range boards {
		found[b.UID] = true
	}
	for _, uid := range []string{monitoring.DashboardNodesUID, monitoring.DashboardContainersUID, monitoring.DashboardRayUID} {
		if !found[uid] {
			t.Errorf("Grafana lists no dashboard %s; it has %+v", uid, boards)
		}
	}
	var board struct {
		Dashboard struct {
			Templating struct {
				List []struct {
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"list"`
			} `json:"templating"`
		} `json:"dashboard"`
	}
	grafanaAPIFiltered(t, ctx, head, secret, "/api/dashboards/uid/"+monitoring.DashboardNodesUID,
		`{"dashboard": {"templating": d["dashboard"]["templating"]}}`, &board)
	if l := board.Dashboard.Templating.List; len(l) == 0 || l[0].Name != "datasource" || l[0].Type != "datasource" {
		t.Errorf("dashboard %s templating %+v, want the datasource variable first", monitoring.DashboardNodesUID, l)
	}

	// The deployer's metrics, on the registry the test passed.
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"runs monitoring-deployment succeeded", testutil.ToFloat64(metrics.CheckpointRuns.WithLabelValues(raydeploy.CheckpointMonitoring, monitoring.OutcomeSucceeded)), 1},
		{"runs final-validation succeeded", testutil.ToFloat64(metrics.CheckpointRuns.WithLabelValues(raydeploy.CheckpointValidation, monitoring.OutcomeSucceeded)), 1},
		{"runs docker-installation skipped", testutil.ToFloat64(metrics.CheckpointRuns.WithLabelValues(raydeploy.CheckpointDocker, monitoring.OutcomeSkipped)), 1},
		{"nodes monitoring-deployment succeeded", testutil.ToFloat64(metrics.NodeOutcomes.WithLabelValues(raydeploy.CheckpointMonitoring, string(checkpoint.StatusSucceeded))), 2},
		{"checkpoint run series", float64(testutil.CollectAndCount(metrics.CheckpointRuns)), 6},
		{"duration series", float64(testutil.CollectAndCount(metrics.CheckpointDuration)), 6},
	} {
		if c.got != c.want {
			t.Errorf("metric %s = %g, want %g", c.name, c.got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "raydeploy_checkpoint_runs_total"); err != nil || n != 0 {
		t.Errorf("the global registry has %d raydeploy series (%v), want none", n, err)
	}

	// Validate reports every monitoring endpoint healthy.
	v, err := d.Validate(ctx, raydeploy.ValidateOptions{HealthOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	monChecks := map[string]int{}
	for _, c := range v.Checks {
		switch c.Name {
		case monitoring.ServiceNodeExporter, monitoring.ServiceCAdvisor, monitoring.ServicePrometheus, "prometheus-targets", monitoring.ServiceGrafana:
			if c.OK {
				monChecks[c.Name]++
			}
		}
	}
	if !v.OK || monChecks[monitoring.ServiceNodeExporter] != 2 || monChecks[monitoring.ServiceCAdvisor] != 2 ||
		monChecks[monitoring.ServicePrometheus] != 1 || monChecks["prometheus-targets"] != 1 || monChecks[monitoring.ServiceGrafana] != 1 {
		t.Errorf("monitoring checks passed %v; report:\n%s", monChecks, v.Text())
	}

	// A second deploy is a no-op for monitoring: same containers.
	before := tb.containerIDs(t, ctx)
	d2 := tb.deployer(t, raydeploy.Options{})
	start = time.Now()
	rep2, err := d2.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep2)
		t.Fatal(err)
	}
	t.Logf("no-op re-run of all checkpoints took %s", time.Since(start))
	if got := statusOf(rep2, raydeploy.CheckpointMonitoring); got != checkpoint.StatusSkippedSatisfied {
		logReport(t, rep2)
		t.Errorf("second deploy, %s: %s, want skipped-satisfied", raydeploy.CheckpointMonitoring, got)
	}
	if after := tb.containerIDs(t, ctx); after["node0"] != before["node0"] || after["node1"] != before["node1"] {
		t.Errorf("containers changed on a no-op re-run:\nbefore %v\nafter  %v", before, after)
	}
	promID := containerID(t, ctx, head, "rdtest-prometheus")
	configBefore, _ := head.Run(ctx, "root", "sha256sum < /var/lib/raydeploy/rdtest/prometheus/config/prometheus.yml")

	// node2 joins: prometheus.yml changes, Prometheus reloads in place, the
	// new node-exporter is up and the old data is still there.
	tb.cluster.Workers = all
	d3 := tb.deployer(t, raydeploy.Options{})
	plans, err := d3.Plan(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointMonitoring})
	if err != nil {
		t.Fatal(err)
	}
	if p := plans[0].String(); !strings.Contains(p, "prometheus.yml and reload Prometheus") || !strings.Contains(p, "node2") {
		t.Errorf("plan after adding node2 does not update prometheus.yml and start node2's services:\n%s", p)
	}
	start = time.Now()
	rep3, err := d3.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		logReport(t, rep3)
		t.Fatal(err)
	}
	t.Logf("deploy adding node2 took %s", time.Since(start))
	if got := statusOf(rep3, raydeploy.CheckpointMonitoring); got != checkpoint.StatusSucceeded {
		logReport(t, rep3)
		t.Fatalf("%s after adding node2: %s, want succeeded", raydeploy.CheckpointMonitoring, got)
	}
	if configAfter, _ := head.Run(ctx, "root", "sha256sum < /var/lib/raydeploy/rdtest/prometheus/config/prometheus.yml"); configAfter == configBefore {
		t.Error("prometheus.yml did not change when node2 joined")
	}
	if id := containerID(t, ctx, head, "rdtest-prometheus"); id != promID {
		t.Errorf("Prometheus container %s replaced by %s; want a reload in place", promID[:12], id[:12])
	}
	wantUp(t, ctx, head, map[string]int{"node": 3, "cadvisor": 3, "prometheus": 1, "ray": 3})
	if v := promQuery(t, ctx, head, `count_over_time(up{job="node",node="node1"}[5m])`, beforeChange); v < 1 {
		t.Errorf("node1's samples from before the change: %g, want at least 1 (Prometheus kept its data)", v)
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func containerID(t *testing.T, ctx context.Context, n *testenv.Node, name string) string {
	t.Helper()
	out, err := n.Run(ctx, "root", "docker inspect --format '{{.Id}}' "+name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// grafanaAPI fetches a Grafana API path on the head with the admin's basic
// auth, the password read from its file there (it never leaves the node).
func grafanaAPI(t *testing.T, ctx context.Context, head *testenv.Node, secret, path string, v any) {
	t.Helper()
	grafanaAPIFiltered(t, ctx, head, secret, path, "", v)
}

// grafanaAPIFiltered is grafanaAPI with the answer cut down on the node by a
// Python expression over the decoded JSON d (a dashboard is tens of KB; the
// test needs a few fields of it).
func grafanaAPIFiltered(t *testing.T, ctx context.Context, head *testenv.Node, secret, path, expr string, v any) {
	t.Helper()
	cmd := `curl -sf -u admin:"$(cat ` + secret + `)" 'http://127.0.0.1:3000` + path + `'`
	if expr != "" {
		cmd += ` | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(` + expr + `))'`
	}
	out, err := head.Run(ctx, "root", cmd)
	if err != nil {
		t.Fatalf("Grafana GET %s: %v", path, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("Grafana GET %s: %v: %.300s", path, err, out)
	}
}

// getJSON fetches url on the node (curl as root) and decodes the answer.
func getJSON(t *testing.T, ctx context.Context, n *testenv.Node, u string, v any) {
	t.Helper()
	out, err := n.Run(ctx, "root", "curl -sf '"+u+"'")
	if err != nil {
		t.Fatalf("GET %s on %s: %v", u, n.Name, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("GET %s on %s: %v: %.300s", u, n.Name, err, out)
	}
}

// wantUp checks Prometheus' active targets: every one up, and as many per
// job as want says.
func wantUp(t *testing.T, ctx context.Context, head *testenv.Node, want map[string]int) {
	t.Helper()
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	getJSON(t, ctx, head, "http://127.0.0.1:9090/api/v1/targets?state=active", &r)
	got := map[string]int{}
	for _, at := range r.Data.ActiveTargets {
		if at.Health != "up" {
			t.Errorf("target %s on %s: %s %s", at.Labels["job"], at.Labels["node"], at.Health, at.LastError)
			continue
		}
		got[at.Labels["job"]]++
	}
	for job, n := range want {
		if got[job] != n {
			t.Errorf("job %s: %d targets up, want %d (all up: %v)", job, got[job], n, got)
		}
	}
}

// promQuery runs an instant query (at the given time, or now) on the head's
// Prometheus and returns the first sample's value (0 when none).
func promQuery(t *testing.T, ctx context.Context, head *testenv.Node, q string, at time.Time) float64 {
	t.Helper()
	u := "http://127.0.0.1:9090/api/v1/query?query=" + url.QueryEscape(q)
	if !at.IsZero() {
		// Millisecond precision: whole seconds could fall before the
		// first sample when it arrived within the same second.
		u += "&time=" + strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	getJSON(t, ctx, head, u, &r)
	if len(r.Data.Result) == 0 {
		return 0
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %v: %v", q, r.Data.Result[0].Value, err)
	}
	return v
}
