package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/raydeploy/dashboard"
)

// rayDeployment makes Ray run on every node: the image present (pulled, or
// side-loaded from the controller), Ray and Python versions equal everywhere,
// the head up with its dashboard answering, the workers joined, and the
// dashboard reporting every node ALIVE with the expected CPUs.
type rayDeployment struct{ d *Deployer }

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

// nodeRay is what the plan learned about Ray on one node.
type nodeRay struct {
	spec  dockerx.ContainerSpec
	items []checkpoint.PlanItem
}

func (c *rayDeployment) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	states, err := Fanout(ctx, d.cluster.Nodes(), FanoutOptions{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.planRayNode)
	if err != nil {
		return p, err
	}
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, states[n.ID()].items...)
	}
	if len(p.Items) > 0 {
		return p, nil
	}
	// Every container is as wanted: ask Ray whether every node is in.
	missing, err := d.nodesNotAlive(ctx, d.cluster.Nodes())
	if err != nil {
		head := d.cluster.Nodes()[0]
		p.Items = append(p.Items, checkpoint.PlanItem{Node: head.ID(), Action: actionRejoin, Detail: "restart ray-head: the dashboard does not answer (" + err.Error() + ")"})
		return p, nil
	}
	for _, n := range missing {
		p.Items = append(p.Items, checkpoint.PlanItem{Node: n.ID(), Action: actionRejoin, Detail: "restart Ray: the dashboard does not report this node ALIVE with its CPUs"})
	}
	return p, nil
}

// planRayNode compares the node's Ray container and image with the wanted ones.
func (d *Deployer) planRayNode(ctx context.Context, n Node) (nodeRay, error) {
	f, err := d.nodeFacts(ctx, n)
	if err != nil {
		return nodeRay{}, err
	}
	svc, err := d.cluster.RayService(n, f)
	if err != nil {
		return nodeRay{}, err
	}
	spec := svc.Container(d.cluster.Name)
	out := nodeRay{spec: spec}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return out, err
	}
	imageMissing, item, err := containerPlan(ctx, e, n, svc.Name, spec)
	if err != nil {
		return out, err
	}
	if imageMissing {
		out.items = append(out.items, checkpoint.PlanItem{Node: n.ID(), Action: actionImage, Detail: d.imageVerb() + " " + spec.Image})
	}
	if item.Action != "" {
		out.items = append(out.items, item)
	}
	return out, nil
}

func (d *Deployer) imageVerb() string {
	switch d.opts.Images {
	case ImagePull:
		return "pull"
	case ImageSideLoad:
		return "side-load"
	}
	return "side-load or pull"
}

func (c *rayDeployment) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	nodes := d.nodesIn(p)
	failed := map[string]error{}
	fail := func(err error) {
		var me interface{ WrappedErrors() []error }
		if errors.As(err, &me) {
			for _, e := range me.WrappedErrors() {
				var ne *NodeError
				if errors.As(e, &ne) {
					failed[ne.Node] = ne.Err // the ledger names the node and checkpoint
				}
			}
		}
	}

	// 1. Images on every node that lacks them.
	var needImage []Node
	for _, n := range nodes {
		if slices.ContainsFunc(itemsFor(p, n.ID()), func(it checkpoint.PlanItem) bool { return it.Action == actionImage }) {
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
		plan, err := d.planRayNode(ctx, n)
		if err != nil {
			return err
		}
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(itemsFor(p, n.ID()), func(it checkpoint.PlanItem) bool { return it.Action == actionRejoin }) {
			if err := e.Remove(ctx, plan.spec.Name); err != nil {
				return err
			}
		}
		res, err := e.Ensure(ctx, plan.spec)
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
	if slices.ContainsFunc(nodes, func(n Node) bool { return n.ID() == head.ID() }) && failed[head.ID()] == nil {
		if err := d.fanout(ctx, []Node{head}, c.Name(), start); err != nil {
			fail(err)
		} else if err := d.waitDashboard(ctx, dash); err != nil {
			failed[head.ID()] = &NodeError{Node: head.ID(), Op: c.Name(), Err: err}
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
		} else if slices.ContainsFunc(nodes, func(m Node) bool { return m.ID() == n.ID() }) {
			failed[n.ID()] = &NodeError{Node: n.ID(), Op: c.Name(), Err: fmt.Errorf("not ALIVE with %d CPUs in Ray's dashboard after %s", d.expectedCPUsOf(ctx, n), d.opts.ReadyTimeout)}
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

func (d *Deployer) expectedCPUsOf(ctx context.Context, n Node) int {
	f, _ := d.nodeFacts(ctx, n)
	return expectedCPUs(n, f)
}

// distributeImage gets image onto the nodes: side-loaded from the
// controller's Engine (or Options.ImageFile) over SSH, or pulled on the node.
func (d *Deployer) distributeImage(ctx context.Context, image string, nodes []Node) error {
	file, wantID, cleanup, err := d.controllerImage(ctx, image)
	if err != nil {
		return err
	}
	defer cleanup()
	var size int64
	if fi, err := os.Stat(file); err == nil {
		size = fi.Size()
	}
	return d.fanout(ctx, nodes, "image", func(ctx context.Context, n Node) error {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		if file == "" {
			return e.Pull(ctx, image, nil)
		}
		sent, finish := d.transferProgress(ctx, n.ID(), image, size)
		err = dockerx.SideLoad(ctx, file, image, wantID, e, func(_ string, n int64) { sent.Store(n) })
		finish(err)
		return err
	})
}

// controllerImage returns a docker-save file of image and its ID when the
// image is to be side-loaded, or "" when nodes pull it.
func (d *Deployer) controllerImage(ctx context.Context, image string) (file, id string, cleanup func(), err error) {
	cleanup = func() {}
	if d.opts.Images == ImagePull {
		return "", "", cleanup, nil
	}
	if d.opts.ImageFile != "" {
		id, err := dockerx.TarImageID(d.opts.ImageFile, image)
		if err != nil {
			return "", "", cleanup, fmt.Errorf("image file %s: %w", d.opts.ImageFile, err)
		}
		return d.opts.ImageFile, id, cleanup, nil
	}
	local, err := dockerx.New(dockerx.Options{Node: "controller", Logger: d.log})
	if err != nil {
		return "", "", cleanup, err
	}
	defer local.Close()
	if _, err := local.Ping(ctx); err != nil || func() bool { _, err := local.ImageID(ctx, image); return err != nil }() {
		if d.opts.Images == ImageSideLoad {
			return "", "", cleanup, fmt.Errorf("side-load %s: the controller's Docker Engine does not have it (docker pull or docker load it there first)", image)
		}
		return "", "", cleanup, nil // auto: the nodes pull
	}
	dir, err := os.MkdirTemp("", "raydeploy-image-")
	if err != nil {
		return "", "", cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	file, id, err = local.SaveToFile(ctx, image, dir)
	if err != nil {
		cleanup()
		return "", "", func() {}, err
	}
	return file, id, cleanup, nil
}

// checkVersions asks each distinct image ID on the nodes for its Ray and
// Python versions and refuses to go on unless they are the same everywhere.
func (d *Deployer) checkVersions(ctx context.Context, nodes []Node, skip map[string]error) (string, error) {
	image := d.cluster.Ray.Image
	ids, err := Fanout(ctx, nodes, FanoutOptions{Concurrency: d.opts.Concurrency, Op: "image"}, func(ctx context.Context, n Node) (string, error) {
		if skip[n.ID()] != nil {
			return "", nil
		}
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return "", err
		}
		id, err := e.ImageID(ctx, image)
		if errors.Is(err, dockerx.ErrNotFound) {
			return "", nil
		}
		return id, err
	})
	if err != nil && len(ids) == 0 {
		return "", err
	}
	byID := map[string][]string{}
	probe := map[string]Node{}
	for _, n := range nodes {
		if id := ids[n.ID()]; id != "" {
			byID[id] = append(byID[id], n.ID())
			probe[id] = n
		}
	}
	versions := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		v, err := d.imageVersions(ctx, probe[id], image, id)
		if err != nil {
			return "", err
		}
		versions[id] = v
	}
	distinct := map[string][]string{}
	for id, v := range versions {
		distinct[v] = append(distinct[v], byID[id]...)
	}
	if len(distinct) > 1 {
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(distinct)) {
			ns := distinct[v]
			slices.Sort(ns)
			parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(ns, ", ")))
		}
		return "", &VersionMismatchError{Image: image, Detail: strings.Join(parts, "; ")}
	}
	for v := range distinct {
		return v, nil
	}
	return "", nil
}

// VersionMismatchError reports nodes whose Ray image carries another Ray or
// Python version than the others: Ray refuses to mix them, so nothing starts.
type VersionMismatchError struct {
	Image  string
	Detail string
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("Ray and Python versions differ between nodes for image %s: %s; make every node hold the same image (docker rmi it on the odd nodes and re-run)", e.Image, e.Detail)
}

// imageVersions runs `ray --version` and `python --version` in the image,
// once per image ID for the Deployer's life.
func (d *Deployer) imageVersions(ctx context.Context, n Node, image, id string) (string, error) {
	d.mu.Lock()
	if d.versions == nil {
		d.versions = map[string]string{}
	}
	v, ok := d.versions[id]
	d.mu.Unlock()
	if ok {
		return v, nil
	}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return "", err
	}
	out, code, err := e.RunOnce(ctx, id, []string{"sh", "-c", "ray --version; python --version 2>&1 || python3 --version 2>&1"})
	if err != nil {
		return "", nodeErr(n, "version check", err)
	}
	if code != 0 {
		return "", nodeErr(n, "version check", fmt.Errorf("ray --version in %s exited %d: %s", image, code, strings.TrimSpace(out)))
	}
	var ray, py string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "ray, version "); ok {
			ray = strings.Fields(rest)[0]
		}
		if rest, ok := strings.CutPrefix(line, "Python "); ok {
			py = rest
		}
	}
	if ray == "" || py == "" {
		return "", nodeErr(n, "version check", fmt.Errorf("could not read Ray and Python versions from %s: %q", image, out))
	}
	v = "Ray " + ray + ", Python " + py
	d.mu.Lock()
	d.versions[id] = v
	d.mu.Unlock()
	return v, nil
}

// waitDashboard polls the head's dashboard until the GCS is healthy.
func (d *Deployer) waitDashboard(ctx context.Context, dash *dashboard.Client) error {
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
func (d *Deployer) aliveNodes(ctx context.Context, dash *dashboard.Client, nodes []Node) (map[string]dashboard.Node, error) {
	rayNodes, err := dash.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]dashboard.Node{}
	for _, n := range nodes {
		want := d.expectedCPUsOf(ctx, n)
		for _, rn := range rayNodes {
			if rn.Alive() && rn.IP == n.Address && int(rn.CPUs()) == want {
				out[n.ID()] = rn
			}
		}
	}
	return out, nil
}

// waitAlive polls the dashboard until every node is ALIVE, or the ready
// timeout passes; it returns the nodes that made it.
func (d *Deployer) waitAlive(parent context.Context, dash *dashboard.Client, nodes []Node) (map[string]dashboard.Node, error) {
	ctx, cancel := context.WithTimeout(parent, d.opts.ReadyTimeout)
	defer cancel()
	var alive map[string]dashboard.Node
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
