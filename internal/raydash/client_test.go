package raydash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/baseurl"
)

const testToken = "tok-3f9a-secret"

// fixture reads a file of testdata/.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// route is what the fake dashboard answers for "METHOD /path".
type route struct {
	status int
	body   []byte
	check  func(t *testing.T, r *http.Request, body []byte) // optional
}

// fakeDashboard serves routes and checks the bearer token on every request.
func fakeDashboard(t *testing.T, routes map[string]route) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			http.Error(w, "Unauthorized: Missing authentication token", http.StatusUnauthorized)
			return
		}
		rt, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, "no route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if rt.check != nil {
			rt.check(t, r, body)
		}
		if rt.status == 0 {
			rt.status = http.StatusOK
		}
		w.WriteHeader(rt.status)
		_, _ = w.Write(rt.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: srv.URL, Token: testToken, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVersionAndHealth(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{
		"GET /api/version":     {body: []byte(`{"version":"5","ray_version":"2.58.0","ray_commit":"abc","session_name":"session_x"}`)},
		"GET /api/gcs_healthz": {body: []byte("success")},
	})
	c := newTestClient(t, srv)
	v, err := c.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (VersionInfo{Version: "5", RayVersion: "2.58.0", RayCommit: "abc", SessionName: "session_x"}); v != want {
		t.Errorf("Version = %+v, want %+v", v, want)
	}
	if err := c.GCSHealthy(t.Context()); err != nil {
		t.Errorf("GCSHealthy: %v", err)
	}
}

func TestGCSUnhealthy(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{
		"GET /api/gcs_healthz": {status: http.StatusServiceUnavailable, body: []byte("GCS is not reachable")},
	})
	err := newTestClient(t, srv).GCSHealthy(t.Context())
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 503 || he.Body != "GCS is not reachable" {
		t.Errorf("err = %v, want *HTTPError 503 with the body", err)
	}
}

func TestNodes(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"GET /api/v0/nodes": {body: fixture(t, "api-v0-nodes.json")}})
	nodes, err := newTestClient(t, srv).Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 {
		t.Fatalf("got %d nodes, want 2", len(nodes))
	}
	h, w := nodes[0], nodes[1]
	if h.ID != "cef533a072b0f03bf92a6b98cb4eb9153b7b7c7b7f15954feb2f38ec" || h.IP != "10.0.29.214" || !h.IsHead || !h.Alive() || h.CPUs() != 8 || h.StateMessage != "" {
		t.Errorf("head = %+v", h)
	}
	if w.IsHead || w.Alive() || w.State != NodeDead || w.CPUs() != 4 || w.Resources["GPU"] != 1 || !strings.Contains(w.StateMessage, "heartbeats") {
		t.Errorf("worker = %+v", w)
	}
}

func TestNodeSummaries(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"GET /nodes": {
		body: fixture(t, "nodes-summary.json"),
		check: func(t *testing.T, r *http.Request, _ []byte) {
			if r.URL.Query().Get("view") != "summary" {
				t.Errorf("query %q, want view=summary", r.URL.RawQuery)
			}
		},
	}})
	sums, err := newTestClient(t, srv).NodeSummaries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeSummary{
		{ID: "cef533a072b0f03bf92a6b98cb4eb9153b7b7c7b7f15954feb2f38ec", IP: "10.0.29.214", Hostname: "ray-head-1", IsHead: true, State: NodeAlive, LogicalCPUs: 8, MemTotal: 33554432000},
		{ID: "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5", IP: "10.0.29.215", Hostname: "ray-worker-1", State: NodeDead},
	}
	if fmt.Sprint(sums) != fmt.Sprint(want) {
		t.Errorf("summaries = %+v\nwant %+v", sums, want)
	}
}

func TestClusterStatus(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"GET /api/cluster_status": {body: fixture(t, "cluster-status.json")}})
	raw, err := newTestClient(t, srv).ClusterStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var cs struct {
		LoadMetricsReport struct {
			Usage          map[string][]float64 `json:"usage"`
			ResourceDemand [][2]json.RawMessage `json:"resourceDemand"`
		} `json:"loadMetricsReport"`
		AutoscalerReport struct {
			ActiveNodes map[string]int `json:"activeNodes"`
		} `json:"autoscalerReport"`
	}
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatalf("cluster status %s: %v", raw, err)
	}
	u := cs.LoadMetricsReport.Usage
	if got := u["CPU"]; len(got) != 2 || got[0] != 530 || got[1] != 544 || len(u["objectStoreMemory"]) != 2 {
		t.Errorf("usage %v: want CPU [530 544] and the dashboard's camelCase objectStoreMemory", u)
	}
	if len(cs.LoadMetricsReport.ResourceDemand) != 1 || string(cs.LoadMetricsReport.ResourceDemand[0][1]) != "150" || cs.AutoscalerReport.ActiveNodes["m4.4xlarge"] != 20 {
		t.Errorf("cluster status %+v: want 150 tasks waiting for {CPU: 1} and 20 m4.4xlarge nodes", cs)
	}
}

func TestEnvelopeResultFalse(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"GET /api/v0/nodes": {body: []byte(`{"result":false,"msg":"Failed to query GCS","data":{}}`)}})
	_, err := newTestClient(t, srv).Nodes(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Msg != "Failed to query GCS" {
		t.Errorf("err = %v, want *APIError with Ray's msg", err)
	}
}

func TestErrorMapping(t *testing.T) {
	long := strings.Repeat("x", 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "":
			http.Error(w, "Unauthorized: Missing authentication token", http.StatusUnauthorized)
		case "Bearer " + testToken:
			if r.URL.Path == "/api/jobs/big" {
				http.Error(w, long, http.StatusInternalServerError)
				return
			}
			http.Error(w, "Job nope does not exist", http.StatusNotFound)
		default:
			http.Error(w, "Forbidden: Invalid authentication token", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	ctx := t.Context()

	none, _ := New(Config{BaseURL: srv.URL})
	_, err := none.Version(ctx)
	var he *HTTPError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &he) || he.Status != 401 || he.Method != "GET" || he.Path != "/api/version" {
		t.Errorf("no token: %v, want 401 ErrUnauthorized", err)
	}
	wrong, _ := New(Config{BaseURL: srv.URL, Token: "not-the-token-xyz"})
	_, err = wrong.Nodes(ctx)
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &he) || he.Status != 403 {
		t.Errorf("wrong token: %v, want 403 ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "not-the-token-xyz") {
		t.Errorf("error shows the token: %v", err)
	}
	good, _ := New(Config{BaseURL: srv.URL, Token: testToken})
	_, err = good.JobInfo(ctx, "nope")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unknown job: %v, want ErrNotFound with Ray's text", err)
	}
	_, err = good.JobInfo(ctx, "big")
	if !errors.As(err, &he) || len(he.Body) > maxErrorBody+20 || errors.Is(err, ErrNotFound) {
		t.Errorf("500: body of %d bytes kept, want it truncated; err %T", len(he.Body), err)
	}
}

func TestSubmitJobRequestShape(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"POST /api/jobs/": {
		body: []byte(`{"job_id":"raysubmit_abc","submission_id":"raysubmit_abc"}`),
		check: func(t *testing.T, r *http.Request, body []byte) {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			want := `map[entrypoint:python v.py entrypoint_num_cpus:0.5 metadata:map[owner:me] runtime_env:map[env_vars:map[A:1]] submission_id:my-id]`
			if fmt.Sprint(got) != want {
				t.Errorf("request body = %v\nwant %s", got, want)
			}
		},
	}})
	resp, err := newTestClient(t, srv).SubmitJob(t.Context(), JobSubmitRequest{
		Entrypoint: "python v.py", SubmissionID: "my-id", EntrypointNumCPUs: 0.5,
		RuntimeEnv: map[string]any{"env_vars": map[string]string{"A": "1"}},
		Metadata:   map[string]string{"owner": "me"},
	})
	if err != nil || resp.SubmissionID != "raysubmit_abc" {
		t.Errorf("SubmitJob = %+v, %v", resp, err)
	}
	if _, err := newTestClient(t, srv).SubmitJob(t.Context(), JobSubmitRequest{}); err == nil {
		t.Error("empty entrypoint accepted")
	}
}

func TestJobInfoLogsStop(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{
		"GET /api/jobs/raysubmit_WmR1Hk3JcsZpG6xE":       {body: fixture(t, "job-details.json")},
		"GET /api/jobs/raysubmit_WmR1Hk3JcsZpG6xE/logs":  {body: []byte(`{"logs":"line1\nline2\n"}`)},
		"POST /api/jobs/raysubmit_WmR1Hk3JcsZpG6xE/stop": {body: []byte(`{"stopped":false}`)},
		"DELETE /api/jobs/raysubmit_WmR1Hk3JcsZpG6xE":    {body: []byte(`{"deleted":true}`)},
	})
	c := newTestClient(t, srv)
	ctx := t.Context()
	id := "raysubmit_WmR1Hk3JcsZpG6xE"
	info, err := c.JobInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != JobFailed || !info.Status.Terminal() || info.ErrorType != "JOB_ENTRYPOINT_COMMAND_ERROR" ||
		info.DriverInfo == nil || info.DriverInfo.PID != "31337" || info.DriverExitCode == nil || *info.DriverExitCode != 1 ||
		info.StartTime != 1694042836191 || info.Metadata["owner"] != "raydeploy" {
		t.Errorf("JobInfo = %+v", info)
	}
	if logs, err := c.JobLogs(ctx, id); err != nil || logs != "line1\nline2\n" {
		t.Errorf("JobLogs = %q, %v", logs, err)
	}
	if stopped, err := c.StopJob(ctx, id); err != nil || stopped {
		t.Errorf("StopJob = %v, %v; want false (already finished)", stopped, err)
	}
	if err := c.DeleteJob(ctx, id); err != nil {
		t.Errorf("DeleteJob: %v", err)
	}
	if _, err := c.JobInfo(ctx, ""); err == nil {
		t.Error("empty id accepted")
	}
}

func TestWaitJob(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := []string{"PENDING", "RUNNING", "RUNNING", "SUCCEEDED"}[min(int(calls.Add(1))-1, 3)]
		fmt.Fprintf(w, `{"type":"SUBMISSION","entrypoint":"true","submission_id":"s1","status":%q}`, status)
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL})
	info, err := c.WaitJob(t.Context(), "s1", time.Millisecond)
	if err != nil || info.Status != JobSucceeded || calls.Load() != 4 {
		t.Errorf("WaitJob = %s after %d polls, %v; want SUCCEEDED after 4", info.Status, calls.Load(), err)
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"type":"SUBMISSION","entrypoint":"sleep 1000","status":"RUNNING"}`)
	}))
	defer never.Close()
	c, _ = New(Config{BaseURL: never.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	info, err = c.WaitJob(ctx, "s2", 5*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || info.Status != JobRunning {
		t.Errorf("WaitJob on a running job = %s, %v; want RUNNING and DeadlineExceeded", info.Status, err)
	}
}

func TestServe(t *testing.T) {
	put := fixture(t, "serve-rest-put-request.json")
	srv := fakeDashboard(t, map[string]route{
		"PUT /api/serve/applications/": {check: func(t *testing.T, r *http.Request, body []byte) {
			if string(body) != string(put) {
				t.Errorf("PUT body changed:\n%s", body)
			}
		}},
		"GET /api/serve/applications/":    {body: fixture(t, "serve-rest-get-response.json")},
		"DELETE /api/serve/applications/": {},
	})
	c := newTestClient(t, srv)
	ctx := t.Context()
	if err := c.PutServeApplications(ctx, put); err != nil {
		t.Fatal(err)
	}
	d, err := c.ServeApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app := d.Applications["app1"]
	tr := app.Deployments["Translator"]
	if d.ProxyLocation != "EveryNode" || d.HTTPOptions == nil || d.HTTPOptions.Port != 8000 || d.DeployMode != "MULTI_APP" ||
		app.Status != AppRunning || app.RoutePrefix != "/" || len(app.Deployments) != 2 ||
		tr.Status != DeploymentHealthy || len(tr.Replicas) != 1 || tr.Replicas[0].State != "RUNNING" || tr.Replicas[0].PID != 29892 {
		t.Errorf("ServeApplications = %+v", d)
	}
	if p := d.Proxies["cef533a072b0f03bf92a6b98cb4eb9153b7b7c7b7f15954feb2f38ec"]; p.Status != "HEALTHY" {
		t.Errorf("proxy = %+v", p)
	}
	if err := c.DeleteServeApplications(ctx); err != nil {
		t.Error(err)
	}
	if err := c.PutServeApplications(ctx, json.RawMessage(`{"applications": [`)); err == nil {
		t.Error("invalid JSON config accepted")
	}
}

func TestServeRejected(t *testing.T) {
	const msg = "Manually setting num_replicas is not allowed when autoscaling_config is provided."
	srv := fakeDashboard(t, map[string]route{"PUT /api/serve/applications/": {status: 400, body: []byte(msg)}})
	err := newTestClient(t, srv).PutServeApplications(t.Context(), json.RawMessage(`{"applications":[]}`))
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 400 || he.Body != msg {
		t.Errorf("err = %v, want 400 with Ray's text", err)
	}
}

// TestTunnelledTransport checks that the client only uses the given
// transport: the base URL's host does not resolve, the dialer reaches the
// server anyway, as an SSH tunnel would.
func TestTunnelledTransport(t *testing.T) {
	srv := fakeDashboard(t, map[string]route{"GET /api/gcs_healthz": {body: []byte("success")}})
	var dialed atomic.Value
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Store(addr)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}}}
	c, err := New(Config{BaseURL: "http://ray-head.invalid:8265", Token: testToken, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GCSHealthy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := dialed.Load(); got != "ray-head.invalid:8265" {
		t.Errorf("dialed %v, want the dashboard address handed to the tunnel", got)
	}
}

func TestConfig(t *testing.T) {
	cfg := Config{BaseURL: "http://h:8265", Token: testToken}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v", cfg, cfg)} {
		if strings.Contains(s, testToken) {
			t.Errorf("%q shows the token", s)
		}
	}
	var sb strings.Builder
	lg := slogText(&sb)
	lg.Info("cfg", "config", cfg)
	if strings.Contains(sb.String(), testToken) || !strings.Contains(sb.String(), "h:8265") {
		t.Errorf("slog output %q: want the URL, not the token", sb.String())
	}
	for _, bad := range []string{"", "h:8265", "ftp://h", "http://", "http://u:p@h:8265"} {
		if _, err := New(Config{BaseURL: bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestNewRefusesCredentialsInURL(t *testing.T) {
	_, err := New(Config{BaseURL: "http://ray:hunter2@10.0.0.1:8265"})
	if !errors.Is(err, baseurl.ErrCredentials) || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "Config.Token") {
		t.Errorf("err = %v, want ErrCredentials pointing to Config.Token, without the password", err)
	}
	if _, err := New(Config{BaseURL: "10.0.0.1:8265"}); !errors.Is(err, baseurl.ErrScheme) {
		t.Errorf("no scheme: err = %v, want ErrScheme", err)
	}
}
