package raydeploy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

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
type cleanupExisting struct{ d *Deployer }

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
	echo "$p $(cat /proc/$p/comm 2>/dev/null)"
done | sort -u
[ -d /tmp/ray ] && echo "dir /tmp/ray"
true`

func (c *cleanupExisting) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	items, err := fanout.Map(ctx, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.cleanupItems)
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, items[n.ID()]...)
	}
	if err != nil {
		return p, err // the nodes planned so far are in p
	}
	return p, nil
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
		items = append(items, checkpoint.PlanItem{
			Node: n.ID(), Action: actionRemoveContainer,
			Detail: fmt.Sprintf("%s %s (image %s, %s): %s", ct.Name, shortID(ct.ID), ct.Image, ct.State, reason),
		})
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
				items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionRemoveDir, Detail: f[1] + " (Ray session files of an earlier install)"})
			}
		case len(f) >= 1 && f[0] != "":
			if _, err := strconv.Atoi(f[0]); err == nil {
				items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionKillProcess, Detail: line + " (Ray outside a container)"})
			}
		}
	}
	return items, nil
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
	d := c.d
	nodes := d.nodesIn(p)
	counts := map[string]int{}
	var mu sync.Mutex
	err := d.fanout(ctx, nodes, c.Name(), func(ctx context.Context, n Node) error {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		removed := 0
		for _, it := range itemsFor(p, n.ID()) {
			first := strings.Fields(it.Detail)
			switch it.Action {
			case actionRemoveContainer:
				if len(first) < 2 {
					return fmt.Errorf("bad plan item %q", it.Detail)
				}
				if err := e.Remove(ctx, first[1]); err != nil {
					return err
				}
			case actionKillProcess:
				if _, err := d.conn.run(ctx, n, "kill "+sshx.Quote(first[0]), sshx.WithSudo()); err != nil {
					return fmt.Errorf("kill %s: %w", it.Detail, err)
				}
			case actionRemoveDir:
				if _, err := d.conn.run(ctx, n, "rm -rf -- "+sshx.Quote(first[0]), sshx.WithSudo()); err != nil {
					return fmt.Errorf("remove %s: %w", first[0], err)
				}
			default:
				return fmt.Errorf("unknown plan action %q", it.Action)
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
