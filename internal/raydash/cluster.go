package raydash

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// VersionInfo is the answer of GET /api/version.
type VersionInfo struct {
	// Version is the dashboard API version (e.g. "5").
	Version string `json:"version"`
	// RayVersion is the Ray release running the head (e.g. "2.58.0").
	RayVersion string `json:"ray_version"`
	// RayCommit is the commit Ray was built from.
	RayCommit string `json:"ray_commit"`
	// SessionName names the running Ray session (e.g. "session_2026-08-20_10-00-00_123456_1").
	SessionName string `json:"session_name,omitempty"`
}

// Version returns the dashboard and Ray versions (GET /api/version).
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.doJSON(ctx, http.MethodGet, "/api/version", nil, nil, &v)
	return v, err
}

// GCSHealthy returns nil when the head's GCS is healthy (GET /api/gcs_healthz
// answers 200 "success"), an *HTTPError otherwise.
func (c *Client) GCSHealthy(ctx context.Context) error {
	const path = "/api/gcs_healthz"
	body, err := c.request(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(body)); s != "success" {
		return fmt.Errorf("dashboard: GET %s: unexpected answer %q", path, s)
	}
	return nil
}

// Node states reported by Ray.
const (
	NodeAlive = "ALIVE"
	NodeDead  = "DEAD"
)

// Node is one Ray node as the state API reports it.
type Node struct {
	// ID is Ray's node id (56 hex characters).
	ID string
	// IP is the node's address (its --node-ip-address).
	IP string
	// Name is the node name (Ray sets it to the node IP unless told otherwise).
	Name string
	// IsHead is true for the head node.
	IsHead bool
	// State is NodeAlive or NodeDead.
	State string
	// StateMessage explains a DEAD state when Ray knows why.
	StateMessage string
	// Resources is resources_total: "CPU", "GPU", "memory", custom resources...
	Resources map[string]float64
	// Labels are the node labels.
	Labels map[string]string
}

// CPUs returns the node's logical CPUs as Ray counts them (resources_total.CPU).
func (n Node) CPUs() float64 { return n.Resources["CPU"] }

// Alive reports whether the node is ALIVE.
func (n Node) Alive() bool { return n.State == NodeAlive }

// stateNode is one entry of /api/v0/nodes (Ray's NodeState, snake_case).
type stateNode struct {
	NodeID         string             `json:"node_id"`
	NodeIP         string             `json:"node_ip"`
	IsHeadNode     bool               `json:"is_head_node"`
	State          string             `json:"state"`
	StateMessage   *string            `json:"state_message"`
	NodeName       string             `json:"node_name"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	Labels         map[string]string  `json:"labels"`
}

// listResult is the data of a state API list call.
type listResult[T any] struct {
	Result struct {
		Total                 int      `json:"total"`
		NumAfterTruncation    int      `json:"num_after_truncation"`
		NumFiltered           int      `json:"num_filtered"`
		Result                []T      `json:"result"`
		PartialFailureWarning string   `json:"partial_failure_warning"`
		Warnings              []string `json:"warnings"`
	} `json:"result"`
}

// Nodes lists every node the cluster knows, alive and dead, from the state API
// (GET /api/v0/nodes), which carries each node's total resources.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	q := url.Values{"limit": {"10000"}, "detail": {"1"}}
	data, err := getEnvelope[listResult[stateNode]](ctx, c, "/api/v0/nodes", q)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(data.Result.Result))
	for _, s := range data.Result.Result {
		n := Node{
			ID: s.NodeID, IP: s.NodeIP, Name: s.NodeName, IsHead: s.IsHeadNode,
			State: s.State, Resources: s.ResourcesTotal, Labels: s.Labels,
		}
		if s.StateMessage != nil {
			n.StateMessage = *s.StateMessage
		}
		out = append(out, n)
	}
	return out, nil
}

// NodeSummary is one node of GET /nodes?view=summary: what the dashboard's
// cluster page shows, with the host name and hardware facts.
type NodeSummary struct {
	// ID is Ray's node id.
	ID string
	// IP is the node's address.
	IP string
	// Hostname is the machine's host name.
	Hostname string
	// IsHead is true for the head node.
	IsHead bool
	// State is NodeAlive or NodeDead.
	State string
	// LogicalCPUs is the machine's logical CPU count (0 when not reported).
	LogicalCPUs int
	// MemTotal is the machine's memory in bytes (0 when not reported).
	MemTotal int64
}

// summaryNode is one entry of data.summary (camelCase, from the reporter module).
type summaryNode struct {
	Hostname string    `json:"hostname"`
	IP       string    `json:"ip"`
	CPUs     []int     `json:"cpus"`
	Mem      []float64 `json:"mem"`
	Raylet   struct {
		NodeID             string `json:"nodeId"`
		NodeManagerAddress string `json:"nodeManagerAddress"`
		State              string `json:"state"`
		IsHeadNode         bool   `json:"isHeadNode"`
	} `json:"raylet"`
}

// NodeSummaries lists the nodes as the dashboard's node page does
// (GET /nodes?view=summary).
func (c *Client) NodeSummaries(ctx context.Context) ([]NodeSummary, error) {
	data, err := getEnvelope[struct {
		Summary []summaryNode `json:"summary"`
	}](ctx, c, "/nodes", url.Values{"view": {"summary"}})
	if err != nil {
		return nil, err
	}
	out := make([]NodeSummary, 0, len(data.Summary))
	for _, s := range data.Summary {
		n := NodeSummary{
			ID: s.Raylet.NodeID, IP: s.IP, Hostname: s.Hostname,
			IsHead: s.Raylet.IsHeadNode, State: s.Raylet.State,
		}
		if n.IP == "" {
			n.IP = s.Raylet.NodeManagerAddress
		}
		if len(s.CPUs) > 0 {
			n.LogicalCPUs = s.CPUs[0]
		}
		if len(s.Mem) > 0 {
			n.MemTotal = int64(s.Mem[0])
		}
		out = append(out, n)
	}
	return out, nil
}

// ClusterStatus returns data.clusterStatus of GET /api/cluster_status: the
// autoscaler's report (resource usage, demands, active and failed nodes). Its
// shape changes between Ray releases, so it is returned undecoded.
func (c *Client) ClusterStatus(ctx context.Context) (json.RawMessage, error) {
	data, err := getEnvelope[struct {
		ClusterStatus json.RawMessage `json:"clusterStatus"`
	}](ctx, c, "/api/cluster_status", nil)
	if err != nil {
		return nil, err
	}
	return data.ClusterStatus, nil
}
