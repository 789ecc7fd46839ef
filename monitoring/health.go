package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// EndpointResult is the health of one monitoring endpoint.
type EndpointResult struct {
	// Service is node-exporter, cadvisor, prometheus, prometheus-targets or grafana.
	Service string `json:"service"`
	// Node is the node's name.
	Node string `json:"node"`
	// URL is what was fetched.
	URL string `json:"url"`
	// Healthy is true when the endpoint answered as expected.
	Healthy bool `json:"healthy"`
	// Status is the HTTP status code (0 without an answer).
	Status int `json:"status,omitempty"`
	// Detail says what was wrong (or, for targets, how many are up).
	Detail string `json:"detail,omitempty"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration"`
}

// Report is the health of every endpoint of the stack.
type Report struct {
	// Endpoints holds one result per endpoint checked, in a fixed order.
	Endpoints []EndpointResult `json:"endpoints"`
}

// Healthy reports whether every endpoint is healthy.
func (r Report) Healthy() bool {
	for _, e := range r.Endpoints {
		if !e.Healthy {
			return false
		}
	}
	return len(r.Endpoints) > 0
}

// Err returns nil when every endpoint is healthy, and otherwise an error
// naming each unhealthy endpoint.
func (r Report) Err() error {
	var errs []error
	for _, e := range r.Endpoints {
		if !e.Healthy {
			errs = append(errs, fmt.Errorf("%s on %s (%s): %s", e.Service, e.Node, e.URL, e.Detail))
		}
	}
	if len(errs) == 0 && len(r.Endpoints) == 0 {
		return errors.New("monitoring: no endpoints checked")
	}
	return errors.Join(errs...)
}

// Check fetches every endpoint of the stack through client (which may route
// through SSH tunnels: URLs use the nodes' addresses): node-exporter
// /metrics and cAdvisor /healthz on every node, Prometheus /-/ready and
// /api/v1/targets (every active target up), Grafana /api/health. Endpoints
// are checked in parallel; the results are in a fixed order.
func (s Stack) Check(ctx context.Context, client *http.Client, targets []Target) Report {
	s = s.WithDefaults()
	targets = slices.Clone(targets)
	slices.SortFunc(targets, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	type check struct {
		service, node, url string
		verify             func([]byte) (bool, string)
	}
	var checks []check
	for _, t := range targets {
		checks = append(checks,
			check{ServiceNodeExporter, t.Name, "http://" + hostPort(t.Address, s.NodeExporterPort) + "/metrics", verifyContains("node_uname_info")},
			check{ServiceCAdvisor, t.Name, "http://" + hostPort(t.Address, s.CAdvisorPort) + "/healthz", nil},
		)
	}
	if h := head(targets); h.Name != "" {
		prom := "http://" + hostPort(h.Address, s.PrometheusPort)
		checks = append(checks,
			check{ServicePrometheus, h.Name, prom + "/-/ready", nil},
			check{"prometheus-targets", h.Name, prom + "/api/v1/targets?state=active", verifyTargets},
			check{ServiceGrafana, h.Name, "http://" + hostPort(h.Address, s.GrafanaPort) + "/api/health", verifyGrafana},
		)
	}
	results := make([]EndpointResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			start := time.Now()
			r := EndpointResult{Service: c.service, Node: c.node, URL: c.url}
			r.Status, r.Healthy, r.Detail = fetch(ctx, client, c.url, c.verify)
			r.Duration = time.Since(start)
			results[i] = r
		})
	}
	wg.Wait()
	return Report{Endpoints: results}
}

func fetch(ctx context.Context, client *http.Client, url string, verify func([]byte) (bool, string)) (int, bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, false, fmt.Sprintf("read body: %v", err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, false, fmt.Sprintf("%s: %s", resp.Status, firstLine(body))
	}
	if verify == nil {
		return resp.StatusCode, true, ""
	}
	ok, detail := verify(body)
	return resp.StatusCode, ok, detail
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func verifyContains(metric string) func([]byte) (bool, string) {
	return func(b []byte) (bool, string) {
		if strings.Contains(string(b), metric) {
			return true, ""
		}
		return false, "answer has no " + metric
	}
}

// targetsResponse is the part of Prometheus' /api/v1/targets answer we read.
type targetsResponse struct {
	Status string `json:"status"`
	Data   struct {
		ActiveTargets []struct {
			Labels     map[string]string `json:"labels"`
			ScrapeURL  string            `json:"scrapeUrl"`
			Health     string            `json:"health"`
			LastError  string            `json:"lastError"`
			LastScrape time.Time         `json:"lastScrape"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// TargetsUp reads Prometheus' /api/v1/targets?state=active answer and
// returns the number of active targets when every one is up; else an error
// listing those that are not (job, node, health, last error). With a
// non-zero scrapedSince, a target last scraped before it does not count as
// up yet (the wait after a configuration reload).
func TargetsUp(answer []byte, scrapedSince time.Time) (int, error) {
	var r targetsResponse
	if err := json.Unmarshal(answer, &r); err != nil {
		return 0, fmt.Errorf("decode targets: %w", err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("targets: status %q", r.Status)
	}
	var down []string
	for _, t := range r.Data.ActiveTargets {
		if t.Health != "up" || (!scrapedSince.IsZero() && t.LastScrape.Before(scrapedSince)) {
			d := fmt.Sprintf("%s %s %s", t.Labels["job"], t.Labels["node"], t.Health)
			if t.LastError != "" {
				d += ": " + t.LastError
			}
			down = append(down, d)
		}
	}
	n := len(r.Data.ActiveTargets)
	if n == 0 {
		return 0, errors.New("no active targets")
	}
	if len(down) > 0 {
		slices.Sort(down)
		return 0, fmt.Errorf("%d of %d targets not up: %s", len(down), n, strings.Join(down, "; "))
	}
	return n, nil
}

func verifyTargets(b []byte) (bool, string) {
	n, err := TargetsUp(b, time.Time{})
	if err != nil {
		return false, err.Error()
	}
	return true, fmt.Sprintf("%d targets up", n)
}

func verifyGrafana(b []byte) (bool, string) {
	var r struct {
		Database string `json:"database"`
		Version  string `json:"version"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return false, fmt.Sprintf("decode health: %v", err)
	}
	if r.Database != "ok" {
		return false, "database " + r.Database
	}
	return true, "version " + r.Version
}
