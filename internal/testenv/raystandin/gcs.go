package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// The stand-in's cluster registry ("GCS"), served on the head's --port. Its
// HTTP API is the stand-in's own (paths under /_standin/): only stand-in
// workers and the Python shim talk to it.

// heartbeatPeriod is how often a worker reports; deadAfter is how long the
// head waits without a heartbeat before it marks the node DEAD.
const (
	heartbeatPeriod = time.Second
	deadAfter       = 5 * time.Second
)

// nodeRecord is one node as the registry knows it.
type nodeRecord struct {
	NodeID       string             `json:"node_id"`
	NodeIP       string             `json:"node_ip"`
	Hostname     string             `json:"hostname"`
	IsHead       bool               `json:"is_head"`
	State        string             `json:"state"`
	StateMessage string             `json:"state_message,omitempty"`
	CPUs         int                `json:"cpus"`
	GPUs         int                `json:"gpus"`
	MemTotal     int64              `json:"mem_total"`
	Memory       int64              `json:"memory"`
	ObjectStore  int64              `json:"object_store_memory"`
	Resources    map[string]float64 `json:"resources"`
	Labels       map[string]string  `json:"labels"`
	AgentPort    int                `json:"agent_port"`
	MetricsPort  int                `json:"metrics_port"`
	StartTimeMs  int64              `json:"start_time_ms"`
	EndTimeMs    int64              `json:"end_time_ms"`
	lastSeen     time.Time
	used         map[string]float64           // resources held by running tasks
	leases       map[int64]map[string]float64 // running tasks' resources, by lease
}

// resourcesTotal is the node's resources as Ray reports resources_total.
func (n *nodeRecord) resourcesTotal() map[string]float64 {
	r := map[string]float64{
		"CPU":                 float64(n.CPUs),
		"memory":              float64(n.Memory),
		"object_store_memory": float64(n.ObjectStore),
		"node:" + n.NodeIP:    1,
	}
	if n.GPUs > 0 {
		r["GPU"] = float64(n.GPUs)
	}
	if n.IsHead {
		r["node:__internal_head__"] = 1
	}
	for k, v := range n.Resources {
		r[k] = v
	}
	return r
}

// registry holds the cluster's nodes.
type registry struct {
	mu        sync.Mutex
	nodes     map[string]*nodeRecord
	changed   chan struct{} // signalled (non-blocking) when the alive set changes
	wake      chan struct{} // closed (and replaced) when nodes or held resources change
	nextLease int64
	waiting   map[string]int // tasks waiting for resources, by resource shape (JSON)
}

func newRegistry() *registry {
	return &registry{nodes: map[string]*nodeRecord{}, changed: make(chan struct{}, 1)}
}

func (r *registry) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// register adds or replaces a node, ALIVE.
func (r *registry) register(n nodeRecord, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n.State, n.StateMessage, n.EndTimeMs = "ALIVE", "", 0
	n.StartTimeMs = now.UnixMilli()
	n.lastSeen = now
	n.used, n.leases = nil, nil
	r.nodes[n.NodeID] = &n
	r.notify()
	r.broadcast()
}

// heartbeat records a heartbeat; false when the node is unknown or DEAD.
func (r *registry) heartbeat(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[id]
	if !ok || n.State != "ALIVE" {
		return false
	}
	n.lastSeen = now
	return true
}

// reap marks nodes DEAD whose heartbeats stopped (the head never expires itself).
func (r *registry) reap(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.nodes {
		if n.State == "ALIVE" && !n.IsHead && now.Sub(n.lastSeen) > deadAfter {
			n.State = "DEAD"
			n.StateMessage = "Unexpected termination: health check failed due to missing too many heartbeats"
			n.EndTimeMs = now.UnixMilli()
			r.notify()
			r.broadcast()
		}
	}
}

// snapshot returns copies of all nodes, head first, then by IP.
func (r *registry) snapshot() []nodeRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]nodeRecord, 0, len(r.nodes))
	for _, n := range r.nodes {
		c := *n
		c.used, c.leases = nil, nil // held under r.mu only
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IsHead != out[j].IsHead {
			return out[i].IsHead
		}
		if out[i].NodeIP != out[j].NodeIP {
			return out[i].NodeIP < out[j].NodeIP
		}
		return out[i].NodeID < out[j].NodeID
	})
	return out
}

// gcsHandler serves the registry API.
func (h *head) gcsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_standin/register", func(w http.ResponseWriter, r *http.Request) {
		var n nodeRecord
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || n.NodeID == "" || n.NodeIP == "" {
			http.Error(w, "bad registration", http.StatusBadRequest)
			return
		}
		n.IsHead = false
		h.reg.register(n, time.Now())
		h.log.Info("node registered", "node_id", n.NodeID, "worker_ip", n.NodeIP, "cpus", n.CPUs)
		writeJSON(w, http.StatusOK, map[string]any{"session_name": h.sessionName()})
	})
	mux.HandleFunc("POST /_standin/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			NodeID string `json:"node_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad heartbeat", http.StatusBadRequest)
			return
		}
		if !h.reg.heartbeat(req.NodeID, time.Now()) {
			http.Error(w, "node is not alive in this cluster", http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("POST /_standin/submit", h.auth.wrap(http.HandlerFunc(h.submitTask)))
	mux.HandleFunc("GET /_standin/resources", h.resourcesAnswer)
	// GET /_standin/nodes answers in the shape of Python's ray.nodes().
	mux.HandleFunc("GET /_standin/nodes", func(w http.ResponseWriter, r *http.Request) {
		var out []map[string]any
		for _, n := range h.reg.snapshot() {
			out = append(out, map[string]any{
				"NodeID":                   n.NodeID,
				"Alive":                    n.State == "ALIVE",
				"NodeManagerAddress":       n.NodeIP,
				"NodeManagerHostname":      n.Hostname,
				"NodeName":                 n.NodeIP,
				"Resources":                n.resourcesTotal(),
				"Labels":                   n.Labels,
				"MetricsExportPort":        n.MetricsPort,
				"DashboardAgentListenPort": n.AgentPort,
				"alive":                    n.State == "ALIVE",
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
