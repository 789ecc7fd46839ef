package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

// TestCluster starts a head and two workers on 127.0.0.1-3 and checks,
// through the dashboard client, what the SDK relies on.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	headN := newNodeAddr(t, "127.0.0.1")
	w1 := newNodeAddr(t, "127.0.0.2")
	w2 := newNodeAddr(t, "127.0.0.3")
	gcsPort, dashPort := freePort(t, headN.ip), freePort(t, headN.ip)
	headN.proc = startRay(t, "head", nil, headArgs(t, headN, gcsPort, dashPort, 2)...)
	gcsAddr := net.JoinHostPort(headN.ip, strconv.Itoa(gcsPort))
	for i, w := range []*nodeAddr{w1, w2} {
		w.proc = startRay(t, "worker-"+w.ip, nil, "start", "--address="+gcsAddr,
			"--node-ip-address="+w.ip, "--num-cpus="+strconv.Itoa(i*2+1),
			"--metrics-export-port="+strconv.Itoa(w.metricsPort),
			"--dashboard-agent-listen-port="+strconv.Itoa(w.agentPort),
			"--temp-dir="+w.tempDir, "--block")
	}

	c, err := raydash.New(raydash.Config{BaseURL: fmt.Sprintf("http://%s:%d", headN.ip, dashPort)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "dashboard healthy", func() error { return c.GCSHealthy(ctx) })

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.RayVersion != "2.58.0" || v.Version == "" || !strings.HasPrefix(v.SessionName, "session_") {
		t.Errorf("version = %+v, want ray_version 2.58.0 and a session name", v)
	}

	wantCPUs := map[string]float64{"127.0.0.1": 2, "127.0.0.2": 1, "127.0.0.3": 3}
	var nodes []raydash.Node
	eventually(t, 30*time.Second, "3 nodes ALIVE", func() error {
		nodes, err = c.Nodes(ctx)
		if err != nil {
			return err
		}
		alive := 0
		for _, n := range nodes {
			if n.Alive() {
				alive++
			}
		}
		if alive != 3 {
			return fmt.Errorf("%d of %d nodes alive", alive, len(nodes))
		}
		return nil
	})
	ids := map[string]string{} // ip -> node id
	for _, n := range nodes {
		ids[n.IP] = n.ID
		if got, want := n.CPUs(), wantCPUs[n.IP]; got != want {
			t.Errorf("node %s: CPU = %v, want %v", n.IP, got, want)
		}
		if n.IsHead != (n.IP == headN.ip) {
			t.Errorf("node %s: IsHead = %v", n.IP, n.IsHead)
		}
		if len(n.ID) != 56 {
			t.Errorf("node %s: id %q is not 56 hex characters", n.IP, n.ID)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("node IPs = %v, want 127.0.0.1-3", ids)
	}
	if head := nodes[0]; head.Resources["head_slot"] != 1 {
		t.Errorf("head resources = %v, want head_slot 1 from --resources", head.Resources)
	}

	sums, err := c.NodeSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if len(sums) != 3 {
		t.Errorf("summaries: %d, want 3", len(sums))
	}
	for _, s := range sums {
		if s.Hostname != host || s.State != raydash.NodeAlive || s.ID != ids[s.IP] || s.MemTotal <= 0 {
			t.Errorf("summary %+v: want hostname %q, ALIVE, id %s, memory", s, host, ids[s.IP])
		}
	}

	raw, err := c.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cs struct {
		LoadMetricsReport struct {
			Usage map[string][2]float64 `json:"usage"`
		} `json:"loadMetricsReport"`
	}
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatalf("cluster status %s: %v", raw, err)
	}
	if got := cs.LoadMetricsReport.Usage["CPU"][1]; got != 6 {
		t.Errorf("cluster status CPU total = %v, want 6", got)
	}

	t.Run("agents and metrics", func(t *testing.T) {
		for _, n := range []*nodeAddr{headN, w1, w2} {
			status, body, err := httpGet(ctx, fmt.Sprintf("http://%s:%d/api/local_raylet_healthz", n.ip, n.agentPort))
			if err != nil || status != 200 || body != "success" {
				t.Errorf("%s local_raylet_healthz = %d %q %v", n.ip, status, body, err)
			}
			status, body, err = httpGet(ctx, fmt.Sprintf("http://%s:%d/api/healthz", n.ip, n.agentPort))
			if err != nil || status != 200 || body != "raylet: success\ngcs: success" {
				t.Errorf("%s healthz = %d %q %v", n.ip, status, body, err)
			}
			status, body, err = httpGet(ctx, fmt.Sprintf("http://%s:%d/metrics", n.ip, n.metricsPort))
			if err != nil || status != 200 {
				t.Fatalf("%s metrics = %d %v", n.ip, status, err)
			}
			want := fmt.Sprintf(`ray_node_cpu_count{ip=%q,instance=%q,SessionName=%q`, n.ip, n.ip, v.SessionName)
			for _, s := range []string{want, "ray_node_mem_total{", "ray_node_mem_used{", "ray_node_cpu_utilization{"} {
				if !strings.Contains(body, s) {
					t.Errorf("%s metrics lack %q:\n%s", n.ip, s, body)
				}
			}
		}
	})

	t.Run("session and service discovery", func(t *testing.T) {
		target, err := os.Readlink(filepath.Join(headN.tempDir, "session_latest"))
		if err != nil || filepath.Base(target) != v.SessionName {
			t.Errorf("session_latest -> %q (%v), want the session %s", target, err, v.SessionName)
		}
		want := []string{}
		for _, n := range []*nodeAddr{headN, w1, w2} {
			want = append(want, net.JoinHostPort(n.ip, strconv.Itoa(n.metricsPort)))
		}
		eventually(t, 15*time.Second, "file SD lists every node", func() error {
			return checkSD(filepath.Join(headN.tempDir, "prom_metrics_service_discovery.json"), want)
		})
	})

	t.Run("jobs", func(t *testing.T) {
		sub, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{
			Entrypoint: `echo "hello from $GREETING on $RAY_ADDRESS"`,
			RuntimeEnv: map[string]any{"env_vars": map[string]string{"GREETING": "raydeploy"}},
			Metadata:   map[string]string{"owner": "test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sub.SubmissionID, "raysubmit_") {
			t.Errorf("submission id %q, want raysubmit_...", sub.SubmissionID)
		}
		info, err := c.WaitJob(ctx, sub.SubmissionID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != raydash.JobSucceeded || info.Metadata["owner"] != "test" || info.EndTime < info.StartTime {
			t.Errorf("job = %+v, want SUCCEEDED with metadata", info)
		}
		logs, err := c.JobLogs(ctx, sub.SubmissionID)
		if err != nil {
			t.Fatal(err)
		}
		if want := "hello from raydeploy on " + gcsAddr; strings.TrimSpace(logs) != want {
			t.Errorf("logs = %q, want %q", logs, want)
		}

		fail, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "echo boom >&2; exit 3", SubmissionID: "fails"})
		if err != nil {
			t.Fatal(err)
		}
		info, err = c.WaitJob(ctx, fail.SubmissionID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != raydash.JobFailed || info.DriverExitCode == nil || *info.DriverExitCode != 3 || !strings.Contains(info.Message, "boom") {
			t.Errorf("failing job = %+v, want FAILED with exit code 3 and its log in the message", info)
		}
		_, err = c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "true", SubmissionID: "fails"})
		var he *raydash.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(he.Body, "already exists") {
			t.Errorf("duplicate submission id: err = %v, want 400 already exists", err)
		}

		long, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "sleep 300"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "job RUNNING", func() error {
			info, err := c.JobInfo(ctx, long.SubmissionID)
			if err == nil && info.Status != raydash.JobRunning {
				err = fmt.Errorf("status %s", info.Status)
			}
			return err
		})
		if err := c.DeleteJob(ctx, long.SubmissionID); err == nil {
			t.Error("deleting a running job succeeded, want an error")
		}
		if stopped, err := c.StopJob(ctx, long.SubmissionID); err != nil || !stopped {
			t.Fatalf("stop = %v, %v", stopped, err)
		}
		info, err = c.WaitJob(ctx, long.SubmissionID, 100*time.Millisecond)
		if err != nil || info.Status != raydash.JobStopped {
			t.Errorf("stopped job = %+v, %v; want STOPPED", info, err)
		}
		if err := c.DeleteJob(ctx, long.SubmissionID); err != nil {
			t.Errorf("delete stopped job: %v", err)
		}
		if _, err := c.JobInfo(ctx, long.SubmissionID); !errors.Is(err, raydash.ErrNotFound) {
			t.Errorf("deleted job: err = %v, want ErrNotFound", err)
		}
		jobs, err := c.Jobs(ctx)
		if err != nil || len(jobs) != 2 {
			t.Errorf("jobs = %d, %v; want the 2 left", len(jobs), err)
		}
	})

	t.Run("validation job", func(t *testing.T) {
		requirePython(t)
		sub, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "python " + sdkValidationJob(t)})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.WaitJob(ctx, sub.SubmissionID, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := c.JobLogs(ctx, sub.SubmissionID)
		if info.Status != raydash.JobSucceeded {
			t.Fatalf("validation job %s: %s\n%s", info.Status, info.Message, logs)
		}
		got := parseValidation(t, logs)
		var ips []string
		for _, r := range got {
			ips = append(ips, r.IP)
			if ids[r.IP] != r.NodeID || r.Hostname != host {
				t.Errorf("task result %+v: want node id %s, hostname %s", r, ids[r.IP], host)
			}
		}
		sort.Strings(ips)
		if strings.Join(ips, ",") != "127.0.0.1,127.0.0.2,127.0.0.3" {
			t.Errorf("validation ran on %v, want every node", ips)
		}
	})

	t.Run("dead worker", func(t *testing.T) {
		w2.proc.stop()
		eventually(t, 20*time.Second, "worker 127.0.0.3 DEAD", func() error {
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.IP == w2.ip {
					if n.State != raydash.NodeDead {
						return fmt.Errorf("state %s", n.State)
					}
					if n.StateMessage == "" {
						t.Error("DEAD node without a state message")
					}
					return nil
				}
			}
			return errors.New("node gone from the list")
		})
		eventually(t, 15*time.Second, "file SD drops the dead node", func() error {
			return checkSD(filepath.Join(headN.tempDir, "prom_metrics_service_discovery.json"), []string{
				net.JoinHostPort(headN.ip, strconv.Itoa(headN.metricsPort)),
				net.JoinHostPort(w1.ip, strconv.Itoa(w1.metricsPort)),
			})
		})
	})
}

// checkSD compares Ray's file-SD list with want (order ignored).
func checkSD(path string, want []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var sd []struct {
		Labels  map[string]string `json:"labels"`
		Targets []string          `json:"targets"`
	}
	if err := json.Unmarshal(b, &sd); err != nil {
		return fmt.Errorf("%s: %w", b, err)
	}
	if len(sd) != 1 || sd[0].Labels["job"] != "ray" {
		return fmt.Errorf("file SD = %s, want one group with job=ray", b)
	}
	got := append([]string(nil), sd[0].Targets...)
	sort.Strings(got)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if strings.Join(got, " ") != strings.Join(w, " ") {
		return fmt.Errorf("targets %v, want %v", got, w)
	}
	return nil
}

// validationResult is one entry of the RAYDEPLOY_VALIDATION line.
type validationResult struct {
	NodeID   string `json:"node_id"`
	IP       string `json:"ip"`
	Hostname string `json:"hostname"`
}

func parseValidation(t *testing.T, logs string) []validationResult {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if rest, ok := strings.CutPrefix(line, "RAYDEPLOY_VALIDATION "); ok {
			var out []validationResult
			if err := json.Unmarshal([]byte(rest), &out); err != nil {
				t.Fatalf("validation line %q: %v", rest, err)
			}
			return out
		}
	}
	t.Fatalf("no RAYDEPLOY_VALIDATION line in logs:\n%s", logs)
	return nil
}

// TestTokenAuth starts a head with RAY_AUTH_MODE=token and checks 401/403/200.
func TestTokenAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const token = "s3cret-token-for-test"
	n := newNodeAddr(t, "127.0.0.1")
	gcsPort, dashPort := freePort(t, n.ip), freePort(t, n.ip)
	startRay(t, "head", []string{"RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=" + token}, headArgs(t, n, gcsPort, dashPort, 1)...)
	base := fmt.Sprintf("http://%s:%d", n.ip, dashPort)

	good, _ := raydash.New(raydash.Config{BaseURL: base, Token: token})
	eventually(t, 30*time.Second, "dashboard up", func() error { return good.GCSHealthy(ctx) })
	if nodes, err := good.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Errorf("with the token: nodes = %v, %v", nodes, err)
	}

	none, _ := raydash.New(raydash.Config{BaseURL: base})
	_, err := none.Version(ctx)
	var he *raydash.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !errorsIsUnauthorized(err) {
		t.Errorf("no token: err = %v, want 401 ErrUnauthorized", err)
	}
	wrong, _ := raydash.New(raydash.Config{BaseURL: base, Token: "wrong"})
	_, err = wrong.Nodes(ctx)
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || !errorsIsUnauthorized(err) {
		t.Errorf("wrong token: err = %v, want 403 ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the token", err)
	}
	// X-Ray-Authorization is accepted too.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/version", nil)
	req.Header.Set("X-Ray-Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("X-Ray-Authorization: status %d, want 200", resp.StatusCode)
	}
}
