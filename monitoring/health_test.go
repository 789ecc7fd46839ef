package monitoring

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// tunnel is an http.RoundTripper standing in for SSH tunnels: it sends a
// request for a node's address:port to the local server registered for it,
// and fails for the others.
type tunnel map[string]*httptest.Server

func (tn tunnel) RoundTrip(r *http.Request) (*http.Response, error) {
	srv, ok := tn[r.URL.Host]
	if !ok {
		return nil, fmt.Errorf("no tunnel to %s", r.URL.Host)
	}
	u, _ := url.Parse(srv.URL)
	r2 := r.Clone(r.Context())
	r2.URL.Host = u.Host
	return http.DefaultTransport.RoundTrip(r2)
}

func TestCheckThroughCallersClient(t *testing.T) {
	serve := func(status int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	targets := []Target{{Name: "h", Address: "10.1.0.1", Head: true}, {Name: "w", Address: "10.1.0.2"}}
	allUp := `{"status":"success","data":{"activeTargets":[{"labels":{"job":"node","node":"h"},"health":"up"},{"labels":{"job":"node","node":"w"},"health":"up"}]}}`
	tn := tunnel{
		"10.1.0.1:9100": serve(200, "node_uname_info{} 1\n"),
		"10.1.0.2:9100": serve(200, "node_uname_info{} 1\n"),
		"10.1.0.1:8081": serve(200, "ok"),
		"10.1.0.2:8081": serve(500, "unhealthy: docker"),
		"10.1.0.1:9090": serve(200, "Prometheus Server is Ready."), // serves /-/ready and the targets (below)
		"10.1.0.1:3000": serve(200, `{"commit":"x","database":"ok","version":"12.1.1"}`),
	}
	// Prometheus answers both paths: route by path.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/targets" {
			fmt.Fprint(w, allUp)
			return
		}
		fmt.Fprint(w, "Prometheus Server is Ready.")
	}))
	t.Cleanup(prom.Close)
	tn["10.1.0.1:9090"] = prom

	r := Stack{}.Check(t.Context(), &http.Client{Transport: tn}, targets)
	got := map[string]bool{}
	for _, e := range r.Endpoints {
		got[e.Service+"/"+e.Node] = e.Healthy
	}
	want := map[string]bool{
		"node-exporter/h": true, "node-exporter/w": true, "cadvisor/h": true, "cadvisor/w": false,
		"prometheus/h": true, "prometheus-targets/h": true, "grafana/h": true,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("health %v\nwant   %v", got, want)
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "cadvisor on w") || !strings.Contains(err.Error(), "500") {
		t.Errorf("Err() = %v, want it to name cadvisor on w and the status", err)
	}

	// Grafana answering without its database is not healthy; a down target is named.
	tn["10.1.0.1:3000"] = serve(200, `{"database":"failing"}`)
	tn["10.1.0.2:8081"] = serve(200, "ok")
	prom2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/targets" {
			fmt.Fprint(w, strings.Replace(allUp, `"node":"w"},"health":"up"`, `"node":"w"},"health":"down","lastError":"connection refused"`, 1))
			return
		}
		fmt.Fprint(w, "ready")
	}))
	t.Cleanup(prom2.Close)
	tn["10.1.0.1:9090"] = prom2
	r = Stack{}.Check(t.Context(), &http.Client{Transport: tn}, targets)
	if r.Healthy() {
		t.Fatal("healthy with Grafana's database failing and a target down")
	}
	msg := r.Err().Error()
	for _, want := range []string{"database failing", "node w down: connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Err() lacks %q:\n%s", want, msg)
		}
	}
	if (Report{}).Healthy() {
		t.Error("an empty report is healthy")
	}
}
