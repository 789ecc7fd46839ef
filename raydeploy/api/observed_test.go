package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/raydeploy/api"
)

// prometheusSelfMetrics is an excerpt of GET /metrics of Debian's prometheus
// (what the proxy must pass through unchanged).
const prometheusSelfMetrics = `# HELP prometheus_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which prometheus was built, and the goos and goarch for the build.
# TYPE prometheus_build_info gauge
prometheus_build_info{branch="debian/sid",goarch="amd64",goos="linux",goversion="go1.24.4",revision="2.53.3+ds1-1",tags="netgo,builtinassets,stringlabels",version="2.53.3+ds1"} 1
# HELP prometheus_sd_discovered_targets Current number of discovered targets.
# TYPE prometheus_sd_discovered_targets gauge
prometheus_sd_discovered_targets{config="node",name="scrape"} 2
`

// observingDeployer is a stepDeployer that also lists containers and reaches
// the head's local ports (as raydeploy.Deployer does over SSH): the head's
// 127.0.0.1:<promPort> is prom; every other address refuses.
type observingDeployer struct {
	*stepDeployer
	promPort int
	prom     *httptest.Server

	mu       sync.Mutex
	lists    map[string][]raydeploy.ObservedContainer
	failing  map[string]error
	listings int // Containers calls
	promDown bool
	promSeen []string // node and path of each proxied request
}

func (d *observingDeployer) Containers(ctx context.Context, node string) ([]raydeploy.ObservedContainer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.listings++
	if err := d.failing[node]; err != nil {
		return nil, err
	}
	return slices.Clone(d.lists[node]), nil
}

func (d *observingDeployer) NodeHTTPClient(node string, timeout time.Duration) (*http.Client, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		down := d.promDown
		d.mu.Unlock()
		if node != "head" || addr != fmt.Sprintf("127.0.0.1:%d", d.promPort) || down {
			return nil, fmt.Errorf("ssh: direct-tcpip %s on %s: connect failed (Connection refused)", addr, node)
		}
		var dl net.Dialer
		return dl.DialContext(ctx, "tcp", d.prom.Listener.Addr().String())
	}}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

func (d *observingDeployer) set(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn()
}

// newObservingEnv is newEnv over an observingDeployer; cfg, when set, adjusts
// the server's Config further.
func newObservingEnv(t *testing.T, monitoring bool, cfg func(*api.Config)) (*env, *observingDeployer) {
	od := &observingDeployer{promPort: 19090, failing: map[string]error{}, lists: map[string][]raydeploy.ObservedContainer{
		"head": {{Name: "raydeploy-lab-ray-head", Image: "rayproject/ray:2.58.0", State: "running"},
			{Name: "raydeploy-lab-prometheus", Image: "raydeploy/prometheus", State: "running"}},
		"worker1": {{Name: "raydeploy-lab-ray-worker", Image: "rayproject/ray:2.58.0", State: "exited"}},
	}}
	od.prom = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		od.set(func() { od.promSeen = append(od.promSeen, r.URL.Path) })
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, prometheusSelfMetrics)
	}))
	t.Cleanup(od.prom.Close)
	e := newEnv(t, envOptions{
		cfg: func(c *api.Config) {
			c.ContainerRefresh = -1 // only at Attach and after runs
			if cfg != nil {
				cfg(c)
			}
		},
		wrap: func(sd *stepDeployer) api.Deployer {
			sd.cluster.Monitoring.Ports.Prometheus = od.promPort
			if !monitoring {
				off := false
				sd.cluster.Monitoring.Enabled = &off
			}
			od.stepDeployer = sd
			return od
		},
	})
	return e, od
}

// TestNodeContainersFromTheDeployer: node and cluster status show the
// containers the Deployer listed at Attach and after each run, and status
// requests never ask the Deployer themselves.
func TestNodeContainersFromTheDeployer(t *testing.T) {
	e, od := newObservingEnv(t, true, nil)
	var nodes []api.NodeInfo
	waitFor(t, "the first listing", func() bool {
		nodes = nil
		if c := e.call("viewer", "GET", "/api/v1/nodes", nil, &nodes); c != 200 {
			t.Fatalf("nodes: %d", c)
		}
		return nodes[0].ContainersAsOf != nil && nodes[1].ContainersAsOf != nil
	})
	if want := []string{"raydeploy-lab-prometheus", "raydeploy-lab-ray-head"}; !slices.Equal(nodes[0].Containers, want) {
		t.Fatalf("head containers %v, want %v", nodes[0].Containers, want)
	}
	var nd api.NodeDetails
	if c := e.call("viewer", "GET", "/api/v1/nodes/worker1", nil, &nd); c != 200 ||
		!slices.Equal(nd.Containers, []api.NodeContainer{{Name: "raydeploy-lab-ray-worker", Status: "exited", Image: "rayproject/ray:2.58.0"}}) || nd.ContainersAsOf == nil {
		t.Fatalf("worker1: %d %+v", c, nd)
	}
	var h api.ClusterHealth
	if c := e.call("viewer", "GET", "/api/v1/cluster/health", nil, &h); c != 200 || h.Containers != (api.ContainerCounts{Total: 3, Running: 2}) || h.ContainersAsOf == nil {
		t.Fatalf("health: %d %+v", c, h)
	}
	var st api.ClusterStatus
	if c := e.call("viewer", "GET", "/api/v1/cluster/status", nil, &st); c != 200 || st.ClusterHealth.Containers.Total != 3 {
		t.Fatalf("status: %d %+v", c, st.ClusterHealth)
	}

	// The nodes change: status answers keep the last listing until a run.
	var before int
	od.set(func() {
		before = od.listings
		od.lists["head"] = od.lists["head"][:1]
		od.failing["worker1"] = errors.New("connect worker1: dial tcp 192.0.2.11:22: connection refused")
	})
	for range 3 {
		e.call("viewer", "GET", "/api/v1/nodes", nil, &nodes)
		e.call("viewer", "GET", "/api/v1/nodes/head", nil, &nd)
		e.call("viewer", "GET", "/api/v1/cluster/status", nil, &st)
	}
	od.set(func() {
		if od.listings != before {
			t.Errorf("status requests listed containers %d times", od.listings-before)
		}
	})
	if len(nodes[0].Containers) != 2 {
		t.Fatalf("head containers changed without a listing: %v", nodes[0].Containers)
	}

	// A run refreshes them; a failed listing keeps the previous one, says why.
	var x api.Execution
	if c := e.call("operator", "POST", "/api/v1/executions", map[string]any{"checkpoint": "prerequisites-check"}, &x); c != 202 {
		t.Fatalf("execution: %d", c)
	}
	waitFor(t, "the listing after the run", func() bool {
		nodes = nil
		e.call("viewer", "GET", "/api/v1/nodes", nil, &nodes)
		return len(nodes[0].Containers) == 1 && nodes[1].ContainersError != ""
	})
	if !strings.Contains(nodes[1].ContainersError, "connection refused") || !slices.Equal(nodes[1].Containers, []string{"raydeploy-lab-ray-worker"}) {
		t.Fatalf("worker1 after a failed listing: %+v", nodes[1])
	}
	if c := e.call("viewer", "GET", "/api/v1/cluster/health", nil, &h); c != 200 || h.Containers != (api.ContainerCounts{Total: 2, Running: 1}) {
		t.Fatalf("health after the run: %d %+v", c, h)
	}
}

// TestPrometheusIsProxied: /api/v1/monitoring/prometheus is the cluster's
// Prometheus (head, configured port) read through the Deployer; 502 when it
// cannot be reached, 503 when monitoring is off; /metrics stays the server's.
func TestPrometheusIsProxied(t *testing.T) {
	e, od := newObservingEnv(t, true, nil)
	get := func(path string) (int, string, string) {
		req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["viewer"])
		resp, err := (&http.Client{Transport: e.val}).Do(req) // validated against the document
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	if c, ct, body := get("/api/v1/monitoring/prometheus"); c != 200 || body != prometheusSelfMetrics || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("proxied: %d %q\n%s", c, ct, body)
	}
	od.set(func() {
		if !slices.Equal(od.promSeen, []string{"/metrics"}) {
			t.Errorf("Prometheus saw %v", od.promSeen)
		}
	})
	if c, _, body := get("/metrics"); c != 200 || strings.Contains(body, "prometheus_build_info") || !strings.Contains(body, "raydeploy_api_requests_total") {
		t.Fatalf("/metrics is not the server's own: %d\n%s", c, body)
	}

	od.set(func() { od.promDown = true })
	var errb api.ErrorBody
	if c := e.call("viewer", "GET", "/api/v1/monitoring/prometheus", nil, &errb); c != 502 || errb.Error != "PROMETHEUS_UNREACHABLE" ||
		!strings.Contains(errb.Message, "head port 19090") || !strings.Contains(errb.Message, "Connection refused") {
		t.Fatalf("unreachable: %d %+v", c, errb)
	}

	off, _ := newObservingEnv(t, false, nil)
	if c := off.call("viewer", "GET", "/api/v1/monitoring/prometheus", nil, &errb); c != 503 || errb.Error != "MONITORING_DISABLED" {
		t.Fatalf("monitoring off: %d %+v", c, errb)
	}
}
