package raydeploy

import (
	"context"
	"fmt"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/sshx"
)

// rayDeployment makes Ray run on every node: the image present (pulled, or
// side-loaded from the controller), Ray and Python versions equal everywhere,
// the head up with its dashboard answering, the workers joined, and the
// dashboard reporting every node ALIVE with the expected CPUs.
type rayDeployment struct {
	d       *Deployer
	planned typedPlan[containerPlan] // by node: Ray's container and image
}

func (c *rayDeployment) Name() string { return CheckpointRay }
func (c *rayDeployment) Description() string {
	return "Start the Ray head and workers and wait until every node is ALIVE"
}
func (c *rayDeployment) NeedsApproval() bool { return false }
func (c *rayDeployment) Destructive() bool   { return false }

// Ray deployment plan actions.
const (
	actionImage   = "image"
	actionCreate  = "create"
	actionReplace = "replace"
	actionStart   = "start"
	actionRejoin  = "rejoin"
)

func (c *rayDeployment) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	states, err := fanMap(ctx, d, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.planRayNode)
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, states[n.ID()].items()...)
	}
	if err == nil && len(p.Items) == 0 {
		// Every container is as wanted: ask Ray whether every node is in.
		rejoin := func(n Node, detail string) {
			cp := states[n.ID()]
			cp.item = &checkpoint.PlanItem{Node: n.ID(), Action: actionRejoin, Detail: detail, Target: cp.found}
			states[n.ID()] = cp
			p.Items = append(p.Items, *cp.item)
		}
		missing, err := d.nodesNotAlive(ctx, d.cluster.Nodes())
		if err != nil {
			rejoin(d.cluster.Nodes()[0], "restart ray-head: the dashboard does not answer ("+err.Error()+")")
		}
		for _, n := range missing {
			rejoin(n, "restart Ray: the dashboard does not report this node ALIVE with its CPUs")
		}
	}
	c.planned.keep(p, states)
	return p, err // on failure, the nodes planned so far are in p
}

// planRayNode compares the node's Ray container and image with the wanted ones.
func (d *Deployer) planRayNode(ctx context.Context, n Node) (containerPlan, error) {
	f, err := d.nodeFacts(ctx, n)
	if err != nil {
		return containerPlan{}, err
	}
	svc, err := d.cluster.RayService(n, f)
	if err != nil {
		return containerPlan{}, err
	}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return containerPlan{}, err
	}
	return d.planContainer(ctx, e, n, svc.Name, dockerx.FromService(svc, d.cluster.Name))
}

func (c *rayDeployment) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	planned, err := c.planned.take(p)
	if err != nil {
		return nil, err
	}
	var nodes []Node
	inPlan := map[string]bool{}
	for _, n := range d.cluster.Nodes() {
		if cp := planned[n.ID()]; cp.image != nil || cp.item != nil {
			nodes = append(nodes, n)
			inPlan[n.ID()] = true
		}
	}
	failed := map[string]error{}
	fail := func(err error) { markFailed(failed, err) }

	// 1. Images on every node that lacks them.
	var needImage []Node
	for _, n := range nodes {
		if planned[n.ID()].image != nil {
			needImage = append(needImage, n)
		}
	}
	if len(needImage) > 0 {
		if err := d.distributeImage(ctx, d.cluster.Ray.Image, needImage); err != nil {
			fail(err)
			if len(failed) == 0 {
				return nil, err
			}
		}
	}

	// 2. Ray and Python versions equal on every node, before anything starts.
	versions, err := d.checkVersions(ctx, d.cluster.Nodes(), failed)
	if err != nil {
		return nil, err
	}

	// 3. The head first, then the workers in parallel.
	start := func(ctx context.Context, n Node) error {
		if _, err := d.conn.run(ctx, n, "mkdir -p "+rayTempDir, sshx.WithSudo()); err != nil {
			return fmt.Errorf("create %s: %w", rayTempDir, err)
		}
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		res, err := d.ensurePlanned(ctx, e, n, planned[n.ID()])
		if err != nil {
			return err
		}
		d.log.Info("ray container", "node", n.ID(), "action", res.Action, "id", shortID(res.ID))
		return nil
	}
	head := d.cluster.Nodes()[0]
	dash, err := d.dashboardClient()
	if err != nil {
		return nil, err
	}
	if inPlan[head.ID()] && failed[head.ID()] == nil {
		if err := d.fanout(ctx, []Node{head}, c.Name(), start); err != nil {
			fail(err)
		} else if err := d.waitDashboard(ctx, dash); err != nil {
			failed[head.ID()] = &checkpoint.NodeError{Node: head.ID(), Op: c.Name(), Err: err}
		}
		if failed[head.ID()] != nil {
			for _, n := range nodes {
				if failed[n.ID()] == nil {
					failed[n.ID()] = fmt.Errorf("not started: the head %s failed", head.ID())
				}
			}
			return resultsWith(nodes, failed, nil), nil
		}
	}
	var workers []Node
	for _, n := range nodes {
		if n.ID() != head.ID() && failed[n.ID()] == nil {
			workers = append(workers, n)
		}
	}
	fail(d.fanout(ctx, workers, c.Name(), start))

	// 4. Ray reports every node that did not fail ALIVE with its CPUs.
	var waitFor []Node
	for _, n := range d.cluster.Nodes() {
		if failed[n.ID()] == nil {
			waitFor = append(waitFor, n)
		}
	}
	alive, err := d.waitAlive(ctx, dash, waitFor)
	if err != nil {
		return nil, err
	}
	summary := map[string]string{}
	for _, n := range waitFor {
		if a, ok := alive[n.ID()]; ok {
			summary[n.ID()] = fmt.Sprintf("ALIVE with %g CPUs, %s", a.CPUs(), versions)
		} else if inPlan[n.ID()] {
			failed[n.ID()] = &checkpoint.NodeError{Node: n.ID(), Op: c.Name(), Err: fmt.Errorf("not ALIVE with %d CPUs in Ray's dashboard after %s", d.expectedCPUsOf(ctx, n), d.opts.ReadyTimeout)}
		}
	}
	return resultsWith(nodes, failed, summary), nil
}

// resultsWith builds one result per node from failures and summaries.
func resultsWith(nodes []Node, failed map[string]error, summary map[string]string) []checkpoint.NodeResult {
	out := make([]checkpoint.NodeResult, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, checkpoint.NodeResult{Node: n.ID(), Err: failed[n.ID()], Summary: summary[n.ID()]})
	}
	return out
}
