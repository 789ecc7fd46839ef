package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

// The seed's status shapes. Extra fields (this server's additions) are
// marked in the OpenAPI document; a seed client ignores them.

// CheckpointStatus is the seed's CheckpointStatus, from the ledger.
type CheckpointStatus struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint"`
	// Status is the seed's status: PASSED (succeeded or already satisfied),
	// FAILED, IN_PROGRESS (running) or NOT_FOUND (not run yet).
	Status string `json:"status"`
	// Nodes is each node's status in the checkpoint by node ID; nodes it has
	// not reached yet are left out.
	Nodes map[string]NodeCheckpointStatus `json:"nodes"`
	// TotalNodes is the number of nodes in the cluster.
	TotalNodes int `json:"total_nodes"`
	// PassedNodes is how many of Nodes are PASSED.
	PassedNodes int `json:"passed_nodes"`
	// Message says the status in words: "not run yet", "succeeded on 2 of 3
	// nodes", "already satisfied, nothing to change", "running" or "failed:
	// <error>".
	Message string `json:"message"`
	// Description says what the checkpoint does.
	Description string `json:"description"`
	// NeedsApproval (approval_required) is true when a run of the checkpoint
	// waits for an approver's decision (it needs approval or is destructive).
	NeedsApproval bool `json:"approval_required"`
	// Destructive (destructive_operation) is true when the checkpoint removes
	// what cannot be restored.
	Destructive bool `json:"destructive_operation"`
	// LedgerStatus is the ledger's own status: pending, running, succeeded,
	// failed or skipped-satisfied.
	LedgerStatus string `json:"ledger_status"`
	// PlanDigest is the digest of the plan of the last run (empty: not run,
	// or planning failed).
	PlanDigest string `json:"plan_digest,omitempty"`
	// StartedAt is when the last run started, UTC (absent: never).
	StartedAt *time.Time `json:"started_at,omitempty"`
	// EndedAt is when the last run ended, UTC (absent: not run or still
	// running).
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// ApprovedBy is who approved the last run (empty: it needed no approval
	// or was not approved).
	ApprovedBy string `json:"approved_by,omitempty"`
}

// NodeCheckpointStatus is the seed's NodeCheckpointStatus.
type NodeCheckpointStatus struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Status is PASSED, FAILED or IN_PROGRESS on this node.
	Status string `json:"status"`
	// Timestamp is when the node's run ended, else when it started, UTC
	// (absent: neither recorded).
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// NeedsApprove (approval_required) is as in
	// CheckpointStatus.NeedsApproval.
	NeedsApprove bool `json:"approval_required"`
	// Destructive (destructive_operation) is as in CheckpointStatus.
	Destructive bool `json:"destructive_operation"`
	// LedgerStatus is the ledger's status of the checkpoint on this node.
	LedgerStatus string `json:"ledger_status"`
	// StartedAt is when the checkpoint started on this node, UTC (absent: not
	// recorded).
	StartedAt *time.Time `json:"started_at,omitempty"`
	// Summary is what the checkpoint reported for this node (empty: nothing).
	Summary string `json:"summary,omitempty"`
	// Error is why it failed on this node (empty: it did not).
	Error string `json:"error,omitempty"`
}

// ClusterHealth is the seed's ClusterHealth, from the last validation report.
type ClusterHealth struct {
	// OverallStatus grades every check of the last validation report: HEALTHY
	// (all passed), DEGRADED (some), FAILED (none) or UNKNOWN (no checks: no
	// readable report).
	OverallStatus string `json:"overall_status"`
	// RayCluster grades the report's Ray checks (dashboard, cluster, nodes,
	// job, task).
	RayCluster HealthPart `json:"ray_cluster"`
	// Monitoring grades the report's monitoring endpoint checks.
	Monitoring MonitoringPart `json:"monitoring"`
	// Containers counts the cluster's containers (see ContainerCounts and
	// ContainersAsOf).
	Containers ContainerCounts `json:"containers"`
	// Endpoints counts the endpoint checks of the report: the Ray dashboard
	// and the monitoring endpoints.
	Endpoints EndpointCounts `json:"endpoints"`
	// AsOf is the time of the validation report (null: none).
	AsOf *time.Time `json:"as_of"`
	// Source says where the figures come from: "last validation report",
	// "validation report unreadable" or "none: no validation report yet".
	Source string `json:"source"`
	// ContainersAsOf is when the containers counts were taken: the oldest
	// node's latest listing, or the validation report's time when not every
	// node was listed yet (null: neither).
	ContainersAsOf *time.Time `json:"containers_as_of"`
}

// HealthPart is the Ray part of ClusterHealth.
type HealthPart struct {
	// Status is HEALTHY, DEGRADED, FAILED or UNKNOWN, graded as
	// OverallStatus.
	Status string `json:"status"`
	// Nodes is the number of nodes whose ray-node check passed.
	Nodes int `json:"nodes"`
}

// MonitoringPart is the monitoring part of ClusterHealth.
type MonitoringPart struct {
	// Status is HEALTHY, DEGRADED, FAILED or UNKNOWN, graded as
	// OverallStatus.
	Status string `json:"status"`
	// Services names the monitoring checks that passed, each once, in report
	// order.
	Services []string `json:"services"`
}

// ContainerCounts counts the cluster's containers: those last listed on
// every node, else the Ray containers the last validation found.
type ContainerCounts struct {
	// Total is the number of containers counted.
	Total int `json:"total"`
	// Running is how many of them run (state running, or a passed container
	// check).
	Running int `json:"running"`
}

// EndpointCounts counts the endpoints validation checked.
type EndpointCounts struct {
	// Healthy is how many endpoint checks passed.
	Healthy int `json:"healthy"`
	// Total is the number of endpoint checks.
	Total int `json:"total"`
}

// ClusterStatus is the seed's ClusterStatus.
type ClusterStatus struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// DeploymentStatus is COMPLETED (every checkpoint PASSED), FAILED (one
	// failed, none running) or IN_PROGRESS (one runs, an execution runs, or
	// some have not run yet).
	DeploymentStatus string `json:"deployment_status"`
	// CompletedCheckpoints names the PASSED checkpoints, in order.
	CompletedCheckpoints []string `json:"completed_checkpoints"`
	// TotalCheckpoints is the number of checkpoints of a deployment.
	TotalCheckpoints int `json:"total_checkpoints"`
	// CheckpointDetails is each checkpoint's status by name.
	CheckpointDetails map[string]CheckpointStatus `json:"checkpoint_details"`
	// Checkpoints names every checkpoint, in order.
	Checkpoints []string `json:"checkpoints"`
	// ClusterHealth is as GET /api/v1/cluster/health answers it.
	ClusterHealth ClusterHealth `json:"cluster_health"`
	// LastUpdated is when the ledger was last written, UTC (now when it never
	// was).
	LastUpdated time.Time `json:"last_updated"`
	// RunningExecution is the ID of the execution in progress (empty: none).
	RunningExecution string `json:"running_execution,omitempty"`
	// PendingApprovals is the number of approval requests waiting for a
	// decision.
	PendingApprovals int `json:"pending_approvals"`
	// Links are the head's Ray dashboard, Grafana and Prometheus.
	Links []Link `json:"links"`
}

// Link points at one of the cluster's web interfaces.
type Link struct {
	// Name is "Ray dashboard", "Grafana" or "Prometheus".
	Name string `json:"name"`
	// URL is its http URL on the head node's address.
	URL string `json:"url"`
}

// NodeInfo is the seed's NodeInfo.
type NodeInfo struct {
	// Name is the node's ID.
	Name string `json:"name"`
	// IP is the node's address as configured (an IP address or a host name).
	IP string `json:"ip"`
	// Role is "head" or "worker".
	Role string `json:"role"`
	// Status is ONLINE (the node's most recent ledger record succeeded),
	// OFFLINE (it failed) or UNKNOWN (no ended record); from the ledger, not a
	// probe.
	Status string `json:"status"`
	// Containers names the cluster's containers on the node, running or not,
	// in the latest listing (empty: none or not listed yet).
	Containers []string `json:"containers"`
	// StatusAsOf is when the record Status comes from ended (null: no
	// record).
	StatusAsOf *time.Time `json:"status_as_of"`
	// ContainersAsOf is when Containers was listed (null: not yet).
	ContainersAsOf *time.Time `json:"containers_as_of"`
	// ContainersError is why the last listing failed (Containers is then
	// the one before).
	ContainersError string `json:"containers_error,omitempty"`
}

// NodeDetails is the seed's NodeDetails.
type NodeDetails struct {
	// Name is the node's ID.
	Name string `json:"name"`
	// IP is as in NodeInfo.
	IP string `json:"ip"`
	// Role is "head" or "worker".
	Role string `json:"role"`
	// Status is as in NodeInfo.
	Status string `json:"status"`
	// SystemInfo holds what is known of the node's system: "prerequisites" is
	// what prerequisites-check found (empty: not checked yet).
	SystemInfo map[string]string `json:"system_info"`
	// Containers are the cluster's containers on the node in the latest
	// listing.
	Containers []NodeContainer `json:"containers"`
	// Checkpoints is the node's status in each checkpoint that reached it, in
	// checkpoint order.
	Checkpoints []NodeCheckpointStatus `json:"checkpoints"`
	// StatusAsOf is as in NodeInfo.
	StatusAsOf *time.Time `json:"status_as_of"`
	// ContainersAsOf and ContainersError are as in NodeInfo.
	ContainersAsOf  *time.Time `json:"containers_as_of"`
	ContainersError string     `json:"containers_error,omitempty"` // why the last listing failed
}

// NodeContainer is a container of NodeDetails.
type NodeContainer struct {
	// Name is the container's name.
	Name string `json:"name"`
	// Status is the Engine's state of the container: running, exited,
	// created, ...
	Status string `json:"status"`
	// Image is the image reference the container was created from.
	Image string `json:"image"`
}

// Dashboard is the seed's Dashboard: one Grafana dashboard provisioned by monitoring-deployment.
type Dashboard struct {
	// ID is the dashboard's Grafana UID.
	ID string `json:"id"`
	// Title is the dashboard's title in Grafana.
	Title string `json:"title"`
	// URL is the dashboard's address on the head's Grafana.
	URL string `json:"url"`
	// Description says what the dashboard shows.
	Description string `json:"description"`
}

// seedStatus maps a ledger status to the seed's checkpoint status enum.
func seedStatus(st checkpoint.Status) string {
	switch st {
	case checkpoint.StatusSucceeded, checkpoint.StatusSkippedSatisfied:
		return "PASSED"
	case checkpoint.StatusFailed:
		return "FAILED"
	case checkpoint.StatusRunning:
		return "IN_PROGRESS"
	}
	return "NOT_FOUND"
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// readLedger reads the ledger file without creating or locking anything.
func readLedger(stateDir string) (*checkpoint.Ledger, error) {
	path := filepath.Join(stateDir, checkpoint.LedgerFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint.NewLedger(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return checkpoint.DecodeLedger(checkpoint.LedgerFile, data)
}

// snapshot is what status answers are made of: the checkpoint list and the
// ledger, both read from disk.
type snapshot struct {
	infos  []checkpoint.Info
	ledger *checkpoint.Ledger
	nodes  []raydeploy.Node
}

func (s *Server) snapshot(ctx context.Context) (*snapshot, error) {
	d, _ := s.deployer()
	s.mu.Lock()
	infos := s.infos
	s.mu.Unlock()
	if infos == nil {
		var err error
		if infos, err = d.List(ctx); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.infos = infos
		s.mu.Unlock()
	}
	l, err := s.ledgers.read(d.Cluster().StateDir)
	if err != nil {
		return nil, err
	}
	return &snapshot{infos: infos, ledger: l, nodes: d.Cluster().Nodes()}, nil
}

// ledgerCache decodes the ledger again only when the file changed (the
// runner replaces it by rename, so a new file is a new inode). Callers
// only read the ledger it returns.
type ledgerCache struct {
	mu     sync.Mutex
	fi     os.FileInfo
	ledger *checkpoint.Ledger
}

func (c *ledgerCache) read(stateDir string) (*checkpoint.Ledger, error) {
	path := filepath.Join(stateDir, checkpoint.LedgerFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint.NewLedger(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fi != nil && os.SameFile(c.fi, fi) && c.fi.ModTime().Equal(fi.ModTime()) && c.fi.Size() == fi.Size() {
		return c.ledger, nil
	}
	l, err := readLedger(stateDir)
	if err != nil {
		return nil, err
	}
	c.fi, c.ledger = fi, l
	return l, nil
}

func (sn *snapshot) info(name string) (checkpoint.Info, bool) {
	for _, i := range sn.infos {
		if i.Name == name {
			return i, true
		}
	}
	return checkpoint.Info{}, false
}

func (sn *snapshot) checkpointStatus(info checkpoint.Info) CheckpointStatus {
	cs := CheckpointStatus{
		Checkpoint: info.Name, Status: "NOT_FOUND", Nodes: map[string]NodeCheckpointStatus{},
		Description: info.Description, NeedsApproval: info.NeedsApproval || info.Destructive,
		Destructive: info.Destructive, LedgerStatus: string(checkpoint.StatusPending),
		TotalNodes: len(sn.nodes), Message: "not run yet",
	}
	rec := sn.ledger.Checkpoints[info.Name]
	if rec == nil {
		return cs
	}
	cs.Status, cs.LedgerStatus = seedStatus(rec.Status), string(rec.Status)
	cs.PlanDigest, cs.StartedAt, cs.EndedAt = rec.PlanDigest, tp(rec.StartedAt), tp(rec.EndedAt)
	if rec.Approval != nil {
		cs.ApprovedBy = rec.Approval.By
	}
	for _, n := range sn.nodes {
		nr := rec.Nodes[n.ID()]
		if nr == nil || nr.Status == checkpoint.StatusPending {
			continue
		}
		ns := sn.nodeStatus(info, nr)
		cs.Nodes[n.ID()] = ns
		if ns.Status == "PASSED" {
			cs.PassedNodes++
		}
	}
	switch rec.Status {
	case checkpoint.StatusSucceeded:
		cs.Message = fmt.Sprintf("succeeded on %d of %d nodes", cs.PassedNodes, cs.TotalNodes)
	case checkpoint.StatusSkippedSatisfied:
		cs.Message = "already satisfied, nothing to change"
	case checkpoint.StatusRunning:
		cs.Message = "running"
	case checkpoint.StatusFailed:
		cs.Message = "failed: " + rec.Error
	}
	return cs
}

func (sn *snapshot) nodeStatus(info checkpoint.Info, nr *checkpoint.NodeRecord) NodeCheckpointStatus {
	st := seedStatus(nr.Status)
	if st == "NOT_FOUND" { // pending nodes are left out of the map
		st = "IN_PROGRESS"
	}
	ts := nr.EndedAt
	if ts.IsZero() {
		ts = nr.StartedAt
	}
	return NodeCheckpointStatus{
		Checkpoint: info.Name, Status: st, Timestamp: tp(ts), NeedsApprove: info.NeedsApproval || info.Destructive,
		Destructive: info.Destructive, LedgerStatus: string(nr.Status), StartedAt: tp(nr.StartedAt),
		Summary: nr.Summary, Error: nr.Error,
	}
}

// nodeState is the node's status from the ledger: ONLINE when its most
// recent record succeeded, OFFLINE when it failed, UNKNOWN without records.
func (sn *snapshot) nodeState(id string) (string, *time.Time) {
	var last *checkpoint.NodeRecord
	for _, rec := range sn.ledger.Checkpoints {
		nr := rec.Nodes[id]
		if nr == nil || nr.EndedAt.IsZero() {
			continue
		}
		if last == nil || nr.EndedAt.After(last.EndedAt) {
			last = nr
		}
	}
	switch {
	case last == nil:
		return "UNKNOWN", nil
	case last.Status == checkpoint.StatusFailed:
		return "OFFLINE", tp(last.EndedAt)
	}
	return "ONLINE", tp(last.EndedAt)
}

// health is the last validation report's health, with the containers counts
// of the latest listings when every node was listed.
func (s *Server) health() ClusterHealth {
	h := s.validationHealth()
	if h.Containers.Total > 0 || h.AsOf != nil {
		h.ContainersAsOf = h.AsOf
	}
	if c, asOf, ok := s.containers().counts(); ok {
		h.Containers, h.ContainersAsOf = c, tp(asOf)
	}
	return h
}

// validationHealth reads validation.json (written by final-validation and Validate).
func (s *Server) validationHealth() ClusterHealth {
	h := ClusterHealth{OverallStatus: "UNKNOWN", RayCluster: HealthPart{Status: "UNKNOWN"},
		Monitoring: MonitoringPart{Status: "UNKNOWN", Services: []string{}}, Source: "none: no validation report yet"}
	data, err := os.ReadFile(filepath.Join(s.stateDir(), "validation.json"))
	if err != nil {
		return h
	}
	var rep raydeploy.ValidationReport
	if err := strictUnmarshal(data, &rep); err != nil {
		h.Source = "validation report unreadable"
		return h
	}
	h.AsOf, h.Source = tp(rep.Time), "last validation report"
	var rayOK, rayAll, monOK, monAll int
	nodes := map[string]bool{}
	seen := map[string]bool{}
	for _, c := range rep.Checks {
		switch c.Name {
		case "container":
			h.Containers.Total++
			if c.OK {
				h.Containers.Running++
			}
		case "dashboard", "ray-cluster", "ray-nodes", "ray-node", "ray-job", "ray-task":
			rayAll++
			if c.OK {
				rayOK++
			}
			if c.Name == "ray-node" && c.OK {
				nodes[c.Node] = true
			}
			if c.Name == "dashboard" {
				h.Endpoints.Total++
				if c.OK {
					h.Endpoints.Healthy++
				}
			}
		default: // a monitoring endpoint
			monAll++
			h.Endpoints.Total++
			if c.OK {
				monOK++
				h.Endpoints.Healthy++
				if !seen[c.Name] {
					seen[c.Name] = true
					h.Monitoring.Services = append(h.Monitoring.Services, c.Name)
				}
			}
		}
	}
	h.RayCluster = HealthPart{Status: grade(rayOK, rayAll), Nodes: len(nodes)}
	h.Monitoring.Status = grade(monOK, monAll)
	ok, all := rayOK+monOK+h.Containers.Running, rayAll+monAll+h.Containers.Total
	h.OverallStatus = grade(ok, all)
	return h
}

func grade(ok, all int) string {
	switch {
	case all == 0:
		return "UNKNOWN"
	case ok == all:
		return "HEALTHY"
	case ok == 0:
		return "FAILED"
	}
	return "DEGRADED"
}

func (s *Server) links() []Link {
	d, _ := s.deployer()
	c := d.Cluster()
	head := c.Nodes()[0].Address
	ray := c.Ray.Ports.Dashboard
	if ray == 0 {
		ray = raydeploy.DefaultRayPorts().Dashboard
	}
	u := func(port int) string { return "http://" + joinHostPort(head, port) }
	return []Link{
		{Name: "Ray dashboard", URL: u(ray)},
		{Name: "Grafana", URL: u(monitoring.DefaultGrafanaPort)},
		{Name: "Prometheus", URL: u(monitoring.DefaultPrometheusPort)},
	}
}

func joinHostPort(host string, port int) string {
	if ip := parseIPv6(host); ip {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

func parseIPv6(h string) bool {
	for _, r := range h {
		if r == ':' {
			return true
		}
	}
	return false
}

func (s *Server) dashboards() []Dashboard {
	base := ""
	for _, l := range s.links() {
		if l.Name == "Grafana" {
			base = l.URL
		}
	}
	mk := func(uid, title, desc string) Dashboard {
		return Dashboard{ID: uid, Title: title, URL: base + "/d/" + uid, Description: desc}
	}
	return []Dashboard{
		mk(monitoring.DashboardNodesUID, "Raydeploy / Nodes", "System metrics of every node (node-exporter): CPU, memory, disk, network"),
		mk(monitoring.DashboardContainersUID, "Raydeploy / Containers", "Container resource use on every node (cAdvisor)"),
		mk(monitoring.DashboardRayUID, "Raydeploy / Ray cluster", "Ray's own metrics: tasks, nodes, resources"),
	}
}
