package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// agentHandler serves the per-node dashboard agent.
func (n *node) agentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/local_raylet_healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "success")
	})
	mux.HandleFunc("GET /api/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !n.rec.IsHead && time.Since(time.Unix(0, n.gcsOK.Load())) > deadAfter {
			http.Error(w, "raylet: success\ngcs: failed: no answer from the GCS at "+n.gcsAddr, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "raylet: success\ngcs: success")
	})
	mux.Handle("POST /_standin/tasks", n.auth.wrap(http.HandlerFunc(n.runTask)))
	return mux
}

// runTask runs one Python task of the shim on this node: the body (function
// code, arguments) goes to `python3 -m ray._standin_worker` on stdin; its
// stdout is the JSON answer.
func (n *node) runTask(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil || !json.Valid(body) {
		http.Error(w, "task body must be JSON", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	py := os.Getenv("RAY_STANDIN_PYTHON")
	if py == "" {
		py = "python3"
	}
	cmd := exec.CommandContext(ctx, py, "-m", "ray._standin_worker")
	cmd.Env = append(os.Environ(),
		"RAY_STANDIN_NODE_ID="+n.rec.NodeID,
		"RAY_STANDIN_NODE_IP="+n.rec.NodeIP,
		"RAY_ADDRESS="+n.gcsAddr,
	)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		n.log.Warn("task failed", "err", err, "stderr", tail(stderr.String(), 2000))
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": fmt.Sprintf("task process: %v\n%s", err, tail(stderr.String(), 4000))})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(stdout.Bytes())
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// metricsHandler serves Prometheus text with Ray's node metric names. h is
// the head (nil on workers): the head adds cluster-level gauges.
func (n *node) metricsHandler(h *head) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		nodeType := "worker"
		if n.rec.IsHead {
			nodeType = "head"
		}
		labels := fmt.Sprintf(`ip=%q,instance=%q,SessionName=%q,RayNodeType=%q,Version=%q`,
			n.rec.NodeIP, n.rec.NodeIP, n.sessionName(), nodeType, rayVersion())
		total, avail, _ := memInfo()
		util := 100 * loadAvg1() / float64(max(n.rec.CPUs, 1))
		var b strings.Builder
		gauge := func(name, help, lbl string, v float64) {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %g\n", name, help, name, name, lbl, v)
		}
		gauge("ray_node_cpu_count", "Total CPUs available on a ray node", labels, float64(n.rec.CPUs))
		gauge("ray_node_cpu_utilization", "Total CPU usage on a ray node", labels, min(util, 100))
		gauge("ray_node_mem_used", "Memory usage on a ray node", labels, float64(total-avail))
		gauge("ray_node_mem_total", "Total memory on a ray node", labels, float64(total))
		gauge("ray_node_mem_available", "Memory available on a ray node", labels, float64(avail))
		if h != nil {
			alive := 0
			for _, rec := range h.reg.snapshot() {
				if rec.State == "ALIVE" {
					alive++
				}
			}
			gauge("ray_cluster_active_nodes", "Active nodes on the cluster",
				fmt.Sprintf(`node_type="standin",SessionName=%q`, n.sessionName()), float64(alive))
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = io.WriteString(w, b.String())
	})
}
