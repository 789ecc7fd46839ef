package raydeploy

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy/service"
)

// monitoringDeployment runs the monitoring stack: node-exporter and cAdvisor
// on every node, Prometheus and Grafana on the head, with their directories,
// Prometheus' configuration and Grafana's provisioning generated from the
// cluster. A changed configuration is uploaded and Prometheus reloads it in
// place (same container, same data).
type monitoringDeployment struct{ d *Deployer }

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

// stack is the monitoring stack with defaults; Ray's metrics port and temp
// dir come from the cluster unless the stack sets them.
func (d *Deployer) stack() monitoring.Stack {
	var s monitoring.Stack
	if d.opts.Monitoring != nil {
		s = *d.opts.Monitoring
	} else {
		m := d.cluster.Monitoring
		s = monitoring.Stack{
			PrometheusImage: m.Images.Prometheus, GrafanaImage: m.Images.Grafana,
			NodeExporterImage: m.Images.NodeExporter, CAdvisorImage: m.Images.CAdvisor,
			PrometheusPort: m.Ports.Prometheus, GrafanaPort: m.Ports.Grafana,
			NodeExporterPort: m.Ports.NodeExporter, CAdvisorPort: m.Ports.CAdvisor,
			GrafanaPasswordEnv: m.GrafanaPasswordEnv, GrafanaPasswordFile: m.GrafanaPasswordFile,
		}
	}
	if s.RayMetricsPort == 0 {
		s.RayMetricsPort = d.cluster.Ray.Ports.Metrics
	}
	if s.RayTempDir == "" {
		s.RayTempDir = rayTempDir
	}
	return s.WithDefaults()
}

// monitoringTargets is the cluster's node list as monitoring sees it.
func (d *Deployer) monitoringTargets() []monitoring.Target {
	var out []monitoring.Target
	for _, n := range d.cluster.Nodes() {
		out = append(out, monitoring.Target{Name: n.ID(), Address: n.Address, Head: n.Role == RoleHead})
	}
	return out
}

// monitoringContainerNames are the monitoring containers that belong on n
// (none when monitoring is off).
func (d *Deployer) monitoringContainerNames(n Node) []string {
	if d.opts.NoMonitoring {
		return nil
	}
	role := "worker"
	if n.Role == RoleHead {
		role = "head"
	}
	var out []string
	for _, svc := range d.stack().Services(d.cluster.Name, d.monitoringTargets()) {
		if svc.Placement.Matches(n.ID(), role) {
			out = append(out, svc.ContainerName(d.cluster.Name))
		}
	}
	return out
}

// monService is one service of the stack on one node.
type monService struct {
	svc  service.Spec
	spec dockerx.ContainerSpec
}

// nodeMonitoring is what the plan learned about the stack on one node.
type nodeMonitoring struct {
	services []monService
	images   []string          // missing images
	dirs     []monitoring.Dir  // missing, or with another owner or mode (UID -1: only existence matters)
	files    []monitoring.File // absent or different
	items    []checkpoint.PlanItem
}

func (c *monitoringDeployment) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	states, err := Fanout(ctx, d.cluster.Nodes(), FanoutOptions{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.planMonitoringNode)
	if err != nil {
		return p, err
	}
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, states[n.ID()].items...)
	}
	return p, nil
}

// planMonitoringNode compares the node's monitoring containers, images,
// directories and (on the head) files with the wanted ones.
func (d *Deployer) planMonitoringNode(ctx context.Context, n Node) (nodeMonitoring, error) {
	s := d.stack()
	cluster := d.cluster.Name
	targets := d.monitoringTargets()
	var out nodeMonitoring
	item := func(action, detail string) {
		out.items = append(out.items, checkpoint.PlanItem{Node: n.ID(), Action: action, Detail: detail})
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
		spec := svc.Container(cluster)
		out.services = append(out.services, monService{svc: svc, spec: spec})
		for _, m := range svc.Mounts {
			if m.Type == "bind" && !slices.Contains(binds, m.Source) {
				binds = append(binds, m.Source)
			}
		}
		imageMissing, cItem, err := containerPlan(ctx, e, n, svc.Name, spec)
		if err != nil {
			return out, err
		}
		if imageMissing && !slices.Contains(out.images, spec.Image) {
			out.images = append(out.images, spec.Image)
			item(actionImage, d.imageVerb()+" "+spec.Image)
		}
		if cItem.Action != "" {
			out.items = append(out.items, cItem)
		}
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
		switch {
		case got == nil:
			item(actionDir, "create directory "+dir.Path)
		case dir.UID >= 0 && (got[0] != strconv.Itoa(dir.UID) || got[1] != strconv.FormatUint(uint64(dir.Mode), 8)):
			item(actionDir, fmt.Sprintf("set %s to owner %d, mode %04o", dir.Path, dir.UID, dir.Mode))
		default:
			continue
		}
		out.dirs = append(out.dirs, dir)
	}
	for i, f := range files {
		got := state["F"+strconv.Itoa(i)]
		switch {
		case got == nil:
			item(actionFile, "write "+f.Path+secretNote(f))
		case got[0] != monitoring.ConfigDigest(f.Data):
			detail := "update " + f.Path + secretNote(f)
			if path.Base(f.Path) == monitoring.PrometheusConfigFile {
				detail += " and reload Prometheus"
			}
			item(actionFile, detail)
		case got[1] != strconv.Itoa(f.UID) || got[2] != strconv.FormatUint(uint64(f.Mode), 8):
			item(actionFile, fmt.Sprintf("set %s to owner %d, mode %04o", f.Path, f.UID, f.Mode))
		default:
			continue
		}
		out.files = append(out.files, f)
	}
	return out, nil
}

func secretNote(f monitoring.File) string {
	if f.Secret {
		return " (secret, content not shown)"
	}
	return ""
}

// pathState asks the node, in one command, for the owner and mode of each
// directory ("D<i>" -> [uid, mode]) and the SHA-256, owner and mode of each
// file ("F<i>" -> [sha256, uid, mode]); absent paths are not in the map.
func (d *Deployer) pathState(ctx context.Context, n Node, dirs []monitoring.Dir, files []monitoring.File) (map[string][]string, error) {
	if len(dirs)+len(files) == 0 {
		return nil, nil
	}
	var b strings.Builder
	for i, dir := range dirs {
		q := sshx.Quote(dir.Path)
		fmt.Fprintf(&b, "if [ -d %s ]; then echo \"D%d $(stat -c '%%u %%a' %s)\"; fi\n", q, i, q)
	}
	for i, f := range files {
		q := sshx.Quote(f.Path)
		fmt.Fprintf(&b, "if [ -f %s ]; then echo \"F%d $(sha256sum < %s | cut -c1-64) $(stat -c '%%u %%a' %s)\"; fi\n", q, i, q, q)
	}
	b.WriteString("true\n")
	out, err := d.conn.run(ctx, n, b.String(), sshx.WithSudo(), sshx.WithDisplay("inspect monitoring directories and files"))
	if err != nil {
		return nil, nodeErr(n, "inspect monitoring files", err)
	}
	state := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 {
			state[fields[0]] = fields[1:]
		}
	}
	return state, nil
}

// rayDashboards reads Ray's generated Grafana dashboards from the head (none
// when Ray has not written them) and places them for provisioning.
func (d *Deployer) rayDashboards(ctx context.Context, n Node, s monitoring.Stack) (map[string][]byte, error) {
	script := "cd " + sshx.Quote(s.RayDashboardsSource()) + " 2>/dev/null || exit 0\n" +
		"set -- *.json\n[ -e \"$1\" ] || exit 0\nexec tar -cf - -- \"$@\"\n"
	out, err := d.conn.run(ctx, n, script, sshx.WithSudo(), sshx.WithDisplay("read Ray's Grafana dashboards"))
	if err != nil || out == "" {
		return nil, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(strings.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read Ray's dashboards: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return nil, err
		}
		files[path.Base(h.Name)] = data
	}
	if len(files) == 0 {
		return nil, nil
	}
	return monitoring.RayDashboards(files)
}

func (c *monitoringDeployment) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
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
	// The state now (the plan may be older).
	states, err := Fanout(ctx, nodes, FanoutOptions{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, d.planMonitoringNode)
	fail(err)

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
	for _, img := range slices.Sorted(maps.Keys(byImage)) {
		var todo []Node
		for _, n := range byImage[img] {
			if failed[n.ID()] == nil {
				todo = append(todo, n)
			}
		}
		if err := d.distributeImage(ctx, img, todo); err != nil {
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
	summaries, err := Fanout(ctx, ready, FanoutOptions{Concurrency: d.opts.Concurrency, Op: c.Name(), Logger: d.log}, func(ctx context.Context, n Node) (string, error) {
		return d.runMonitoringNode(ctx, n, states[n.ID()])
	})
	fail(err)
	return resultsWith(nodes, failed, summaries), nil
}

// errIsNodeErrorList reports whether err is a fan-out error naming nodes.
func errIsNodeErrorList(err error) bool {
	return len(FailedNodes(err)) > 0
}

// runMonitoringNode brings one node's part of the stack to the planned state
// and returns its summary.
func (d *Deployer) runMonitoringNode(ctx context.Context, n Node, st nodeMonitoring) (string, error) {
	s := d.stack()
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
		for _, f := range st.files {
			owner := fmt.Sprintf("%d:%d", f.UID, f.UID)
			if err := conn.Upload(ctx, bytes.NewReader(f.Data), f.Path, os.FileMode(f.Mode), owner, sshx.WithSudo()); err != nil {
				return "", fmt.Errorf("write %s: %w", f.Path, err)
			}
			d.log.Info("monitoring file written", "node", n.ID(), "file", f)
			if path.Base(f.Path) == monitoring.PrometheusConfigFile {
				reload = true
			}
		}
		done = append(done, fmt.Sprintf("%d files", len(st.files)))
	}

	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return "", err
	}
	var healthy []string
	for _, ms := range st.services {
		res, err := e.Ensure(ctx, ms.spec)
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

// waitServiceHealthy polls the service's health check on the node until it
// passes, the container stops, or the check's timeout passes.
func (d *Deployer) waitServiceHealthy(parent context.Context, n Node, e *dockerx.Engine, ms monService) error {
	h := ms.svc.Health
	if h == nil {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	client := d.conn.httpClient(n, 5*time.Second)
	probe := func() error {
		switch {
		case h.HTTP != "":
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTP, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s: %s", h.HTTP, resp.Status)
			}
			return nil
		case h.TCP != "":
			conn, err := d.conn.ssh(ctx, n)
			if err != nil {
				return err
			}
			c, err := conn.DialContext(ctx, "tcp", h.TCP)
			if err != nil {
				return err
			}
			return c.Close()
		case len(h.Exec) > 0:
			res, err := e.Exec(ctx, ms.spec.Name, h.Exec)
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("%s exited %d", strings.Join(h.Exec, " "), res.ExitCode)
			}
			return nil
		}
		return nil
	}
	var last error
	for {
		if last = probe(); last == nil {
			return nil
		}
		if st, err := e.Inspect(ctx, ms.spec.Name); err == nil && !st.Running {
			logs, _ := e.Logs(context.WithoutCancel(ctx), ms.spec.Name, 5)
			return fmt.Errorf("%s: container %s %s (exit %d); last log lines: %s", ms.svc.Name, ms.spec.Name, st.Status, st.ExitCode, tail(logs, 5))
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return err
			}
			return fmt.Errorf("%s not healthy after %s: %w", ms.svc.Name, timeout, last)
		case <-time.After(healthPoll):
		}
	}
}

// promTargets is the part of Prometheus' /api/v1/targets answer we read.
type promTargets struct {
	Status string `json:"status"`
	Data   struct {
		ActiveTargets []struct {
			Labels     map[string]string `json:"labels"`
			ScrapeURL  string            `json:"scrapeUrl"`
			Health     string            `json:"health"`
			LastError  string            `json:"lastError"`
			LastScrape time.Time         `json:"lastScrape"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// waitTargetsUp polls Prometheus until every active target is up and
// returns their number. After a reload, targets scraped before it do not
// count: the wait goes on until each was scraped after the reload.
func (d *Deployer) waitTargetsUp(parent context.Context, client *http.Client, base string, reloaded bool) (int, error) {
	s := d.stack()
	timeout := 4*s.ScrapeInterval + 30*time.Second
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	since := time.Now().Add(-time.Second)
	var last error
	for {
		n, err := func() (int, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/targets?state=active", nil)
			if err != nil {
				return 0, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			var t promTargets
			if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&t); err != nil {
				return 0, fmt.Errorf("decode targets: %w", err)
			}
			var down []string
			for _, at := range t.Data.ActiveTargets {
				if at.Health != "up" || (reloaded && at.LastScrape.Before(since)) {
					d := fmt.Sprintf("%s on %s %s", at.Labels["job"], at.Labels["node"], at.Health)
					if at.LastError != "" {
						d += ": " + at.LastError
					}
					down = append(down, d)
				}
			}
			if len(t.Data.ActiveTargets) == 0 {
				return 0, errors.New("no active targets")
			}
			if len(down) > 0 {
				slices.Sort(down)
				return 0, fmt.Errorf("%d of %d targets not up: %s", len(down), len(t.Data.ActiveTargets), strings.Join(down, "; "))
			}
			return len(t.Data.ActiveTargets), nil
		}()
		if err == nil {
			return n, nil
		}
		last = err
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("Prometheus targets after %s: %w", timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// monitoringChecks returns the health of every monitoring endpoint as
// validation checks.
func (d *Deployer) monitoringChecks(ctx context.Context) []Check {
	rep := d.stack().Check(ctx, d.conn.routedHTTPClient(15*time.Second), d.monitoringTargets())
	var out []Check
	for _, e := range rep.Endpoints {
		detail := e.Detail
		if detail == "" {
			detail = "healthy"
		}
		out = append(out, Check{Name: e.Service, Node: e.Node, OK: e.Healthy, Detail: detail})
	}
	return out
}
