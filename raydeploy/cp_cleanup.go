package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/sshx"
)

// cleanupExisting removes what earlier Ray installations left on the nodes:
// the seed's ray_head/ray_worker containers, Ray's launcher's ray_container,
// other containers of rayproject/ray images, this cluster's containers that
// no longer belong on a node, Ray processes running outside containers, and
// Ray's temp dir when no Ray of this cluster uses it. The plan lists each of
// them, per node; nothing else is touched.
type cleanupExisting struct {
	d       *Deployer
	planned typedPlan[[]checkpoint.PlanItem] // by node: the items, each with its Target
}

func (c *cleanupExisting) Name() string        { return CheckpointCleanup }
func (c *cleanupExisting) Description() string { return "Remove earlier Ray installations" }
func (c *cleanupExisting) NeedsApproval() bool { return true }
func (c *cleanupExisting) Destructive() bool   { return true }

// Risks are shown to the approver; destructive steps need them acknowledged.
func (c *cleanupExisting) Risks() []string {
	return []string{
		"the listed containers are force-removed with their anonymous volumes: data inside them is lost, there is no undo",
		"Ray jobs, actors and Serve applications running in them are killed",
		"the listed processes are killed and the listed directories deleted",
	}
}

// legacyNames are container names of earlier Ray deployments: the seed's
// Ansible roles and Ray's own cluster launcher.
var legacyNames = []string{"ray_head", "ray_worker", "ray_container"}

// Cleanup plan actions.
const (
	actionRemoveContainer = "remove-container"
	actionKillProcess     = "kill-process"
	actionRemoveDir       = "remove-dir"
)

// rayProcessScript lists Ray daemons that run outside any container (a pip
// install of Ray on the host): "pid comm" lines.
const rayProcessScript = `for p in $(pgrep -x 'raylet|gcs_server' 2>/dev/null; pgrep -f '[r]ay/_private/workers/default_worker.py|[r]ay/dashboard/dashboard.py' 2>/dev/null); do
	[ "$p" = "$$" ] && continue
	grep -qE 'docker|containerd|lxc|kubepods' /proc/$p/cgroup 2>/dev/null && continue
	[ "$(readlink /proc/1/ns/pid 2>/dev/null)" = "$(readlink /proc/$p/ns/pid 2>/dev/null)" ] || continue
	echo "$p $(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20) $(cat /proc/$p/comm 2>/dev/null)"
done | sort -u
[ -d /tmp/ray ] && echo "dir /tmp/ray"
true`

func (c *cleanupExisting) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	items, err := fanMap(ctx, d, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.cleanupItems)
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, items[n.ID()]...)
	}
	c.planned.keep(p, items)
	return p, err // on failure, the nodes planned so far are in p
}

// cleanupItems finds what cleanup-existing would remove on one node.
func (d *Deployer) cleanupItems(ctx context.Context, n Node) ([]checkpoint.PlanItem, error) {
	var items []checkpoint.PlanItem
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return nil, err
	}
	all, err := e.List(ctx, dockerx.ListFilter{})
	if err != nil {
		return nil, err
	}
	ours := d.desiredContainerNames(n)
	keepTmp := false
	for _, ct := range all {
		reason := ""
		switch {
		case ct.Labels[dockerx.LabelCluster] == d.cluster.Name:
			if slices.Contains(ours, ct.Name) {
				keepTmp = keepTmp || strings.Contains(ct.Name, "-ray-")
				continue
			}
			reason = "of this cluster, no longer wanted on this node"
		case slices.Contains(legacyNames, ct.Name):
			reason = "left by an earlier Ray deployment"
		case ct.Labels[dockerx.LabelCluster] == "" && strings.HasPrefix(ct.Image, "rayproject/ray"):
			reason = "runs a Ray image outside raydeploy"
		default:
			continue // not ours, not Ray: never touched
		}
		items = append(items, removeContainerItem(n, ct, reason))
	}
	out, err := d.conn.run(ctx, n, rayProcessScript)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "dir":
			if !keepTmp && len(items) > 0 {
				items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionRemoveDir,
					Detail: f[1] + " (Ray session files of an earlier install)",
					Target: &approval.Target{Kind: approval.TargetDirectory, Path: f[1]}})
			}
		case len(f) >= 3:
			pid, err1 := strconv.Atoi(f[0])
			start, err2 := strconv.ParseUint(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				continue // the process ended while being listed
			}
			comm := strings.Join(f[2:], " ")
			items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionKillProcess,
				Detail: fmt.Sprintf("%d %s (Ray outside a container)", pid, comm),
				Target: &approval.Target{Kind: approval.TargetProcess, PID: pid, StartTime: start, Command: comm}})
		}
	}
	return items, nil
}

// removeContainerItem plans the removal of container ct from n.
func removeContainerItem(n Node, ct dockerx.Container, reason string) checkpoint.PlanItem {
	detail := fmt.Sprintf("%s %s (image %s, %s)", ct.Name, shortID(ct.ID), ct.Image, ct.State)
	if reason != "" {
		detail += ": " + reason
	}
	return checkpoint.PlanItem{Node: n.ID(), Action: actionRemoveContainer, Detail: detail,
		Target: &approval.Target{Kind: approval.TargetContainer, Name: ct.Name, ID: ct.ID, Image: ct.Image}}
}

// desiredContainerNames are the containers of this cluster that belong on n.
func (d *Deployer) desiredContainerNames(n Node) []string {
	name := ServiceRayWorker
	if n.Role == RoleHead {
		name = ServiceRayHead
	}
	return append([]string{d.cluster.Name + "-" + name}, d.monitoringContainerNames(n)...)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (c *cleanupExisting) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	planned, err := c.planned.take(p)
	if err != nil {
		return nil, err
	}
	return c.d.removePlanned(ctx, c.Name(), planned)
}

// removePlanned carries out cleanup-existing's and down's typed plans: on
// each node, first every target is checked against what was planned (a
// container by ID, a process by pid and start time, a directory by path);
// if any changed, the node is refused with a *checkpoint.StaleError and
// nothing of it is touched. Otherwise each target is removed, containers by
// their planned ID.
func (d *Deployer) removePlanned(ctx context.Context, op string, planned map[string][]checkpoint.PlanItem) ([]checkpoint.NodeResult, error) {
	var nodes []Node
	for _, n := range d.cluster.Nodes() {
		if len(planned[n.ID()]) > 0 {
			nodes = append(nodes, n)
		}
	}
	counts := map[string]int{}
	var mu sync.Mutex
	err := d.fanout(ctx, nodes, op, func(ctx context.Context, n Node) error {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		items := planned[n.ID()]
		if err := stale(n, items, func(it checkpoint.PlanItem) (string, error) {
			switch t := it.Target; {
			case t == nil:
				return "", fmt.Errorf("plan item %s %q has no target", it.Action, it.Detail)
			case t.Kind == approval.TargetContainer:
				return containerChanged(ctx, e, t)
			case t.Kind == approval.TargetProcess:
				return d.processChanged(ctx, n, t)
			case t.Kind == approval.TargetDirectory:
				return d.dirChanged(ctx, n, t)
			}
			return "", fmt.Errorf("plan item %s: unknown target kind %q", it.Action, it.Target.Kind)
		}); err != nil {
			return err
		}
		// Containers at once (force-removal kills without a stop timeout,
		// so the time is the Engine's removal of their layers), then the rest.
		errs := make([]error, len(items))
		var wg sync.WaitGroup
		for i, it := range items {
			if it.Target.Kind == approval.TargetContainer {
				wg.Go(func() { errs[i] = e.Remove(ctx, it.Target.ID) })
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		removed := 0
		for _, it := range items {
			t := it.Target
			switch t.Kind {
			case approval.TargetContainer:
			case approval.TargetProcess:
				if _, err := d.conn.run(ctx, n, fmt.Sprintf("kill %d", t.PID), sshx.WithSudo()); err != nil {
					return fmt.Errorf("kill %d (%s): %w", t.PID, t.Command, err)
				}
			case approval.TargetDirectory:
				if _, err := d.conn.run(ctx, n, "rm -rf -- "+sshx.Quote(t.Path), sshx.WithSudo()); err != nil {
					return fmt.Errorf("remove %s: %w", t.Path, err)
				}
			}
			removed++
		}
		mu.Lock()
		counts[n.ID()] = removed
		mu.Unlock()
		return nil
	})
	return results(nodes, err, func(n Node) string { return fmt.Sprintf("removed %d item(s)", counts[n.ID()]) }), nil
}
