package raydeploy

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/raydash"
)

//go:embed validate_job.py
var validateJob string

// Check is one line of a validation report.
type Check struct {
	// Name is what was checked: container, dashboard, ray-nodes, ray-node,
	// ray-cluster, ray-job, ray-task, or a monitoring service's endpoint.
	Name string `json:"name"`
	// Node is the node checked (empty: the cluster as a whole).
	Node string `json:"node,omitempty"`
	// OK is true when the check passed.
	OK bool `json:"ok"`
	// Detail is what was found or, when the check failed, the error.
	Detail string `json:"detail"`
}

// ValidationReport is what final-validation and Validate found.
type ValidationReport struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Time is when validation started, UTC.
	Time time.Time `json:"time"`
	// Took is how long it took (took_ns: in nanoseconds).
	Took time.Duration `json:"took_ns"`
	// OK is true when every check passed.
	OK bool `json:"ok"`
	// Checks are the checks in the order they were made.
	Checks []Check `json:"checks"`
}

// Text renders the report for people, one line per check.
func (r *ValidationReport) Text() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "validation of %s: %s (%d checks, %s)\n", r.Cluster, verdict, len(r.Checks), r.Took.Round(time.Millisecond))
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		where := c.Node
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(&b, "  %s %-22s %-16s %s\n", mark, c.Name, where, c.Detail)
	}
	return b.String()
}

// ValidateOptions select what Validate checks.
type ValidateOptions struct {
	// HealthOnly skips the Ray job (containers, nodes and endpoints only).
	HealthOnly bool
}

// Validate checks the running cluster: Ray containers running on every node,
// every node ALIVE in Ray with the expected CPUs, the dashboard healthy, the
// monitoring endpoints healthy (node-exporter and cAdvisor on every node,
// Prometheus with every target up, Grafana; unless Options.NoMonitoring) and,
// unless HealthOnly, a job that runs a task on every node. It changes nothing
// but the job it submits, and writes the report to validation.json in the
// state directory.
func (d *Deployer) Validate(ctx context.Context, o ValidateOptions) (*ValidationReport, error) {
	start := time.Now()
	rep := &ValidationReport{Cluster: d.cluster.Name, Time: start.UTC(), OK: true}
	add := func(name, node string, err error, detail string) {
		c := Check{Name: name, Node: node, OK: err == nil, Detail: detail}
		if err != nil {
			c.Detail = err.Error()
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, c)
	}
	nodes := d.cluster.Nodes()
	dash, err := d.dashboardClient()
	if err != nil {
		return nil, err
	}
	// The job runs while the other checks do.
	type jobResult struct {
		where map[string]string
		err   error
	}
	job := make(chan jobResult, 1)
	if !o.HealthOnly {
		go func() {
			where, err := d.runValidationJob(ctx, dash)
			job <- jobResult{where, err}
		}()
	}

	// Containers.
	type ctr struct {
		detail string
		err    error
	}
	states, _ := fanMap(ctx, d, nodes, fanout.Options{Concurrency: d.opts.Concurrency, Op: "validate"}, func(ctx context.Context, n Node) (ctr, error) {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return ctr{err: err}, nil
		}
		name := d.desiredContainerNames(n)[0]
		st, err := e.Inspect(ctx, name)
		if err != nil {
			return ctr{err: err}, nil
		}
		if !st.Running {
			return ctr{err: fmt.Errorf("container %s is %s", name, st.Status)}, nil
		}
		return ctr{detail: name + " running"}, nil
	})
	for _, n := range nodes {
		s, ok := states[n.ID()]
		if !ok {
			s.err = errors.New("node unreachable")
		}
		add("container", n.ID(), s.err, s.detail)
	}

	// Dashboard and nodes.
	v, err := dash.Version(ctx)
	add("dashboard", nodes[0].ID(), errors.Join(err, dash.GCSHealthy(ctx)), "Ray "+v.RayVersion+", GCS healthy")
	alive, err := d.aliveNodes(ctx, dash, nodes)
	if err != nil {
		add("ray-nodes", "", err, "")
	} else {
		total := 0.0
		for _, n := range nodes {
			a, ok := alive[n.ID()]
			if !ok {
				add("ray-node", n.ID(), fmt.Errorf("not ALIVE with %d CPUs in Ray", d.expectedCPUsOf(ctx, n)), "")
				continue
			}
			total += a.CPUs()
			add("ray-node", n.ID(), resourcesAsConfigured(n, a), "ALIVE, "+describeResources(a))
		}
		add("ray-cluster", "", nil, fmt.Sprintf("%d of %d nodes ALIVE, %g CPUs", len(alive), len(nodes), total))
	}

	// Monitoring endpoints, through each node's SSH connection.
	if !d.opts.NoMonitoring {
		for _, c := range d.monitoringChecks(ctx) {
			if !c.OK {
				rep.OK = false
			}
			rep.Checks = append(rep.Checks, c)
		}
	}

	if !o.HealthOnly {
		res := <-job
		if res.err != nil {
			add("ray-job", "", res.err, "")
		} else {
			for _, n := range nodes {
				if host, ok := res.where[n.Address]; ok {
					add("ray-task", n.ID(), nil, "task ran on "+host)
				} else {
					add("ray-task", n.ID(), errors.New("no task of the validation job ran here"), "")
				}
			}
		}
	}
	rep.Took = time.Since(start)
	if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
		if err := checkpoint.WriteFileAtomic(filepath.Join(d.cluster.StateDir, "validation.json"), b, 0o600); err != nil {
			d.log.Warn("could not save the validation report", "err", err)
		}
	}
	return rep, nil
}

// resourcesAsConfigured compares the GPUs and custom resources Ray reports
// for a node with the ones its config gives Ray (CPUs are compared when the
// node is looked up); resources the config leaves unset are not checked.
func resourcesAsConfigured(n Node, rn raydash.Node) error {
	var bad []string
	if g := n.Resources.GPUs; g != nil && rn.Resources["GPU"] != float64(*g) {
		bad = append(bad, fmt.Sprintf("GPU %g, want %d", rn.Resources["GPU"], *g))
	}
	for _, k := range slices.Sorted(maps.Keys(n.Resources.Custom)) {
		if want := n.Resources.Custom[k]; rn.Resources[k] != want {
			bad = append(bad, fmt.Sprintf("%s %g, want %g", k, rn.Resources[k], want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("ALIVE, but Ray reports %s", strings.Join(bad, ", "))
	}
	return nil
}

// describeResources says what Ray may schedule on a node: CPUs always, GPUs
// and custom resources when there are any ("0 CPUs, 1 GPU, tts 2").
func describeResources(rn raydash.Node) string {
	parts := []string{fmt.Sprintf("%g CPUs", rn.CPUs())}
	if g := rn.Resources["GPU"]; g > 0 {
		parts = append(parts, fmt.Sprintf("%g GPUs", g))
	}
	for _, k := range slices.Sorted(maps.Keys(rn.Resources)) {
		if builtinResource(k) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %g", k, rn.Resources[k]))
	}
	return strings.Join(parts, ", ")
}

// builtinResource reports whether Ray defines the resource itself (CPU, GPU,
// memory, object store, the node:<ip> and accelerator_type: markers).
func builtinResource(name string) bool {
	switch name {
	case "CPU", "GPU", "memory", "object_store_memory":
		return true
	}
	return strings.HasPrefix(name, "node:") || strings.HasPrefix(name, "accelerator_type:")
}

// runValidationJob submits the validation job and returns, by node IP, the
// host name each task reported.
func (d *Deployer) runValidationJob(ctx context.Context, dash *raydash.Client) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.ValidationJobTimeout)
	defer cancel()
	code := base64.StdEncoding.EncodeToString([]byte(validateJob))
	entry := fmt.Sprintf(`python -c "import base64; exec(base64.b64decode('%s'))"`, code)
	sub, err := dash.SubmitJob(ctx, raydash.JobSubmitRequest{
		Entrypoint: entry,
		Metadata:   map[string]string{"raydeploy": "final-validation"},
	})
	if err != nil {
		return nil, fmt.Errorf("submit validation job: %w", err)
	}
	info, err := dash.WaitJob(ctx, sub.SubmissionID, 100*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("validation job %s: %w", sub.SubmissionID, err)
	}
	logs, _ := dash.JobLogs(ctx, sub.SubmissionID)
	if info.Status != raydash.JobSucceeded {
		return nil, fmt.Errorf("validation job %s %s: %s; last log lines: %s", sub.SubmissionID, info.Status, info.Message, tail(logs, 5))
	}
	for _, line := range strings.Split(logs, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "RAYDEPLOY_VALIDATION ")
		if !ok {
			continue
		}
		var tasks []struct {
			IP       string `json:"ip"`
			Hostname string `json:"hostname"`
		}
		if err := json.Unmarshal([]byte(rest), &tasks); err != nil {
			return nil, fmt.Errorf("validation job output: %w", err)
		}
		out := map[string]string{}
		for _, t := range tasks {
			out[t.IP] = t.Hostname
		}
		return out, nil
	}
	return nil, fmt.Errorf("validation job %s printed no result; last log lines: %s", sub.SubmissionID, tail(logs, 5))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// finalValidation runs Validate as the last checkpoint.
type finalValidation struct{ d *Deployer }

func (c *finalValidation) Name() string { return CheckpointValidation }
func (c *finalValidation) Description() string {
	return "Check containers, Ray nodes and CPUs, monitoring endpoints, and run a job on every node"
}
func (c *finalValidation) NeedsApproval() bool { return false }
func (c *finalValidation) Destructive() bool   { return false }

func (c *finalValidation) Plan(ctx context.Context) (checkpoint.Plan, error) {
	p := checkpoint.Plan{Checkpoint: c.Name()}
	for _, n := range c.d.cluster.Nodes() {
		p.Items = append(p.Items, checkpoint.PlanItem{Node: n.ID(), Action: "validate", Detail: "read-only checks and one Ray job", Target: &approval.Target{Kind: approval.TargetNode, Name: n.ID()}})
	}
	return p, nil
}

func (c *finalValidation) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	rep, err := c.d.Validate(ctx, ValidateOptions{})
	if err != nil {
		return nil, err
	}
	var out []checkpoint.NodeResult
	for _, n := range c.d.nodesIn(p) {
		var fails []string
		passed := 0
		for _, ch := range rep.Checks {
			if ch.Node != n.ID() && ch.Node != "" {
				continue
			}
			if ch.OK {
				passed++
			} else {
				fails = append(fails, ch.Name+": "+ch.Detail)
			}
		}
		r := checkpoint.NodeResult{Node: n.ID(), Summary: fmt.Sprintf("%d checks passed", passed)}
		if len(fails) > 0 {
			r.Err = errors.New(strings.Join(fails, "; "))
		}
		out = append(out, r)
	}
	return out, nil
}
