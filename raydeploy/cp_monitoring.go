package raydeploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/service"
)

// monitoringDeployment runs the monitoring stack: node-exporter and cAdvisor
// on every node, Prometheus and Grafana on the head, with their directories,
// Prometheus' configuration and Grafana's provisioning generated from the
// cluster. A changed configuration is uploaded and Prometheus reloads it in
// place (same container, same data).
type monitoringDeployment struct {
	d       *Deployer
	planned typedPlan[nodeMonitoring]
}

func (c *monitoringDeployment) Name() string { return CheckpointMonitoring }
func (c *monitoringDeployment) Description() string {
	return "Start node-exporter and cAdvisor on every node, Prometheus and Grafana on the head"
}
func (c *monitoringDeployment) NeedsApproval() bool { return false }
func (c *monitoringDeployment) Destructive() bool   { return false }

// Monitoring plan actions, besides the image and container actions of
// ray-deployment.
const (
	actionDir  = "directory"
	actionFile = "file"
)

// fileUploads bounds the uploads of monitoring files to one node at once
// (sshd's MaxSessions is 10 by default).
const fileUploads = 4

// healthPoll is the interval between health probes.
const healthPoll = 250 * time.Millisecond

// newMonitoringDeployment checks the stack against the cluster.
func newMonitoringDeployment(d *Deployer) (*monitoringDeployment, error) {
	if err := d.stack().Validate(); err != nil {
		return nil, err
	}
	if err := monitoring.ValidateTargets(d.monitoringTargets()); err != nil {
		return nil, fmt.Errorf("monitoring: %w", err)
	}
	return &monitoringDeployment{d: d}, nil
}

// monService is one service of the stack on one node.
type monService struct {
	svc service.Spec
	containerPlan
}

// nodeMonitoring is what the plan learned about the stack on one node.
type nodeMonitoring struct {
	services []monService
	images   []string          // missing images
	dirs     []monitoring.Dir  // missing, or with another owner or mode (UID -1: only existence matters)
	files    []monitoring.File // absent or different
	// fileWas is the SHA-256 each of files had when planned ("" absent):
	// Run refuses the node if one changed since. Kept here, not in the
	// items' targets, so that a secret file's digest is never shown.
	fileWas []string
	items   []checkpoint.PlanItem
}

func (c *monitoringDeployment) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	states, err := fanMap(ctx, d, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.planMonitoringNode)
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, states[n.ID()].items...)
	}
	c.planned.keep(p, states)
	return p, err // on failure, the nodes planned so far are in p
}

// planMonitoringNode compares the node's monitoring containers, images,
// directories and (on the head) files with the wanted ones.
func (d *Deployer) planMonitoringNode(ctx context.Context, n Node) (nodeMonitoring, error) {
	s := d.stack()
	cluster := d.cluster.Name
	targets := d.monitoringTargets()
	var out nodeMonitoring
	item := func(action, detail string, t *approval.Target) {
		out.items = append(out.items, checkpoint.PlanItem{Node: n.ID(), Action: action, Detail: detail, Target: t})
	}
	role := "worker"
	if n.Role == RoleHead {
		role = "head"
	}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return out, err
	}

	// Containers and images.
	var binds []string
	for _, svc := range s.Services(cluster, targets) {
		if !svc.Placement.Matches(n.ID(), role) {
			continue
		}
		spec := dockerx.FromService(svc, cluster)
		for _, m := range svc.Mounts {
			if m.Type == "bind" && !slices.Contains(binds, m.Source) {
				binds = append(binds, m.Source)
			}
		}
		cp, err := d.planContainer(ctx, e, n, svc.Name, spec)
		if err != nil {
			return out, err
		}
		if cp.image != nil && !slices.Contains(out.images, spec.Image) {
			out.images = append(out.images, spec.Image)
			out.items = append(out.items, *cp.image)
		}
		if cp.item != nil {
			out.items = append(out.items, *cp.item)
		}
		out.services = append(out.services, monService{svc: svc, containerPlan: cp})
	}

	// Directories: the head's data dirs, and every bind-mount source (Docker
	// refuses a bind mount of a missing path).
	var dirs []monitoring.Dir
	var files []monitoring.File
	if n.Role == RoleHead {
		dirs = s.Dirs(cluster)
		password, _, err := s.AdminPassword(d.cluster.StateDir)
		if err != nil {
			return out, fmt.Errorf("grafana admin password: %w", err)
		}
		ray, err := d.rayDashboards(ctx, n, s)
		if err != nil {
			d.log.Warn("Ray's Grafana dashboards not provisioned", "node", n.ID(), "err", err)
		}
		if files, err = s.HeadFiles(cluster, targets, password, ray); err != nil {
			return out, err
		}
	}
	// Parents of provisioning files in subdirectories, parents first.
	var parents []string
	for _, f := range files {
		for p := path.Dir(f.Path); !slices.ContainsFunc(dirs, func(d monitoring.Dir) bool { return d.Path == p }) && !slices.Contains(parents, p) && p != "/"; p = path.Dir(p) {
			parents = append(parents, p)
		}
	}
	slices.Sort(parents) // a parent sorts before its children
	for _, p := range parents {
		dirs = append(dirs, monitoring.Dir{Path: p, Mode: 0o755, UID: 0})
	}
	for _, b := range binds {
		if !slices.ContainsFunc(dirs, func(d monitoring.Dir) bool { return d.Path == b }) {
			dirs = append(dirs, monitoring.Dir{Path: b, UID: -1})
		}
	}
	state, err := d.pathState(ctx, n, dirs, files)
	if err != nil {
		return out, err
	}
	for i, dir := range dirs {
		got := state["D"+strconv.Itoa(i)]
		t := &approval.Target{Kind: approval.TargetDirectory, Path: dir.Path}
		if dir.UID >= 0 {
			t.UID, t.Mode = new(dir.UID), uint32(dir.Mode)
		}
		switch {
		case got == nil:
			item(actionDir, "create directory "+dir.Path, t)
		case dir.UID >= 0 && (got[0] != strconv.Itoa(dir.UID) || got[1] != strconv.FormatUint(uint64(dir.Mode), 8)):
			item(actionDir, fmt.Sprintf("set %s to owner %d, mode %04o", dir.Path, dir.UID, dir.Mode), t)
		default:
			continue
		}
		out.dirs = append(out.dirs, dir)
	}
	for i, f := range files {
		got := state["F"+strconv.Itoa(i)]
		want := monitoring.ConfigDigest(f.Data)
		t := &approval.Target{Kind: approval.TargetFile, Path: f.Path, UID: new(f.UID), Mode: uint32(f.Mode)}
		was := ""
		if got != nil {
			was = got[0]
		}
		if !f.Secret { // a secret's digest is not shown (Run still checks it)
			t.SHA256, t.Want = was, want
		}
		switch {
		case got == nil:
			item(actionFile, "write "+f.Path+secretNote(f), t)
		case got[0] != want:
			detail := "update " + f.Path + secretNote(f)
			if path.Base(f.Path) == monitoring.PrometheusConfigFile {
				detail += " and reload Prometheus"
			}
			item(actionFile, detail, t)
		case got[1] != strconv.Itoa(f.UID) || got[2] != strconv.FormatUint(uint64(f.Mode), 8):
			item(actionFile, fmt.Sprintf("set %s to owner %d, mode %04o", f.Path, f.UID, f.Mode), t)
		default:
			continue
		}
		out.files = append(out.files, f)
		out.fileWas = append(out.fileWas, was)
	}
	return out, nil
}

func (c *monitoringDeployment) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	states, err := c.planned.take(p)
	if err != nil {
		return nil, err
	}
	nodes := d.nodesIn(p)
	failed := map[string]error{}
	fail := func(err error) { markFailed(failed, err) }

	// 1. Images, each side-loaded or pulled onto the nodes that lack it.
	byImage := map[string][]Node{}
	for _, n := range nodes {
		if failed[n.ID()] != nil {
			continue
		}
		for _, img := range states[n.ID()].images {
			byImage[img] = append(byImage[img], n)
		}
	}
	// The images are independent: they are saved and sent at once, so the
	// stack waits for its largest image, not for the sum of all of them.
	imgs := slices.Sorted(maps.Keys(byImage))
	imgErrs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgErrs[i] = d.distributeImage(ctx, img, byImage[img])
		}()
	}
	wg.Wait()
	for _, err := range imgErrs {
		if err != nil {
			fail(err)
			if !errIsNodeErrorList(err) {
				return nil, err
			}
		}
	}

	// 2. Directories, files, containers and health, every node in parallel.
	var ready []Node
	for _, n := range nodes {
		if failed[n.ID()] == nil {
			ready = append(ready, n)
		}
	}
	summaries, err := fanMap(ctx, d, ready, fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name(), Logger: d.log}, func(ctx context.Context, n Node) (string, error) {
		return d.runMonitoringNode(ctx, n, states[n.ID()])
	})
	fail(err)
	return resultsWith(nodes, failed, summaries), nil
}

// errIsNodeErrorList reports whether err is a fan-out error naming nodes.
func errIsNodeErrorList(err error) bool {
	return len(checkpoint.FailedNodes(err)) > 0
}

// runMonitoringNode brings one node's part of the stack to the planned state
// and returns its summary.
func (d *Deployer) runMonitoringNode(ctx context.Context, n Node, st nodeMonitoring) (string, error) {
	s := d.stack()
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return "", err
	}
	if err := d.monitoringStale(ctx, n, e, st); err != nil {
		return "", err
	}
	var done []string
	if len(st.dirs) > 0 {
		var b strings.Builder
		for _, dir := range st.dirs {
			q := sshx.Quote(dir.Path)
			fmt.Fprintf(&b, "mkdir -p %s", q)
			if dir.UID >= 0 {
				fmt.Fprintf(&b, " && chown %d:%d %s && chmod %04o %s", dir.UID, dir.UID, q, dir.Mode, q)
			}
			b.WriteString(" &&\n")
		}
		b.WriteString("true\n")
		if _, err := d.conn.run(ctx, n, b.String(), sshx.WithSudo(), sshx.WithDisplay("create monitoring directories")); err != nil {
			return "", fmt.Errorf("create directories: %w", err)
		}
		done = append(done, fmt.Sprintf("%d directories", len(st.dirs)))
	}
	reload := false
	if len(st.files) > 0 {
		conn, err := d.conn.ssh(ctx, n)
		if err != nil {
			return "", err
		}
		// A few uploads at once over the node's one connection (each is two
		// round trips of its own: the upload, then a sudo install).
		errs := make([]error, len(st.files))
		sem := make(chan struct{}, fileUploads)
		var wg sync.WaitGroup
		for i, f := range st.files {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				owner := fmt.Sprintf("%d:%d", f.UID, f.UID)
				if err := conn.Upload(ctx, bytes.NewReader(f.Data), f.Path, os.FileMode(f.Mode), owner, sshx.WithSudo()); err != nil {
					errs[i] = fmt.Errorf("write %s: %w", f.Path, err)
					return
				}
				d.log.Info("monitoring file written", "node", n.ID(), "file", f)
			}()
			if path.Base(f.Path) == monitoring.PrometheusConfigFile {
				reload = true
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		done = append(done, fmt.Sprintf("%d files", len(st.files)))
	}

	var healthy []string
	for _, ms := range st.services {
		res, err := d.ensurePlanned(ctx, e, n, ms.containerPlan)
		if err != nil {
			return "", err
		}
		d.log.Info("monitoring container", "node", n.ID(), "service", ms.svc.Name, "action", res.Action, "id", shortID(res.ID))
		if res.Action != dockerx.Unchanged {
			done = append(done, string(res.Action)+" "+ms.svc.Name)
		}
		if ms.svc.Name == monitoring.ServicePrometheus && res.Action != dockerx.Unchanged {
			reload = false // a new or restarted Prometheus reads the new file at start
		}
	}
	for _, ms := range st.services {
		if err := d.waitServiceHealthy(ctx, n, e, ms); err != nil {
			return "", err
		}
		healthy = append(healthy, ms.svc.Name)
	}
	if n.Role == RoleHead {
		client := d.conn.httpClient(n, 15*time.Second)
		base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.PrometheusPort))
		if reload {
			if err := monitoring.Reload(ctx, client, base); err != nil {
				return "", err
			}
			d.log.Info("prometheus reloaded its configuration", "node", n.ID())
			done = append(done, "Prometheus reloaded")
		}
		up, err := d.waitTargetsUp(ctx, client, base, reload)
		if err != nil {
			return "", err
		}
		healthy = append(healthy, fmt.Sprintf("%d Prometheus targets up", up))
	}
	summary := "healthy: " + strings.Join(healthy, ", ")
	if len(done) > 0 {
		summary += " (" + strings.Join(done, ", ") + ")"
	}
	return summary, nil
}

// monitoringStale returns a *checkpoint.StaleError when a container or file
// of the node's plan changed since planning; nothing is touched then.
func (d *Deployer) monitoringStale(ctx context.Context, n Node, e *dockerx.Engine, st nodeMonitoring) error {
	for _, ms := range st.services {
		changed, err := containerChanged(ctx, e, ms.found)
		if err != nil {
			return err
		}
		if changed != "" {
			it := checkpoint.PlanItem{Node: n.ID(), Action: "ensure", Detail: ms.spec.Name, Target: ms.found}
			if ms.item != nil {
				it = *ms.item
			}
			return &checkpoint.StaleError{Node: n.ID(), Item: it, Changed: changed}
		}
	}
	if len(st.files) == 0 {
		return nil
	}
	now, err := d.pathState(ctx, n, nil, st.files)
	if err != nil {
		return err
	}
	for i, f := range st.files {
		got := ""
		if v := now["F"+strconv.Itoa(i)]; v != nil {
			got = v[0]
		}
		if got != st.fileWas[i] {
			it := checkpoint.PlanItem{Node: n.ID(), Action: actionFile, Detail: f.Path, Target: &approval.Target{Kind: approval.TargetFile, Path: f.Path}}
			return &checkpoint.StaleError{Node: n.ID(), Item: it, Changed: f.Path + " changed on the node since planning"}
		}
	}
	return nil
}
