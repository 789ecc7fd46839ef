package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
)

// clusterName is the cluster_name of the deployed cluster: its containers
// carry io.raydeploy.cluster=faults.
const clusterName = "faults"

// Labels the SDK puts on every container it creates.
const (
	labelCluster = "io.raydeploy.cluster"
	labelRole    = "io.raydeploy.role"
)

// bystanderName is a container on every node that is not the SDK's: no
// fault and no run may touch it.
const bystanderName = "bystander"

// Bench is one testenv cluster, the deploy-master program built for it, and
// a cluster file describing it: the ground every fault runs on.
type Bench struct {
	env        *testenv.Cluster
	dir        string
	bin        string
	config     string
	stateDir   string
	monitoring bool
	rayImage   string
	logf       func(string, ...any)

	bystanders map[string]string         // node -> container ID
	expected   map[string]map[string]int // node -> role -> containers after a clean deploy
	lines      int                       // progress lines of a clean deploy
}

// BenchOptions configure NewBench.
type BenchOptions struct {
	// Root is the module root deploy-master is built from.
	Root string
	// Dir holds the key, known_hosts, cluster file, binary and state.
	Dir string
	// Monitoring deploys the monitoring stack too (all six checkpoints).
	Monitoring bool
	// Logf receives progress lines.
	Logf func(string, ...any)
}

// NewBench builds deploy-master and the test images, writes the cluster
// file, starts a bystander container on every node and deploys once from
// scratch, which gives the containers and progress lines of a clean deploy.
func NewBench(ctx context.Context, env *testenv.Cluster, o BenchOptions) (*Bench, error) {
	b := &Bench{env: env, dir: o.Dir, monitoring: o.Monitoring, logf: o.Logf,
		bin: filepath.Join(o.Dir, "deploy-master"), stateDir: filepath.Join(o.Dir, "state")}
	if b.logf == nil {
		b.logf = func(string, ...any) {}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./examples/deploy-master")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build deploy-master: %w: %s", err, out)
	}
	ray, err := testenv.TestRayImage(ctx, env.Pool(), b.logf)
	if err != nil {
		return nil, err
	}
	var mon testenv.MonitoringImages
	if o.Monitoring {
		if mon, err = testenv.TestMonitoringImages(ctx, env.Pool(), b.logf); err != nil {
			return nil, err
		}
	}
	b.rayImage = ray
	if err := b.writeFiles(ray, mon); err != nil {
		return nil, err
	}
	if err := b.startBystanders(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := b.run(ctx, "--deploy", "--auto-approve")
	if err != nil {
		return nil, err
	}
	if r.Code != 0 {
		return nil, fmt.Errorf("first deploy: exit %d: %s", r.Code, r.Stderr)
	}
	b.lines = len(r.Lines)
	b.logf("faultbench: first deploy (image side-loads included) took %s, %d progress lines", time.Since(start).Round(time.Second), b.lines)
	b.expected = map[string]map[string]int{}
	for _, n := range env.Nodes {
		cs, err := b.containers(ctx, n)
		if err != nil {
			return nil, err
		}
		roles := map[string]int{}
		for _, c := range cs {
			if c.Cluster == clusterName && c.State == "running" {
				roles[c.Role]++
			}
		}
		for role, k := range roles {
			if k != 1 {
				return nil, fmt.Errorf("first deploy: %s runs %d containers of role %s, want 1", n.Name, k, role)
			}
		}
		b.expected[n.Name] = roles
	}
	return b, nil
}

func (b *Bench) writeFiles(ray string, mon testenv.MonitoringImages) error {
	key, known, sudo := filepath.Join(b.dir, "id_ed25519"), filepath.Join(b.dir, "known_hosts"), filepath.Join(b.dir, "sudo-password")
	// Every node of a testenv cluster started by NewCluster has its own
	// password; each node gets its own sudo_password_file.
	var y strings.Builder
	fmt.Fprintf(&y, "cluster_name: %s\nstate_dir: %q\nssh:\n  user: %s\n  key_file: %q\n  known_hosts: %q\n",
		clusterName, b.stateDir, testenv.DeployUser, key, known)
	for i, n := range b.env.Nodes {
		pw := fmt.Sprintf("%s-%s", sudo, n.Name)
		if err := os.WriteFile(pw, []byte(n.DeployPassword+"\n"), 0o600); err != nil {
			return err
		}
		if i == 0 {
			fmt.Fprintf(&y, "head:\n  name: %s\n  address: %s\n  sudo_password_file: %q\nworkers:\n", n.Name, n.Address, pw)
			continue
		}
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    sudo_password_file: %q\n", n.Name, n.Address, pw)
	}
	fmt.Fprintf(&y, "ray:\n  image: %q\n", ray)
	if b.monitoring {
		fmt.Fprintf(&y, "monitoring:\n  images:\n    prometheus: %q\n    grafana: %q\n    node_exporter: %q\n    cadvisor: %q\n",
			mon.Prometheus, mon.Grafana, mon.NodeExporter, mon.CAdvisor)
	} else {
		y.WriteString("monitoring:\n  enabled: false\n")
	}
	b.config = filepath.Join(b.dir, "cluster.yaml")
	for p, data := range map[string][]byte{key: b.env.ClientKeyPEM, known: b.env.KnownHosts(), b.config: []byte(y.String())} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startBystanders runs a container that is not the SDK's on every node.
func (b *Bench) startBystanders(ctx context.Context) error {
	tiny, err := testenv.TinyImage(ctx, b.env.Pool())
	if err != nil {
		return err
	}
	b.bystanders = map[string]string{}
	for _, n := range b.env.Nodes {
		if err := n.LoadImage(ctx, tiny, tiny); err != nil {
			return err
		}
		id, err := n.Run(ctx, "root", "docker run -d --restart always --name "+bystanderName+" "+tiny+" /tinyd")
		if err != nil {
			return err
		}
		b.bystanders[n.Name] = strings.TrimSpace(id)
	}
	return nil
}

// proc is a running deploy-master.
type proc struct {
	cmd    *exec.Cmd
	start  time.Time
	lines  chan string // progress lines (stdout), closed at EOF
	stderr *testenv.SyncBuffer
	read   []string
	eof    bool
}

// result is how a deploy-master run ended.
type result struct {
	Code    int // exit status; -1 when killed by a signal
	Lines   []string
	Stderr  string
	Elapsed time.Duration
}

// start starts deploy-master with the cluster file and args.
func (b *Bench) start(ctx context.Context, args ...string) (*proc, error) {
	return b.startWith(ctx, b.config, args...)
}

// configWithTimeouts writes a copy of the cluster file whose ssh section
// has the timeouts t and returns its path.
func (b *Bench) configWithTimeouts(t raydeploy.SSHTimeouts) (string, error) {
	data, err := os.ReadFile(b.config)
	if err != nil {
		return "", err
	}
	block, err := yaml.Marshal(map[string]raydeploy.SSHTimeouts{"timeouts": t})
	if err != nil {
		return "", err
	}
	const section = "\nssh:\n"
	text := string(data)
	i := strings.Index(text, section) + len(section)
	if i < len(section) {
		return "", fmt.Errorf("%s: no ssh section to put timeouts in", b.config)
	}
	indented := "  " + strings.ReplaceAll(strings.TrimSuffix(string(block), "\n"), "\n", "\n  ") + "\n"
	p := filepath.Join(b.dir, "cluster-timeouts.yaml")
	return p, os.WriteFile(p, []byte(text[:i]+indented+text[i:]), 0o600)
}

// startWith starts deploy-master with the cluster file config and args.
func (b *Bench) startWith(ctx context.Context, config string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"--config", config}, args...)...)
	cmd.Dir = b.dir
	cmd.Stdin = nil // not a terminal: approvals come from --auto-approve only
	p := &proc{cmd: cmd, lines: make(chan string, 1024), stderr: &testenv.SyncBuffer{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

// waitLine reads progress lines until match accepts one (given the count
// of lines read so far, that line included) and returns true, or returns
// false when the output ended first.
func (p *proc) waitLine(ctx context.Context, match func(n int, line string) bool) (bool, error) {
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.eof = true
				return false, nil
			}
			p.read = append(p.read, line)
			if match(len(p.read), line) {
				return true, nil
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// kill SIGKILLs the process.
func (p *proc) kill() error { return p.cmd.Process.Signal(syscall.SIGKILL) }

// wait reads the rest of the output and waits for the process to end.
func (p *proc) wait() result {
	for line := range p.lines {
		p.read = append(p.read, line)
	}
	err := p.cmd.Wait()
	r := result{Lines: p.read, Stderr: p.stderr.String(), Elapsed: time.Since(p.start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		r.Code = -1
		r.Stderr += "\n" + err.Error()
	}
	return r
}

// run runs deploy-master to its end.
func (b *Bench) run(ctx context.Context, args ...string) (result, error) {
	p, err := b.start(ctx, args...)
	if err != nil {
		return result{}, err
	}
	r := p.wait()
	if ctx.Err() != nil {
		return r, fmt.Errorf("deploy-master %s: %w (output: %s)", strings.Join(args, " "), ctx.Err(), tail(r.Stderr, 600))
	}
	return r, nil
}

// errorText is what a failed run said on stderr, without the
// --auto-approve warning: the error a user reads.
func (r result) errorText() string {
	var keep []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "WARNING: --auto-approve") || strings.HasPrefix(l, "fix the cause") ||
			strings.HasPrefix(l, "failure record:") || strings.HasPrefix(l, "deploy-master --") || strings.Contains(l, "--resume --config") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " / ")
}

// reset removes the cluster (deploy-master --down) and the state
// directory's contents, so the next deploy starts from scratch.
func (b *Bench) reset(ctx context.Context) error {
	r, err := b.run(ctx, "--down", "--auto-approve")
	if err != nil {
		return err
	}
	if r.Code != 0 {
		return fmt.Errorf("reset: deploy-master --down: exit %d: %s", r.Code, r.errorText())
	}
	entries, err := os.ReadDir(b.stateDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(b.stateDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// container is one container on a node, as docker ps shows it.
type container struct {
	ID, State, Name, Cluster, Role string
}

func (b *Bench) containers(ctx context.Context, n *testenv.Node) ([]container, error) {
	out, err := n.Run(ctx, "root", `docker ps -a --no-trunc --format '{{.ID}}|{{.State}}|{{.Names}}|{{.Label "`+labelCluster+`"}}|{{.Label "`+labelRole+`"}}'`)
	if err != nil {
		return nil, err
	}
	var cs []container
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			continue
		}
		cs = append(cs, container{ID: f[0], State: f[1], Name: f[2], Cluster: f[3], Role: f[4]})
	}
	return cs, nil
}

// verdict is what a check of the cluster found.
type verdict struct {
	Orphans    []string // containers of the SDK not running, not expected, or without the cluster label
	Duplicates []string // more than one container of a role on a node
	Missing    []string // an expected container absent
	Ledger     []string // ledger records that disagree with the nodes
	Lost       []string // state that was lost or damaged
	Touched    []string // what is not the SDK's and changed
}

func (v verdict) ok() bool {
	return len(v.Orphans)+len(v.Duplicates)+len(v.Missing)+len(v.Ledger)+len(v.Lost)+len(v.Touched) == 0
}

func (v verdict) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		v    []string
	}{{"orphans", v.Orphans}, {"duplicates", v.Duplicates}, {"missing", v.Missing}, {"ledger", v.Ledger}, {"lost", v.Lost}, {"touched", v.Touched}} {
		if len(p.v) > 0 {
			parts = append(parts, p.name+": "+strings.Join(p.v, ", "))
		}
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
}

// verify checks the nodes and the state against a clean deploy: one
// running container per expected role and node, nothing else labelled as
// the SDK's or carrying its role label, every checkpoint done on every node
// in the ledger, the audit log's chain intact with at least minAudit
// records, and the bystanders unchanged.
func (b *Bench) verify(ctx context.Context, minAudit int) (verdict, error) {
	var v verdict
	for _, n := range b.env.Nodes {
		cs, err := b.containers(ctx, n)
		if err != nil {
			return v, err
		}
		roles := map[string]int{}
		sawBystander := false
		for _, c := range cs {
			switch {
			case c.ID == b.bystanders[n.Name]:
				sawBystander = true
			case c.Cluster == clusterName && c.State == "running" && b.expected[n.Name][c.Role] > 0:
				roles[c.Role]++
			case c.Cluster == clusterName || c.Role != "":
				v.Orphans = append(v.Orphans, fmt.Sprintf("%s %s %s (%s, cluster label %q, role %q)", n.Name, c.Name, c.ID[:12], c.State, c.Cluster, c.Role))
			default:
				v.Touched = append(v.Touched, fmt.Sprintf("%s: unknown container %s %s", n.Name, c.Name, c.ID[:12]))
			}
		}
		if !sawBystander {
			v.Touched = append(v.Touched, fmt.Sprintf("%s: bystander container %s gone", n.Name, b.bystanders[n.Name][:12]))
		}
		for _, role := range sortedKeys(b.expected[n.Name]) {
			switch k := roles[role]; {
			case k > 1:
				v.Duplicates = append(v.Duplicates, fmt.Sprintf("%s %s x%d", n.Name, role, k))
			case k == 0:
				v.Missing = append(v.Missing, n.Name+" "+role)
			}
		}
	}
	st, err := checkpoint.OpenStore(b.stateDir)
	if err != nil {
		v.Lost = append(v.Lost, "ledger: "+err.Error())
		return v, nil
	}
	l, err := st.Load()
	if err != nil {
		v.Lost = append(v.Lost, "ledger: "+err.Error())
		return v, nil
	}
	for _, name := range b.checkpoints() {
		rec := l.Checkpoints[name]
		if rec == nil || !rec.Status.Done() {
			v.Ledger = append(v.Ledger, fmt.Sprintf("%s not done (%v)", name, statusOf(rec)))
			continue
		}
		for _, n := range b.env.Nodes {
			if nr := rec.Nodes[n.Name]; nr == nil || !nr.Status.Done() {
				v.Ledger = append(v.Ledger, fmt.Sprintf("%s on %s not done", name, n.Name))
			}
		}
	}
	if got, err := approval.Verify(filepath.Join(b.stateDir, raydeploy.AuditFile)); err != nil {
		v.Lost = append(v.Lost, "audit log: "+err.Error())
	} else if got < minAudit {
		v.Lost = append(v.Lost, fmt.Sprintf("audit log: %d records, had %d", got, minAudit))
	}
	return v, nil
}

// auditRecords counts the audit log's records (0 if it cannot be read).
func (b *Bench) auditRecords() int {
	n, _ := approval.Verify(filepath.Join(b.stateDir, raydeploy.AuditFile))
	return n
}

func (b *Bench) checkpoints() []string {
	names := []string{raydeploy.CheckpointPrerequisites, raydeploy.CheckpointDocker, raydeploy.CheckpointCleanup, raydeploy.CheckpointRay}
	if b.monitoring {
		names = append(names, raydeploy.CheckpointMonitoring)
	}
	return append(names, raydeploy.CheckpointValidation)
}

func statusOf(r *checkpoint.Record) checkpoint.Status {
	if r == nil {
		return "no record"
	}
	return r.Status
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// converge re-runs deploy-master --deploy --resume until it ends and checks
// the cluster.
func (b *Bench) converge(ctx context.Context, minAudit int) (result, verdict, error) {
	r, err := b.run(ctx, "--deploy", "--resume", "--auto-approve")
	if err != nil {
		return r, verdict{}, err
	}
	v, err := b.verify(ctx, minAudit)
	return r, v, err
}

func itoa(i int) string { return strconv.Itoa(i) }
