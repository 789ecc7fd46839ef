package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

const (
	prometheusBin   = "/usr/bin/prometheus"
	promtoolBin     = "/usr/bin/promtool"
	nodeExporterBin = "/usr/bin/prometheus-node-exporter"
)

var sdPathInConfig = []byte(rayTempMount + "/" + RayServiceDiscoveryFile)

// freePort returns a TCP port that is free on every host and on all interfaces.
func freePort(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, h := range hosts {
			l, err := net.Listen("tcp", hostPort(h, port))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// syncBuffer collects a process' output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a program until the test ends; its output is logged when the test fails.
func start(t *testing.T, name string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), lastLines(out.String(), 30))
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// rewriteArgs maps the container's paths and addresses in a spec's
// command to the ones of a process on this machine.
func rewriteArgs(args []string, repl map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		flag, val, ok := strings.Cut(a, "=")
		if r, found := repl[val]; ok && found {
			a = flag + "=" + r
		}
		out[i] = a
	}
	return out
}

func specByName(t *testing.T, s Stack, name string) []string {
	t.Helper()
	for _, sp := range s.Services("test", nil) {
		if sp.Name == name {
			return sp.Command
		}
	}
	t.Fatalf("no service %s", name)
	return nil
}

// startNodeExporter runs the real node-exporter with the spec's flags, the
// container's /host paths mapped to this machine's.
func startNodeExporter(t *testing.T, s Stack, addr string) {
	args := rewriteArgs(specByName(t, s, ServiceNodeExporter), map[string]string{
		"/host/root": "/", "/host/proc": "/proc", "/host/sys": "/sys",
		":" + strconv.Itoa(s.NodeExporterPort): hostPort(addr, s.NodeExporterPort),
	})
	start(t, nodeExporterBin, args...)
}

type promAPI struct {
	base string
}

func (p promAPI) get(ctx context.Context, path string, params url.Values, v any) error {
	u := p.base + path
	if params != nil {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, body.Error)
	}
	return json.Unmarshal(body.Data, v)
}

type promTarget struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	ScrapeURL string            `json:"scrapeUrl"`
}

type promTargets struct {
	Active  []promTarget `json:"activeTargets"`
	Dropped []struct {
		DiscoveredLabels map[string]string `json:"discoveredLabels"`
	} `json:"droppedTargets"`
}

type vectorResult struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
	} `json:"result"`
}

func (p promAPI) query(ctx context.Context, expr string, at time.Time) (vectorResult, error) {
	params := url.Values{"query": {expr}}
	if !at.IsZero() {
		params.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	var r vectorResult
	err := p.get(ctx, "/api/v1/query", params, &r)
	return r, err
}

// waitUp polls the targets until the job's targets of the nodes are up; a
// job name ending in "?" waits only for the nodes' targets to exist.
func (p promAPI) waitUp(ctx context.Context, t *testing.T, job string, nodes ...string) promTargets {
	t.Helper()
	var last promTargets
	var lastErr error
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		lastErr = p.get(ctx, "/api/v1/targets", nil, &last)
		up := map[string]bool{}
		anyHealth := strings.HasSuffix(job, "?")
		for _, tg := range last.Active {
			if anyHealth && tg.Labels["job"] == strings.TrimSuffix(job, "?") {
				up[tg.Labels["node"]] = true
			}
			if tg.Labels["job"] == job && tg.Health == "up" {
				up[tg.Labels["node"]] = true
			}
		}
		all := lastErr == nil
		for _, n := range nodes {
			all = all && up[n]
		}
		if all {
			return last
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: nodes %v not all up: err=%v targets=%+v", job, nodes, lastErr, last.Active)
		case <-tick.C:
		}
	}
}

func prepareConfig(t *testing.T, s Stack, dir string, targets []Target) []byte {
	t.Helper()
	cfg, err := s.PrometheusConfig("test", targets)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, sdPathInConfig) {
		t.Fatalf("config has no file SD of %s:\n%s", sdPathInConfig, cfg)
	}
	local := bytes.ReplaceAll(cfg, sdPathInConfig, []byte(filepath.Join(dir, RayServiceDiscoveryFile)))
	if err := os.WriteFile(filepath.Join(dir, PrometheusConfigFile), local, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPromtoolAcceptsConfig(t *testing.T) {
	testenv.RequireBinary(t, promtoolBin, "prometheus")
	dir := t.TempDir()
	s := Stack{DCGMExporterPort: 9400}
	prepareConfig(t, s, dir, []Target{
		{Name: "head", Address: "10.0.0.1", Head: true},
		{Name: "worker-1", Address: "10.0.0.2"},
		{Name: "worker-2", Address: "gpu-box.example"},
	})
	if err := os.WriteFile(filepath.Join(dir, RayServiceDiscoveryFile), []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), promtoolBin, "check", "config", filepath.Join(dir, PrometheusConfigFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool did not report success:\n%s", out)
	}
}

// TestRealPrometheus runs the real Prometheus and node-exporters (Debian's
// binaries) with the specs' flags and the generated configuration, and checks
// what a user would: every node is scraped and labelled, every dashboard query
// is valid PromQL and the node panels show every node, a reload adds a node
// without losing data, and Check reports each endpoint.
func TestRealPrometheus(t *testing.T) {
	testenv.RequireBinary(t, prometheusBin, "prometheus")
	testenv.RequireBinary(t, nodeExporterBin, "prometheus-node-exporter")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	s := Stack{ScrapeInterval: time.Second}.WithDefaults()
	s.NodeExporterPort = freePort(t, hosts...)
	s.PrometheusPort = freePort(t, hosts...)
	s.CAdvisorPort = freePort(t, hosts...)   // nothing listens: cAdvisor is not available here
	s.RayMetricsPort = freePort(t, hosts...) // nothing listens either
	s.GrafanaPort = freePort(t, hosts...)
	targets := []Target{
		{Name: "n1", Address: hosts[0], Head: true},
		{Name: "n2", Address: hosts[1]},
	}

	dir := t.TempDir()
	// Ray's file SD: one node we scrape statically (dropped), one we do not know.
	sd := fmt.Sprintf(`[{"labels":{"job":"ray"},"targets":["%s","127.0.0.9:%d"]}]`, hostPort(hosts[0], s.RayMetricsPort), s.RayMetricsPort)
	if err := os.WriteFile(filepath.Join(dir, RayServiceDiscoveryFile), []byte(sd), 0o644); err != nil {
		t.Fatal(err)
	}
	prepareConfig(t, s, dir, targets)
	for _, h := range hosts[:2] {
		startNodeExporter(t, s, h)
	}
	promArgs := rewriteArgs(s.prometheusArgs(), map[string]string{
		prometheusConfigMount + "/" + PrometheusConfigFile: filepath.Join(dir, PrometheusConfigFile),
		prometheusDataMount: filepath.Join(dir, "data"),
	})
	start(t, prometheusBin, promArgs...)
	p := promAPI{base: "http://" + hostPort(hosts[0], s.PrometheusPort)}

	tg := p.waitUp(ctx, t, JobNodeExporter, "n1", "n2")
	p.waitUp(ctx, t, JobPrometheus, "n1")
	for _, a := range tg.Active {
		if a.Labels["job"] == JobNodeExporter {
			want := map[string]string{"n1": "head", "n2": "worker"}[a.Labels["node"]]
			if a.Labels["role"] != want {
				t.Errorf("target %s: role %q, want %q", a.ScrapeURL, a.Labels["role"], want)
			}
		}
	}
	t.Run("ray file SD", func(t *testing.T) {
		// The discovery manager hands file SD targets over a few seconds after start.
		// Ray's file sets job="ray", which wins over the job name.
		tg := p.waitUp(ctx, t, JobRay+"?", "127.0.0.9")
		var discovered []string
		for _, a := range tg.Active {
			if a.Labels["role"] == "discovered" {
				discovered = append(discovered, a.Labels["node"]+"/"+a.Labels["role"])
			}
		}
		if !slices.Equal(discovered, []string{"127.0.0.9/discovered"}) {
			t.Errorf("file SD targets = %v, want only the node not scraped statically: [127.0.0.9/discovered]", discovered)
		}
		dropped := false
		for _, d := range tg.Dropped {
			dropped = dropped || d.DiscoveredLabels["__address__"] == hostPort(hosts[0], s.RayMetricsPort)
		}
		if !dropped {
			t.Errorf("the statically scraped node's file SD entry was not dropped: %+v", tg.Dropped)
		}
	})

	t.Run("dashboards", func(t *testing.T) {
		checkDashboardQueries(ctx, t, p, s, targets)
	})

	t.Run("check", func(t *testing.T) {
		r := s.Check(ctx, &http.Client{Timeout: 5 * time.Second}, targets)
		got := map[string]bool{}
		for _, e := range r.Endpoints {
			got[e.Service+"/"+e.Node] = e.Healthy
		}
		want := map[string]bool{
			"node-exporter/n1": true, "node-exporter/n2": true,
			"cadvisor/n1": false, "cadvisor/n2": false,
			"prometheus/n1": true, "prometheus-targets/n1": false, "grafana/n1": false,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("health = %v\nwant %v", got, want)
		}
		if r.Healthy() {
			t.Error("report healthy although cAdvisor and Grafana are absent")
		}
		err := r.Err()
		if err == nil || !strings.Contains(err.Error(), "cadvisor n2 down") {
			t.Errorf("Err() = %v; want it to name the down cadvisor target of n2", err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		before := time.Now()
		if r, err := p.query(ctx, `node_uname_info{node="n2"}`, before); err != nil || len(r.Result) != 1 {
			t.Fatalf("n2 before reload: %v %+v", err, r)
		}
		// A broken configuration is refused and reported; the old one stays.
		if err := os.WriteFile(filepath.Join(dir, PrometheusConfigFile), []byte("scrape_configs: [{job_name: }"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Reload(ctx, http.DefaultClient, p.base); err == nil {
			t.Error("Reload of a broken configuration returned nil")
		}

		startNodeExporter(t, s, hosts[2])
		more := append(slices.Clone(targets), Target{Name: "n3", Address: hosts[2]})
		prepareConfig(t, s, dir, more)
		if err := Reload(ctx, http.DefaultClient, p.base+"/"); err != nil {
			t.Fatal(err)
		}
		p.waitUp(ctx, t, JobNodeExporter, "n1", "n2", "n3")
		r, err := p.query(ctx, `node_uname_info{node="n2"}`, before)
		if err != nil || len(r.Result) != 1 {
			t.Errorf("series of n2 from before the reload: %v %+v; want still there", err, r)
		}
	})
}

// checkDashboardQueries sends every query of every provisioned dashboard to
// the real Prometheus: each must parse, and the node panels must show data
// for every node (polled: rates need a few scrapes).
func checkDashboardQueries(ctx context.Context, t *testing.T, p promAPI, s Stack, targets []Target) {
	files, err := s.GrafanaFiles(targets)
	if err != nil {
		t.Fatal(err)
	}
	mustHaveData := map[string]bool{}
	for _, d := range s.dashboards() {
		for _, pn := range d.Panels {
			if pn.nodeData {
				mustHaveData[d.UID+"/"+pn.Title] = true
			}
		}
	}
	if len(mustHaveData) < 10 {
		t.Fatalf("only %d node panels marked as needing data", len(mustHaveData))
	}
	var nodeNames []string
	for _, tg := range targets {
		nodeNames = append(nodeNames, tg.Name)
	}
	subst := strings.NewReplacer(
		"$node", "("+strings.Join(nodeNames, "|")+")",
		"$container", ".*",
		"$__rate_interval", "5s",
	)
	type pq struct{ dash, panel, expr string }
	var all []pq
	var vars []pq
	for name, data := range files {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		var d struct {
			UID        string `json:"uid"`
			Templating struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query string `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []jsonPanel `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, pn := range flattenPanels(d.Panels) {
			for _, tq := range pn.Targets {
				all = append(all, pq{d.UID, pn.Title, subst.Replace(tq.Expr)})
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				inner := strings.TrimSuffix(strings.TrimPrefix(v.Query, "label_values("), ", node)")
				inner = strings.TrimSuffix(inner, ", name)")
				vars = append(vars, pq{d.UID, "variable " + v.Name, subst.Replace(inner)})
			}
		}
	}
	if len(all) < 40 {
		t.Fatalf("only %d queries in the dashboards", len(all))
	}
	for _, v := range vars {
		r, err := p.query(ctx, v.expr, time.Time{})
		if err != nil {
			t.Errorf("%s %s: %q: %v", v.dash, v.panel, v.expr, err)
			continue
		}
		if v.dash == DashboardNodesUID {
			if got := nodesOf(r); !slices.Equal(got, nodeNames) {
				t.Errorf("%s %s offers nodes %v, want %v", v.dash, v.panel, got, nodeNames)
			}
		}
	}
	for _, q := range all {
		if _, err := p.query(ctx, q.expr, time.Time{}); err != nil {
			t.Errorf("dashboard %s panel %q: query rejected: %v\n%s", q.dash, q.panel, err, q.expr)
		}
	}
	if t.Failed() {
		return
	}
	// Node panels: every query shows every node (or, aggregated, a value).
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var missing []string
		for _, q := range all {
			if !mustHaveData[q.dash+"/"+q.panel] {
				continue
			}
			r, err := p.query(ctx, q.expr, time.Time{})
			if err != nil {
				missing = append(missing, fmt.Sprintf("%q: %v", q.panel, err))
				continue
			}
			nodes := nodesOf(r)
			if len(r.Result) == 0 || (len(nodes) > 0 && !slices.Equal(nodes, nodeNames)) {
				missing = append(missing, fmt.Sprintf("%q shows nodes %v of %v (%d series): %s", q.panel, nodes, nodeNames, len(r.Result), q.expr))
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node panels without data:\n%s", strings.Join(missing, "\n"))
		case <-tick.C:
		}
	}
}

type jsonPanel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource *datasourceRef  `json:"datasource"`
	Targets    []jsonQuery     `json:"targets"`
	Panels     []jsonPanel     `json:"panels"`
	GridPos    json.RawMessage `json:"gridPos"`
	ID         int             `json:"id"`
}

type jsonQuery struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

func flattenPanels(ps []jsonPanel) []jsonPanel {
	var out []jsonPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flattenPanels(p.Panels)...)
	}
	return out
}

func nodesOf(r vectorResult) []string {
	var nodes []string
	for _, s := range r.Result {
		if n, ok := s.Metric["node"]; ok && !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	slices.Sort(nodes)
	return nodes
}
