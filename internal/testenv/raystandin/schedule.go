package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Task scheduling, the part of Ray's raylet scheduler the SDK depends on:
// every task asks for resources (Ray's default is 1 CPU), a node runs it
// only while it has them free, and a task whose hard node affinity names a
// node that is gone or can never fit it fails at once, with Ray's words
// (src/ray/raylet/scheduling/cluster_lease_manager.cc, surfaced by the
// driver as ray.exceptions.TaskUnschedulableError). A task that fits no node
// at all stays pending, as in Ray without an autoscaler.

// msgAffinityUnschedulable is Ray's scheduling failure message for a hard
// node affinity that cannot be met.
const msgAffinityUnschedulable = "The node specified via NodeAffinitySchedulingStrategy doesn't exist any more or is infeasible, and soft=False was specified."

// resourceEpsilon absorbs float rounding (Ray counts in fixed point, 1e-4).
const resourceEpsilon = 1e-9

// errUnschedulable is a task that can never run where it must.
var errUnschedulable = errors.New(msgAffinityUnschedulable)

// taskRequest is what the shim submits for one task: the resources it asks
// for, its scheduling strategy and the task itself (forwarded unchanged to
// the chosen node's agent).
type taskRequest struct {
	Resources    map[string]float64 `json:"resources"`
	NodeID       string             `json:"node_id,omitempty"`
	Soft         bool               `json:"soft,omitempty"`
	CallerNodeID string             `json:"caller_node_id,omitempty"`
	Task         json.RawMessage    `json:"task"`
}

// fits reports whether have covers want for every resource.
func fits(want, have map[string]float64) bool {
	for k, v := range want {
		if v > 0 && have[k]+resourceEpsilon < v {
			return false
		}
	}
	return true
}

// available is what the node has free: its total minus what running tasks hold.
func (n *nodeRecord) available() map[string]float64 {
	a := n.resourcesTotal()
	for k, v := range n.used {
		a[k] -= v
	}
	return a
}

// wakeup returns a channel closed at the next change of nodes or held
// resources; r.mu must be held.
func (r *registry) wakeup() <-chan struct{} {
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

// broadcast wakes every waiting task; r.mu must be held.
func (r *registry) broadcast() {
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// pick chooses an ALIVE node that has want free, following the request's
// strategy; r.mu must be held. It returns nil when the task has to wait,
// errUnschedulable when it never can run where it must.
func (r *registry) pick(req taskRequest) (*nodeRecord, error) {
	if req.NodeID != "" {
		target := r.nodes[req.NodeID]
		alive := target != nil && target.State == "ALIVE"
		switch {
		case alive && fits(req.Resources, target.available()):
			return target, nil
		case !req.Soft && (!alive || !fits(req.Resources, target.resourcesTotal())):
			return nil, errUnschedulable
		case !req.Soft:
			return nil, nil // feasible there, busy now: wait for it
		}
	}
	// Ray's hybrid policy prefers the caller's node, then spreads; the
	// stand-in takes the caller's node if it fits, else the least busy one.
	var cands []*nodeRecord
	for _, n := range r.nodes {
		if n.State == "ALIVE" && fits(req.Resources, n.available()) {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if (a.NodeID == req.CallerNodeID) != (b.NodeID == req.CallerNodeID) {
			return a.NodeID == req.CallerNodeID
		}
		if la, lb := len(a.leases), len(b.leases); la != lb {
			return la < lb
		}
		return a.NodeID < b.NodeID
	})
	return cands[0], nil
}

// acquire waits until a node can run the task and holds its resources
// there. It returns the node (a copy) and a release function.
func (r *registry) acquire(ctx context.Context, req taskRequest) (nodeRecord, func(), error) {
	for {
		r.mu.Lock()
		n, err := r.pick(req)
		if err != nil || n != nil {
			var copyOf nodeRecord
			var release func()
			if n != nil {
				r.nextLease++
				id := r.nextLease
				if n.used == nil {
					n.used = map[string]float64{}
				}
				if n.leases == nil {
					n.leases = map[int64]map[string]float64{}
				}
				for k, v := range req.Resources {
					n.used[k] += v
				}
				n.leases[id] = maps.Clone(req.Resources)
				r.broadcast() // availability changed (cluster status readers)
				copyOf = *n
				node := n
				release = func() {
					r.mu.Lock()
					defer r.mu.Unlock()
					if _, ok := node.leases[id]; !ok {
						return
					}
					for k, v := range node.leases[id] {
						node.used[k] -= v
					}
					delete(node.leases, id)
					r.broadcast()
				}
			}
			r.mu.Unlock()
			return copyOf, release, err
		}
		wake := r.wakeup()
		shape := shapeKey(req.Resources)
		if r.waiting == nil {
			r.waiting = map[string]int{}
		}
		r.waiting[shape]++
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-wake:
		}
		r.mu.Lock()
		if r.waiting[shape]--; r.waiting[shape] <= 0 {
			delete(r.waiting, shape)
		}
		r.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nodeRecord{}, nil, err
		}
	}
}

// shapeKey names a resource request (JSON with sorted keys).
func shapeKey(res map[string]float64) string {
	b, _ := json.Marshal(res)
	return string(b)
}

// demand returns the shapes of the tasks waiting for resources with their
// counts, as the autoscaler report's resource_demand ([shape, count] pairs).
func (r *registry) demand() [][2]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.waiting))
	for k := range r.waiting {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := [][2]any{}
	for _, k := range keys {
		var shape map[string]float64
		_ = json.Unmarshal([]byte(k), &shape)
		out = append(out, [2]any{shape, r.waiting[k]})
	}
	return out
}

// usage returns, per resource, what running tasks hold and the total of the
// ALIVE nodes (the autoscaler report's [used, total] pairs).
func (r *registry) usage() map[string][2]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][2]float64{}
	for _, n := range r.nodes {
		if n.State != "ALIVE" {
			continue
		}
		for k, v := range n.resourcesTotal() {
			u := out[k]
			u[0] += n.used[k]
			u[1] += v
			out[k] = u
		}
	}
	return out
}

// validateTaskResources refuses what Ray's option validation refuses
// (python/ray/_private/ray_option_utils.py).
func validateTaskResources(res map[string]float64) error {
	for k, v := range res {
		if v < 0 {
			return fmt.Errorf("Resource quantities may not be negative: %s=%g", k, v)
		}
	}
	return nil
}

// submitTask answers POST /_standin/submit: schedule the task, run it on
// the chosen node's agent, and relay the agent's answer. The resources are
// held until the agent answers or the caller goes away (a stopped job's
// tasks free their node).
func (h *head) submitTask(w http.ResponseWriter, r *http.Request) {
	var req taskRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	if err := dec.Decode(&req); err != nil || len(req.Task) == 0 {
		http.Error(w, "bad task submission", http.StatusBadRequest)
		return
	}
	if req.Resources == nil {
		req.Resources = map[string]float64{}
	}
	if err := validateTaskResources(req.Resources); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error_type": "ValueError", "error": err.Error()})
		return
	}
	n, release, err := h.reg.acquire(r.Context(), req)
	if errors.Is(err, errUnschedulable) {
		h.log.Info("task unschedulable", "node_id", req.NodeID, "resources", req.Resources)
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error_type": "TaskUnschedulableError", "error": err.Error()})
		return
	}
	if err != nil {
		return // the caller went away
	}
	defer release()
	answer, err := h.forwardTask(r.Context(), n, req.Task)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error_type": "RaySystemError", "error": fmt.Sprintf("node %s: %v", n.NodeID, err)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

// forwardTask posts the task to the agent of node n and returns its answer.
func (h *head) forwardTask(ctx context.Context, n nodeRecord, task json.RawMessage) ([]byte, error) {
	url := "http://" + net.JoinHostPort(n.NodeIP, strconv.Itoa(n.AgentPort)) + "/_standin/tasks"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(task))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.auth.enabled {
		req.Header.Set("Authorization", "Bearer "+h.auth.token)
	}
	hc := &http.Client{Timeout: 15 * time.Minute}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent answered %d: %s", resp.StatusCode, tail(string(body), 500))
	}
	return body, nil
}

// resourcesAnswer answers GET /_standin/resources: ray.cluster_resources()
// and ray.available_resources() of the ALIVE nodes.
func (h *head) resourcesAnswer(w http.ResponseWriter, r *http.Request) {
	total, avail := map[string]float64{}, map[string]float64{}
	for k, u := range h.reg.usage() {
		total[k] = u[1]
		if a := u[1] - u[0]; a > resourceEpsilon {
			avail[k] = a
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "available": avail})
}

// resourceString is a node's line of nodeLogicalResources ("used/total name"
// per resource, memory in bytes units as Ray's autoscaler formats them).
func (r *registry) resourceString(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[id]
	if n == nil {
		return ""
	}
	total := n.resourcesTotal()
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(total)) {
		if strings.HasPrefix(k, "node:") {
			continue
		}
		if k == "memory" || k == "object_store_memory" {
			lines = append(lines, fmt.Sprintf("%s/%s %s", formatMemory(n.used[k]), formatMemory(total[k]), k))
			continue
		}
		lines = append(lines, fmt.Sprintf("%.1f/%.1f %s", n.used[k], total[k], k))
	}
	return strings.Join(lines, "\n")
}

// formatMemory writes bytes the way Ray's autoscaler does (B, KiB ... TiB).
func formatMemory(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", int64(b))
	}
	return fmt.Sprintf("%.2f%s", b, units[i])
}
