package raydeploy

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/monitoring"
)

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
			body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			if err != nil {
				return 0, err
			}
			var scrapedSince time.Time
			if reloaded {
				scrapedSince = since
			}
			return monitoring.TargetsUp(body, scrapedSince)
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
