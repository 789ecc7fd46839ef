package raydeploy

import (
	"context"
	"fmt"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

func (d *Deployer) expectedCPUsOf(ctx context.Context, n Node) int {
	f, _ := d.nodeFacts(ctx, n)
	return expectedCPUs(n, f)
}

// waitDashboard polls the head's dashboard until the GCS is healthy.
func (d *Deployer) waitDashboard(ctx context.Context, dash *raydash.Client) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.ReadyTimeout)
	defer cancel()
	var last error
	for {
		if last = dash.GCSHealthy(ctx); last == nil {
			if _, last = dash.Version(ctx); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Ray dashboard not healthy after %s: %w", d.opts.ReadyTimeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodesNotAlive returns the nodes the dashboard does not report ALIVE with
// their expected CPUs.
func (d *Deployer) nodesNotAlive(ctx context.Context, nodes []Node) ([]Node, error) {
	dash, err := d.dashboardClient()
	if err != nil {
		return nil, err
	}
	alive, err := d.aliveNodes(ctx, dash, nodes)
	if err != nil {
		return nil, err
	}
	var missing []Node
	for _, n := range nodes {
		if _, ok := alive[n.ID()]; !ok {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// aliveNodes maps node IDs to their ALIVE Ray node with the expected CPUs.
func (d *Deployer) aliveNodes(ctx context.Context, dash *raydash.Client, nodes []Node) (map[string]raydash.Node, error) {
	rayNodes, err := dash.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	// By IP, so that a poll costs O(nodes), not O(nodes²).
	byIP := make(map[string][]raydash.Node, len(rayNodes))
	for _, rn := range rayNodes {
		if rn.Alive() {
			byIP[rn.IP] = append(byIP[rn.IP], rn)
		}
	}
	out := map[string]raydash.Node{}
	for _, n := range nodes {
		want := d.expectedCPUsOf(ctx, n)
		for _, rn := range byIP[n.Address] {
			if int(rn.CPUs()) == want {
				out[n.ID()] = rn
			}
		}
	}
	return out, nil
}

// waitAlive polls the dashboard until every node is ALIVE, or the ready
// timeout passes; it returns the nodes that made it.
func (d *Deployer) waitAlive(parent context.Context, dash *raydash.Client, nodes []Node) (map[string]raydash.Node, error) {
	ctx, cancel := context.WithTimeout(parent, d.opts.ReadyTimeout)
	defer cancel()
	var alive map[string]raydash.Node
	for {
		if a, err := d.aliveNodes(ctx, dash, nodes); err == nil {
			alive = a
			if len(alive) == len(nodes) {
				return alive, nil
			}
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return nil, err
			}
			return alive, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}
