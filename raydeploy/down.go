package raydeploy

import (
	"context"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
)

// down removes every container that carries this cluster's label, on every
// node. Nothing else is touched: images, /tmp/ray and other containers stay.
type down struct {
	d       *Deployer
	planned typedPlan[[]checkpoint.PlanItem]
}

func (c *down) Name() string        { return "down" }
func (c *down) Description() string { return "Remove every container of this cluster from every node" }
func (c *down) NeedsApproval() bool { return true }
func (c *down) Destructive() bool   { return true }

// Risks are shown to the approver.
func (c *down) Risks() []string {
	return []string{
		"the Ray cluster stops: running jobs, actors and Serve applications are killed, there is no undo",
		"the listed containers are removed with their anonymous volumes",
	}
}

func (c *down) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	owned, err := fanMap(ctx, d, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: "down plan"}, func(ctx context.Context, n Node) ([]dockerx.Container, error) {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return nil, err
		}
		return e.List(ctx, dockerx.ListFilter{Labels: []string{dockerx.LabelCluster + "=" + d.cluster.Name}})
	})
	items := map[string][]checkpoint.PlanItem{}
	for _, n := range d.cluster.Nodes() {
		for _, ct := range owned[n.ID()] {
			items[n.ID()] = append(items[n.ID()], removeContainerItem(n, ct, ""))
		}
		p.Items = append(p.Items, items[n.ID()]...)
	}
	c.planned.keep(p, items)
	return p, err // on failure, the nodes planned so far are in p
}

// Run removes exactly the planned containers, by ID, on nodes where none
// was replaced since planning; see Deployer.removePlanned.
func (c *down) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	planned, err := c.planned.take(p)
	if err != nil {
		return nil, err
	}
	return c.d.removePlanned(ctx, c.Name(), planned)
}
