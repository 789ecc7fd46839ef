package api

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/raydeploy/sdk/monitoring"
)

// nodeHTTP is implemented by Deployers that reach a node's local HTTP
// services over their SSH connection (raydeploy.Deployer.NodeHTTPClient).
type nodeHTTP interface {
	NodeHTTPClient(node string, timeout time.Duration) (*http.Client, error)
}

// prometheusTimeout bounds one proxied request to the cluster's Prometheus.
const prometheusTimeout = 15 * time.Second

// prometheusMetrics proxies GET /metrics of the cluster's Prometheus (on the
// head, at the configured Prometheus port) through the Deployer's SSH
// connection to the head. 503 when there is nothing to proxy to (monitoring
// off, or a Deployer without node HTTP), 502 when Prometheus cannot be
// reached or does not answer 200.
func (s *Server) prometheusMetrics(w http.ResponseWriter, r *http.Request, _ Principal) {
	d, _ := s.deployer()
	c := d.Cluster()
	if !c.MonitoringEnabled() {
		s.fail(w, http.StatusServiceUnavailable, "MONITORING_DISABLED", "the cluster's monitoring is disabled (monitoring.enabled: false): there is no Prometheus to proxy; this server's own metrics are at /metrics")
		return
	}
	nh, ok := d.(nodeHTTP)
	if !ok {
		s.fail(w, http.StatusServiceUnavailable, "PROXY_UNAVAILABLE", "this deployer cannot reach the head's Prometheus; this server's own metrics are at /metrics")
		return
	}
	head := c.Nodes()[0]
	port := c.Monitoring.Ports.Prometheus
	if port == 0 {
		port = monitoring.DefaultPrometheusPort
	}
	unreachable := func(err error) {
		s.log.Warn("cluster Prometheus unreachable", "node", head.ID(), "port", port, "err", err)
		s.fail(w, http.StatusBadGateway, "PROMETHEUS_UNREACHABLE",
			s.clean(fmt.Sprintf("the cluster's Prometheus on %s port %d cannot be read: %v", head.ID(), port, err)))
	}
	client, err := nh.NodeHTTPClient(head.ID(), prometheusTimeout)
	if err != nil {
		unreachable(err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		unreachable(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		unreachable(fmt.Errorf("it answered %s", resp.Status))
		return
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; version=0.0.4; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.log.Warn("proxying the cluster's Prometheus metrics cut off", "err", err)
	}
}
