package raydeploy

import (
	"context"
	"time"

	"github.com/raydeploy/sdk/internal/imagerelay"
)

// relayImage passes the image file from node to node (Options.ImageRelay)
// and returns the nodes that still need a direct side-load: those the relay
// could not reach or where the image is not there with wantID afterwards.
func (d *Deployer) relayImage(ctx context.Context, file, image, wantID string, nodes []Node) []Node {
	var hops []imagerelay.Node
	var rest []Node
	byID := map[string]Node{}
	for _, n := range nodes {
		conn, err := d.conn.ssh(ctx, n)
		if err != nil {
			rest = append(rest, n) // the direct side-load reports the error
			continue
		}
		hops = append(hops, imagerelay.Node{ID: n.ID(), Conn: conn, Address: n.Address, Port: n.Port})
		byID[n.ID()] = n
	}
	start := time.Now()
	res, err := imagerelay.Distribute(ctx, file, hops, imagerelay.Options{Logger: d.log})
	if err != nil {
		d.log.Warn("image relay failed; side-loading directly", "image", image, "err", err)
		return nodes
	}
	for _, h := range hops {
		n := byID[h.ID]
		e, err := d.conn.docker(ctx, n)
		if err == nil {
			var id string
			if id, err = e.ImageID(ctx, image); err == nil && id == wantID {
				continue
			}
		}
		rest = append(rest, n)
	}
	d.log.Info("image relayed", "image", image, "nodes", len(hops)-len(rest), "direct", len(rest),
		"skipped", res.Skipped, "controller_mib", res.ControllerBytes>>20, "took", time.Since(start).Round(time.Millisecond))
	return rest
}
