package hollow

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// dashboardListens reports whether the node's Ray head serves its dashboard
// on port.
func (n *Node) dashboardListens(port int) bool {
	r, ok := n.engine.rayNode()
	return ok && r.head && r.dashPort == port
}

// serveDashboard answers the Ray dashboard requests the deployment makes, in
// the shapes of Ray's own answers (internal/raydash/testdata): the head's
// version and GCS health, and the state API's node list, built from the Ray
// containers running on the cluster's hollow nodes.
func serveDashboard(n *Node, l *chanListener) {
	srv := &http.Server{Handler: http.HandlerFunc(n.dashboard), ReadHeaderTimeout: time.Minute}
	_ = srv.Serve(l)
}

// stateNode is one entry of GET /api/v0/nodes.
type stateNode struct {
	NodeID         string             `json:"node_id"`
	NodeIP         string             `json:"node_ip"`
	IsHeadNode     bool               `json:"is_head_node"`
	State          string             `json:"state"`
	StateMessage   *string            `json:"state_message"`
	NodeName       string             `json:"node_name"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	Labels         map[string]string  `json:"labels"`
	StartTimeMS    int64              `json:"start_time_ms"`
	EndTimeMS      int64              `json:"end_time_ms"`
}

func (n *Node) dashboard(w http.ResponseWriter, r *http.Request) {
	head, ok := n.engine.rayNode()
	if !ok || !head.head {
		http.Error(w, "connection refused", http.StatusBadGateway)
		return
	}
	if head.token != "" {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("X-Ray-Authorization")
		}
		switch {
		case auth == "":
			http.Error(w, "Unauthorized: Missing authentication token", http.StatusUnauthorized)
			return
		case auth != "Bearer "+head.token:
			http.Error(w, "Forbidden: Invalid authentication token", http.StatusForbidden)
			return
		}
	}
	switch r.URL.Path {
	case "/api/version":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"version": "5", "ray_version": head.rayVersion, "ray_commit": "{{RAY_COMMIT_SHA}}",
			"session_name": "session_hollow_" + head.nodeID[:8],
		})
	case "/api/gcs_healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "success")
	case "/api/v0/nodes":
		nodes := n.rayNodes(head)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"result": true, "msg": "", "data": map[string]any{
			"result": map[string]any{
				"total": len(nodes), "num_after_truncation": len(nodes), "num_filtered": len(nodes),
				"result": nodes, "partial_failure_warning": "", "warnings": nil,
			},
		}})
	default:
		http.NotFound(w, r)
	}
}

// rayNodes lists the head and every node whose running Ray worker joined it.
func (n *Node) rayNodes(head rayInfo) []stateNode {
	gcs := net.JoinHostPort(head.ip, itoa(head.gcsPort))
	var out []stateNode
	for _, m := range n.cluster.Nodes {
		r, ok := m.engine.rayNode()
		if !ok || (!r.head && r.address != gcs) || (r.head && m != n) {
			continue
		}
		res := map[string]float64{"CPU": r.cpus, "memory": r.memory, "object_store_memory": r.memory * 0.3, "node:" + r.ip: 1}
		if r.head {
			res["node:__internal_head__"] = 1
		}
		out = append(out, stateNode{
			NodeID: r.nodeID, NodeIP: r.ip, IsHeadNode: r.head, State: "ALIVE", NodeName: r.ip,
			ResourcesTotal: res, Labels: map[string]string{"ray.io/node-id": r.nodeID},
			StartTimeMS: time.Now().UnixMilli(),
		})
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
