package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
)

// prerequisitesCheck reports on every node and changes nothing: OS, CPUs,
// memory, disk, Docker, Ray's ports, the head's reachability from every
// worker, and clock skew.
type prerequisitesCheck struct{ d *Deployer }

func (c *prerequisitesCheck) Name() string { return CheckpointPrerequisites }
func (c *prerequisitesCheck) Description() string {
	return "Check every node's OS, CPUs, memory, disk, Docker, ports and network"
}
func (c *prerequisitesCheck) NeedsApproval() bool { return false }
func (c *prerequisitesCheck) Destructive() bool   { return false }

// Plan lists a check on every node: checks always run, they change nothing.
func (c *prerequisitesCheck) Plan(ctx context.Context) (checkpoint.Plan, error) {
	p := checkpoint.Plan{Checkpoint: c.Name()}
	for _, n := range c.d.cluster.Nodes() {
		p.Items = append(p.Items, checkpoint.PlanItem{Node: n.ID(), Action: "check", Detail: "read-only checks", Target: &approval.Target{Kind: approval.TargetNode, Name: n.ID()}})
	}
	return p, nil
}

func (c *prerequisitesCheck) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	nodes := d.nodesIn(p)
	summaries := map[string]string{}
	var mu sync.Mutex
	err := d.fanout(ctx, nodes, c.Name(), func(ctx context.Context, n Node) error {
		f, err := d.prerequisiteFacts(ctx, n)
		if err != nil {
			return err
		}
		problems := d.checkNode(ctx, n, f)
		mu.Lock()
		summaries[n.ID()] = fmt.Sprintf("%s, %d CPUs, %s memory, %s free on /, %s", f.OS, f.CPUs, f.MemTotal, f.DiskFree, dockerState(f))
		mu.Unlock()
		if len(problems) > 0 {
			return &checkpoint.NodeError{Node: n.ID(), Op: c.Name(), Err: errors.New(strings.Join(problems, "; "))}
		}
		return nil
	})
	return results(nodes, err, func(n Node) string { return summaries[n.ID()] }), nil
}

func dockerState(f Facts) string {
	switch {
	case !f.Docker:
		return "Docker not installed"
	case !f.DockerRunning:
		return "Docker installed, not running"
	case !f.DockerAccess:
		return "Docker running, user " + f.User + " may not use it"
	}
	return "Docker running"
}

// prerequisiteFacts gathers the node's facts afresh and, on a worker, probes
// the head's reachability in the same SSH session: one round trip per node.
func (d *Deployer) prerequisiteFacts(ctx context.Context, n Node) (Facts, error) {
	probe := ""
	if n.Role != RoleHead {
		probe = headProbeScript(d.cluster.Head.Address, d.cluster.Head.Port)
	}
	f, err := d.conn.gatherFactsWith(ctx, n, probe)
	if err != nil {
		return Facts{}, err
	}
	d.mu.Lock()
	d.facts[n.ID()] = f
	d.mu.Unlock()
	return f, nil
}

// checkNode returns the node's unmet prerequisites.
func (d *Deployer) checkNode(ctx context.Context, n Node, f Facts) []string {
	req := d.opts.Prerequisites
	var problems []string
	if f.Kernel != "Linux" {
		problems = append(problems, fmt.Sprintf("kernel %q is not Linux", f.Kernel))
	}
	if f.CPUs < req.MinCPUs {
		problems = append(problems, fmt.Sprintf("%d CPUs, need %d", f.CPUs, req.MinCPUs))
	}
	if want := expectedCPUs(n, f); n.Resources.CPUs != nil && want > f.CPUs {
		problems = append(problems, fmt.Sprintf("resources.cpus %d exceeds the node's %d CPUs", want, f.CPUs))
	}
	if f.MemTotal < req.MinMemory {
		problems = append(problems, fmt.Sprintf("%s memory, need %s", f.MemTotal, req.MinMemory))
	}
	if f.DiskFree < req.MinDiskFree {
		problems = append(problems, fmt.Sprintf("%s free on /, need %s", f.DiskFree, req.MinDiskFree))
	}
	if !f.Docker && !f.debianLike() {
		problems = append(problems, fmt.Sprintf("Docker is missing and %s is not Debian or Ubuntu: install Docker Engine by hand", f.OS))
	}
	if skew := f.ClockSkew.Abs(); skew > req.MaxClockSkew {
		problems = append(problems, fmt.Sprintf("clock is %s off the controller's (limit %s): sync it with NTP", f.ClockSkew, req.MaxClockSkew))
	}
	if busy := d.busyRayPorts(ctx, n, f); len(busy) > 0 {
		problems = append(problems, fmt.Sprintf("Ray's ports %v are in use by something else", busy))
	}
	if head := d.cluster.Head; n.Role != RoleHead && f.headProbe != "yes" {
		problems = append(problems, fmt.Sprintf("cannot reach the head %s:%d from here", head.Address, head.Port))
	}
	return problems
}

// busyRayPorts lists Ray's ports that something listens on, unless that
// something is this cluster's own Ray container (a re-run).
func (d *Deployer) busyRayPorts(ctx context.Context, n Node, f Facts) []int {
	p := d.cluster.Ray.Ports
	ports := []int{p.Metrics, p.DashboardAgent}
	if n.Role == RoleHead {
		ports = append(ports, p.GCS, p.Dashboard, p.Client)
	}
	var busy []int
	for _, port := range ports {
		if slices.Contains(f.ListenPorts, port) {
			busy = append(busy, port)
		}
	}
	if len(busy) == 0 || !f.DockerAccess {
		return busy
	}
	if e, err := d.conn.docker(ctx, n); err == nil {
		for _, name := range d.cluster.rayContainerNames() {
			if st, err := e.Inspect(ctx, name); err == nil && st.Running {
				return nil // ours: a re-run
			}
		}
	}
	return busy
}
