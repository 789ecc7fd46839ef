package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// head is what only the head node runs: registry, dashboard, jobs, Serve.
type head struct {
	*node
	reg          *registry
	jobs         *jobManager
	serve        *serveStore
	sessionDir   string
	dashboardURL string
	started      time.Time
}

// newHead prepares the session directory (and session_latest) under
// --temp-dir and registers the head itself.
func newHead(n *node) (*head, error) {
	now := time.Now()
	name := fmt.Sprintf("session_%s_%06d_%d", now.Format("2006-01-02_15-04-05"), now.Nanosecond()/1000, os.Getpid())
	dir := filepath.Join(n.opts.TempDir, name)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("session dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "metrics", "grafana", "dashboards"), 0o755); err != nil {
		return nil, fmt.Errorf("session dir: %w", err)
	}
	latest := filepath.Join(n.opts.TempDir, "session_latest")
	tmpLink := latest + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmpLink)
	if err := os.Symlink(dir, tmpLink); err != nil {
		return nil, fmt.Errorf("session_latest: %w", err)
	}
	if err := os.Rename(tmpLink, latest); err != nil {
		return nil, fmt.Errorf("session_latest: %w", err)
	}
	// Ray's drivers find a local cluster (address="auto") through this file.
	if err := writeFileAtomic(filepath.Join(n.opts.TempDir, "ray_current_cluster"), []byte(n.gcsAddr)); err != nil {
		return nil, fmt.Errorf("ray_current_cluster: %w", err)
	}
	n.session.Store(name)
	n.gcsOK.Store(now.UnixNano())
	h := &head{node: n, reg: newRegistry(), sessionDir: dir, started: now}
	h.jobs = newJobManager(h)
	h.serve = newServeStore(h)
	h.reg.register(n.rec, now)
	return h, nil
}

// loop marks silent nodes DEAD and keeps the Prometheus file-SD list current
// (rewritten every 5 s, as Ray does, and whenever the alive set changes).
func (h *head) loop(ctx context.Context) {
	reap := time.NewTicker(500 * time.Millisecond)
	defer reap.Stop()
	sd := time.NewTicker(5 * time.Second)
	defer sd.Stop()
	h.writeServiceDiscovery()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-reap.C:
			h.reg.reap(now)
		case <-h.reg.changed:
			h.writeServiceDiscovery()
		case <-sd.C:
			h.writeServiceDiscovery()
		}
	}
}

// writeServiceDiscovery writes <temp-dir>/prom_metrics_service_discovery.json.
func (h *head) writeServiceDiscovery() {
	targets := []string{}
	for _, n := range h.reg.snapshot() {
		if n.State == "ALIVE" {
			targets = append(targets, net.JoinHostPort(n.NodeIP, strconv.Itoa(n.MetricsPort)))
		}
	}
	b, _ := json.Marshal([]map[string]any{{"labels": map[string]string{"job": "ray"}, "targets": targets}})
	if err := writeFileAtomic(filepath.Join(h.opts.TempDir, "prom_metrics_service_discovery.json"), b); err != nil {
		h.log.Warn("write service discovery file", "err", err)
	}
}

// envelope answers in the dashboard's {"result","msg","data"} wrapper.
func envelope(w http.ResponseWriter, msg string, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"result": true, "msg": msg, "data": data})
}

// dashboardHandler serves the dashboard's HTTP API.
func (h *head) dashboardHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"version": "5", "ray_version": rayVersion(),
			"ray_commit": "0000000000000000000000000000000000000000", "session_name": h.sessionName(),
		})
	})
	mux.HandleFunc("GET /api/gcs_healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "success")
	})
	mux.HandleFunc("GET /api/v0/nodes", h.stateNodes)
	mux.HandleFunc("GET /nodes", h.nodesSummary)
	mux.HandleFunc("GET /api/cluster_status", h.clusterStatus)
	h.jobs.routes(mux)
	h.serve.routes(mux)
	return mux
}

// stateNodes answers GET /api/v0/nodes (Ray's NodeState, snake_case).
func (h *head) stateNodes(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for _, n := range h.reg.snapshot() {
		var msg any
		if n.StateMessage != "" {
			msg = n.StateMessage
		}
		out = append(out, map[string]any{
			"node_id": n.NodeID, "node_ip": n.NodeIP, "is_head_node": n.IsHead,
			"state": n.State, "state_message": msg, "node_name": n.NodeIP,
			"resources_total": n.resourcesTotal(), "labels": n.Labels,
			"start_time_ms": n.StartTimeMs, "end_time_ms": n.EndTimeMs,
		})
	}
	envelope(w, "", map[string]any{"result": map[string]any{
		"total": len(out), "num_after_truncation": len(out), "num_filtered": len(out),
		"result": out, "partial_failure_warning": "", "warnings": nil,
	}})
}

// nodesSummary answers GET /nodes?view=summary (camelCase, reporter shape).
func (h *head) nodesSummary(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("view"); v != "summary" {
		http.Error(w, fmt.Sprintf("Unknown view %q", v), http.StatusBadRequest)
		return
	}
	var out []map[string]any
	now := float64(time.Now().UnixMilli()) / 1000
	for _, n := range h.reg.snapshot() {
		raylet := map[string]any{
			"nodeId": n.NodeID, "nodeManagerAddress": n.NodeIP, "nodeManagerHostname": n.Hostname,
			"state": n.State, "isHeadNode": n.IsHead, "nodeName": n.NodeIP,
			"metricsExportPort": n.MetricsPort, "resourcesTotal": n.resourcesTotal(),
			"labels": n.Labels, "startTimeMs": n.StartTimeMs, "endTimeMs": n.EndTimeMs,
		}
		if n.StateMessage != "" {
			raylet["stateMessage"] = n.StateMessage
		}
		e := map[string]any{"raylet": raylet, "ip": n.NodeIP, "hostname": n.Hostname, "now": now}
		if n.State == "ALIVE" {
			e["cpus"] = []int{n.CPUs, n.CPUs}
			e["mem"] = []int64{n.MemTotal, n.Memory + n.ObjectStore, 0, n.MemTotal - n.Memory - n.ObjectStore}
		}
		out = append(out, e)
	}
	envelope(w, "Node summary fetched.", map[string]any{"summary": out})
}

// clusterStatus answers GET /api/cluster_status with an autoscaler-style report.
func (h *head) clusterStatus(w http.ResponseWriter, r *http.Request) {
	usage := map[string][2]float64{}
	active := map[string]int{}
	var failed []map[string]any
	for _, n := range h.reg.snapshot() {
		if n.State != "ALIVE" {
			failed = append(failed, map[string]any{"node_id": n.NodeID, "node_ip": n.NodeIP})
			continue
		}
		active["standin"]++
		for k, v := range n.resourcesTotal() {
			u := usage[k]
			u[1] += v
			usage[k] = u
		}
	}
	if failed == nil {
		failed = []map[string]any{}
	}
	envelope(w, "Got cluster status.", map[string]any{
		"autoscalingStatus": nil, "autoscalingError": nil,
		"clusterStatus": map[string]any{
			"loadMetricsReport": map[string]any{
				"usage": usage, "resourceDemand": []any{}, "pgDemand": []any{},
				"requestDemand": []any{}, "nodeTypes": []any{},
			},
			"autoscalerReport": map[string]any{
				"activeNodes": active, "pendingNodes": []any{}, "pendingLaunches": map[string]any{},
				"failedNodes": failed,
			},
			"time": float64(time.Now().UnixMilli()) / 1000,
		},
	})
}
