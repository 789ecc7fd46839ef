package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
)

// down removes every container that carries this cluster's label, on every
// node. Nothing else is touched: images, /tmp/ray and other containers stay.
type down struct{ d *Deployer }

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
	owned, err := fanout.Map(ctx, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: "down plan"}, func(ctx context.Context, n Node) ([]dockerx.Container, error) {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return nil, err
		}
		return e.List(ctx, dockerx.ListFilter{Labels: []string{dockerx.LabelCluster + "=" + d.cluster.Name}})
	})
	if err != nil {
		return p, err
	}
	for _, n := range d.cluster.Nodes() {
		for _, ct := range owned[n.ID()] {
			p.Items = append(p.Items, checkpoint.PlanItem{Node: n.ID(), Action: actionRemoveContainer,
				Detail: fmt.Sprintf("%s %s (image %s, %s)", ct.Name, shortID(ct.ID), ct.Image, ct.State)})
		}
	}
	return p, nil
}

// Run removes the planned containers, every node's at once and a node's
// containers in parallel: force-removal kills without a stop timeout, so the
// time is the Engine's removal of the containers' layers.
func (c *down) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	nodes := d.nodesIn(p)
	var mu sync.Mutex
	counts := map[string]int{}
	err := d.fanout(ctx, nodes, c.Name(), func(ctx context.Context, n Node) error {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		items := itemsFor(p, n.ID())
		errs := make([]error, len(items))
		var wg sync.WaitGroup
		for i, it := range items {
			f := strings.Fields(it.Detail)
			if it.Action != actionRemoveContainer || len(f) < 2 {
				return fmt.Errorf("bad plan item %s %q", it.Action, it.Detail)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = e.Remove(ctx, f[1])
			}()
		}
		wg.Wait()
		mu.Lock()
		counts[n.ID()] = len(items)
		mu.Unlock()
		return errors.Join(errs...)
	})
	return results(nodes, err, func(n Node) string { return fmt.Sprintf("removed %d item(s)", counts[n.ID()]) }), nil
}
