package raydeploy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/raydeploy/sdk/internal/dockerx"
)

// ObservedContainer is a container of this cluster as a node's Docker Engine
// lists it.
type ObservedContainer struct {
	Name  string `json:"name"`  // the container's name
	Image string `json:"image"` // the reference it was created from
	State string `json:"state"` // running, exited, created, ...
}

// Containers lists the containers of this cluster on the named node (those
// carrying the cluster's ownership label: Ray's and the monitoring stack's),
// running or not. It asks the node's Docker Engine over the Deployer's SSH
// connection to that node, dialing it on first use and reusing it after.
func (d *Deployer) Containers(ctx context.Context, node string) ([]ObservedContainer, error) {
	n, err := d.nodeNamed(node)
	if err != nil {
		return nil, err
	}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return nil, err
	}
	list, err := e.List(ctx, dockerx.ListFilter{Labels: []string{dockerx.LabelCluster + "=" + d.cluster.Name}})
	if err != nil {
		return nil, nodeErr(n, "list containers", err)
	}
	out := make([]ObservedContainer, 0, len(list))
	for _, c := range list {
		out = append(out, ObservedContainer{Name: c.Name, Image: c.Image, State: c.State})
	}
	return out, nil
}

// NodeHTTPClient returns an HTTP client whose connections go through the
// Deployer's SSH connection to the named node: "127.0.0.1" or "localhost" in
// a URL is that node, so only SSH needs to be reachable from here (used to
// read the head's Prometheus, Grafana or Ray dashboard). Each request times
// out after timeout (0: no limit).
func (d *Deployer) NodeHTTPClient(node string, timeout time.Duration) (*http.Client, error) {
	n, err := d.nodeNamed(node)
	if err != nil {
		return nil, err
	}
	return d.conn.httpClient(n, timeout), nil
}

// nodeNamed finds a node of the cluster by its ID.
func (d *Deployer) nodeNamed(node string) (Node, error) {
	for _, n := range d.cluster.Nodes() {
		if n.ID() == node {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("raydeploy: no node named %q in cluster %s", node, d.cluster.Name)
}
