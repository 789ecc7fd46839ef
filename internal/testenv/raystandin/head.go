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
	"strings"
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

// nodesSummary answers GET /nodes?view=summary (camelCase, reporter shape;
// python/ray/dashboard/modules/node/node_head.py). An unknown view is a
// result:false envelope, as in Ray.
func (h *head) nodesSummary(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("view"); v != "summary" {
		writeJSON(w, http.StatusOK, map[string]any{"result": false, "msg": "Unknown view " + v, "data": map[string]any{}})
		return
	}
	var out []map[string]any
	logical := map[string]string{}
	now := float64(time.Now().UnixMilli()) / 1000
	for _, n := range h.reg.snapshot() {
		var msg any
		if n.StateMessage != "" {
			msg = n.StateMessage
		}
		sockets := filepath.Join(h.sessionDir, "sockets")
		raylet := map[string]any{
			"storeStats": map[string]any{}, "nodeId": n.NodeID, "nodeManagerAddress": n.NodeIP,
			"nodeManagerHostname": n.Hostname, "rayletSocketName": filepath.Join(sockets, "raylet"),
			"objectStoreSocketName": filepath.Join(sockets, "plasma_store"), "metricsExportPort": n.MetricsPort,
			"resourcesTotal": n.resourcesTotal(), "nodeName": n.NodeIP, "instanceId": "", "nodeTypeName": "",
			"instanceTypeName": "", "startTimeMs": n.StartTimeMs, "isHeadNode": n.IsHead,
			"labels": n.Labels, "state": n.State, "endTimeMs": n.EndTimeMs, "stateMessage": msg,
		}
		e := map[string]any{"raylet": raylet, "ip": n.NodeIP, "hostname": n.Hostname, "now": now}
		if n.State == "ALIVE" {
			e["cpu"] = min(100*loadAvg1()/float64(max(n.CPUs, 1)), 100)
			e["cpus"] = []int{n.CPUs, n.CPUs}
			used := n.Memory + n.ObjectStore
			e["mem"] = []any{n.MemTotal, n.MemTotal - used, 100 * float64(used) / float64(max(n.MemTotal, 1)), used}
			logical[n.NodeID] = h.reg.resourceString(n.NodeID)
		}
		out = append(out, e)
	}
	envelope(w, "Node summary fetched.", map[string]any{"summary": out, "nodeLogicalResources": logical})
}

// clusterStatus answers GET /api/cluster_status: the autoscaler monitor's
// status dict (python/ray/autoscaler/_private/monitor.py) with its keys
// camelCased as the dashboard's to_google_style does.
func (h *head) clusterStatus(w http.ResponseWriter, r *http.Request) {
	active := map[string]any{}
	failed := []any{}
	for _, n := range h.reg.snapshot() {
		if n.State != "ALIVE" {
			failed = append(failed, []string{n.NodeIP, "standin"})
			continue
		}
		c, _ := active["standin"].(int)
		active["standin"] = c + 1
	}
	usage := map[string]any{}
	for k, u := range h.reg.usage() {
		usage[k] = []float64{u[0], u[1]}
	}
	status := map[string]any{
		"gcs_request_time": 0.0,
		"load_metrics_report": map[string]any{
			"usage": usage, "resource_demand": h.reg.demand(), "pg_demand": []any{},
			"request_demand": []any{}, "node_types": []any{}, "head_ip": h.rec.NodeIP,
			"usage_by_node": nil, "node_type_mapping": nil, "idle_time_map": nil,
		},
		"time":        float64(time.Now().UnixMilli()) / 1000,
		"monitor_pid": os.Getpid(),
		"autoscaler_report": map[string]any{
			"active_nodes": active, "idle_nodes": map[string]any{}, "pending_nodes": []any{},
			"pending_launches": map[string]any{}, "failed_nodes": failed,
			"node_availability_summary": map[string]any{"node_availabilities": map[string]any{}},
			"node_activities":           nil, "pending_resources": map[string]any{}, "node_type_mapping": nil,
		},
		"non_terminated_nodes_time": 0.0,
	}
	envelope(w, "Got cluster status.", googleStyle(map[string]any{
		"autoscaling_status": nil, "autoscaling_error": nil, "cluster_status": status,
	}))
}

// googleStyle camelCases every key of d and of the dicts in its values and
// in its lists, not deeper in lists of lists (python/ray/dashboard/utils.py
// to_google_style).
func googleStyle(d map[string]any) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		switch t := v.(type) {
		case map[string]any:
			v = googleStyle(t)
		case []any:
			l := make([]any, len(t))
			for i, e := range t {
				if m, ok := e.(map[string]any); ok {
					e = googleStyle(m)
				}
				l[i] = e
			}
			v = l
		}
		out[camelCase(k)] = v
	}
	return out
}

// camelCase is Ray's to_camel_case: "object_store_memory" -> "objectStoreMemory".
func camelCase(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if p := parts[i]; p != "" {
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		}
	}
	return strings.Join(parts, "")
}
