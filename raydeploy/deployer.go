package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/raydash"
	"github.com/raydeploy/sdk/monitoring"
)

// The six checkpoints, in order. Their names are the seed's.
const (
	CheckpointPrerequisites = "prerequisites-check"
	CheckpointDocker        = "docker-installation"
	CheckpointCleanup       = "cleanup-existing"
	CheckpointRay           = "ray-deployment"
	CheckpointMonitoring    = "monitoring-deployment"
	CheckpointValidation    = "final-validation"
)

// ImagePolicy says how an image that a node lacks gets there.
type ImagePolicy string

// Image policies.
const (
	// ImageAuto side-loads from the controller's Docker Engine when it has
	// the image, else pulls on the node.
	ImageAuto ImagePolicy = "auto"
	// ImagePull pulls on every node from its registry.
	ImagePull ImagePolicy = "pull"
	// ImageSideLoad streams the image from the controller's Docker Engine
	// (or ImageFile) to each node over SSH: no registry needed. Layers a
	// node already has (the base its other images share) are left out of
	// the stream; TransferProgress.Skipped counts them.
	ImageSideLoad ImagePolicy = "side-load"
)

// Options configure a Deployer.
type Options struct {
	// Approver decides on checkpoints that need approval; nil refuses them.
	// It gets the whole approval.Request (checkpoint, plan items with their
	// targets, digest, risks) and returns a Decision: the Deployer fills in
	// the rest (approval.Complete: plan digest, request ID, time, approver)
	// and records the request, the decision and the checkpoint's outcome in
	// the audit log (AuditFile in the state directory). Do not wrap it with
	// approval.Audited yourself.
	Approver approval.Approver
	// Events receives progress events (checkpoint and node transitions).
	Events checkpoint.EventSink
	// Progress, if set, receives the progress of long transfers (image
	// side-loads) at least every second per node; see TransferProgress.
	Progress func(TransferProgress)
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Concurrency bounds how many nodes are worked on at once (default
	// DefaultConcurrency).
	Concurrency int
	// Images is how images reach nodes (default ImageAuto).
	Images ImagePolicy
	// ImageRelay side-loads through the nodes: the controller sends each
	// image once and the nodes pass it on to each other over SSH (one-time
	// keys per transfer; see internal/imagerelay). Nodes the others cannot
	// reach, or where the relayed image is not the controller's, get the
	// direct side-load.
	ImageRelay bool
	// ImageFile is a docker-save tar to side-load from instead of the
	// controller's Engine.
	ImageFile string
	// ResumeCommand is the command a failure record tells the user to run.
	ResumeCommand string
	// Prerequisites are the minimums prerequisites-check enforces.
	Prerequisites Prerequisites
	// ReadyTimeout bounds the wait for Ray to report every node ALIVE
	// (default 3 minutes).
	ReadyTimeout time.Duration
	// ValidationJobTimeout bounds final-validation's Ray job (default 2 minutes).
	ValidationJobTimeout time.Duration
	// Monitoring configures the monitoring stack that monitoring-deployment
	// runs and Validate checks; nil means monitoring.DefaultStack().
	Monitoring *monitoring.Stack
	// NoMonitoring leaves monitoring-deployment out of the checkpoints and
	// the monitoring endpoints out of validation.
	NoMonitoring bool
	// Metrics, if set, receives every event (besides Events): the
	// deployer's own metrics, on the caller's registry.
	Metrics *monitoring.Metrics
}

// Prerequisites are the minimums every node must meet.
type Prerequisites struct {
	MinCPUs     int      // default 1
	MinMemory   ByteSize // default 2 GiB
	MinDiskFree ByteSize // default 10 GiB on /
	// MaxClockSkew is reported as a failure beyond this (default 30 s).
	MaxClockSkew time.Duration
}

// Deployer deploys, checks and removes one Ray cluster. It holds one SSH
// connection per node for its whole life; Close releases them.
type Deployer struct {
	cluster *Cluster
	opts    Options
	log     *slog.Logger
	conn    *connector
	audit   *approval.AuditLog // nil without an Approver

	mu       sync.Mutex
	facts    map[string]Facts
	versions map[string]string // image ID -> "Ray x, Python y"
	list     *checkpoint.List
}

// AuditFile is the audit log's file name in the state directory.
const AuditFile = "audit.log"

// New validates the cluster and returns its Deployer: the one place the
// SDK's parts are wired together. With an Approver, New creates the state
// directory (mode 0700) and opens its audit log (a broken hash chain is
// refused), and every approval request, decision and checkpoint outcome is
// recorded there; without one nothing can be approved and New creates
// nothing (List, Plan and Validate need no state). Close releases it all.
// (Cluster.CheckLocal checks the files and variables it names; call it
// before connecting.)
func New(c *Cluster, opts Options) (*Deployer, error) {
	if c == nil {
		return nil, errors.New("raydeploy: nil cluster")
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.MonitoringEnabled() {
		opts.NoMonitoring = true
	}
	opts = opts.withDefaults()
	d := &Deployer{
		cluster: c,
		opts:    opts,
		log:     opts.Logger.With("cluster", c.Name),
		facts:   map[string]Facts{},
	}
	d.conn = newConnector(c, d.log)
	if m := opts.Metrics; m != nil {
		d.conn.onSSHError, d.conn.onDockerError = m.SSHError, m.DockerError
	}
	cps := []checkpoint.Checkpoint{
		&prerequisitesCheck{d: d},
		&dockerInstallation{d: d},
		&cleanupExisting{d: d},
		&rayDeployment{d: d},
	}
	if !opts.NoMonitoring {
		m, err := newMonitoringDeployment(d)
		if err != nil {
			return nil, err
		}
		cps = append(cps, m)
	}
	cps = append(cps, &finalValidation{d: d})
	list, err := checkpoint.NewList(cps...)
	if err != nil {
		return nil, err
	}
	d.list = list
	if opts.Approver != nil {
		if _, err := checkpoint.OpenStore(c.StateDir); err != nil { // creates the state directory, 0700
			return nil, err
		}
		if d.audit, err = approval.OpenAuditLog(filepath.Join(c.StateDir, AuditFile)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Audit is the audit log New opened (nil when Options.Approver is nil).
// Others that record into it (a REST API's record of requests) share this
// handle, which keeps the hash chain in order.
func (d *Deployer) Audit() *approval.AuditLog { return d.audit }

// Cluster is the cluster with defaults applied.
func (d *Deployer) Cluster() *Cluster { return d.cluster }

// Checkpoints is the ordered, editable list of checkpoints Deploy runs.
// Callers may insert their own (checkpoint.List's methods).
func (d *Deployer) Checkpoints() *checkpoint.List { return d.list }

// Close releases every node connection and closes the audit log.
func (d *Deployer) Close() error {
	err := d.conn.close()
	if d.audit != nil {
		err = errors.Join(err, d.audit.Close())
	}
	return err
}

func (d *Deployer) nodeIDs() []string {
	var ids []string
	for _, n := range d.cluster.Nodes() {
		ids = append(ids, n.ID())
	}
	return ids
}

func (d *Deployer) runner(ctx context.Context, list *checkpoint.List) (*checkpoint.Runner, error) {
	return checkpoint.Open(ctx, list, checkpoint.Options{
		StateDir:      d.cluster.StateDir,
		Nodes:         d.nodeIDs(),
		Approver:      d.opts.Approver,
		Events:        d.events(),
		Audit:         d.audit,
		Logger:        d.log,
		ResumeCommand: d.opts.ResumeCommand,
	})
}

// events is the sink of the runner's events: Options.Events and
// Options.Metrics.
func (d *Deployer) events() checkpoint.EventSink {
	user, m := d.opts.Events, d.opts.Metrics
	if m == nil {
		return user
	}
	return func(e checkpoint.Event) {
		m.Observe(e)
		if user != nil {
			user(e)
		}
	}
}

// Deploy runs the checkpoints o selects (all of them by default). Each
// checkpoint plans first; a checkpoint whose plan is empty is recorded as
// satisfied without running, which makes a re-run of a deployed cluster a
// fast no-op and a re-run after a failure redo only what is missing.
func (d *Deployer) Deploy(ctx context.Context, o checkpoint.RunOptions) (*checkpoint.Report, error) {
	r, err := d.runner(ctx, d.list)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx, o)
}

// Plan returns what Deploy would change, per checkpoint and node, changing
// nothing (a dry run).
func (d *Deployer) Plan(ctx context.Context, o checkpoint.RunOptions) ([]checkpoint.Plan, error) {
	r, err := d.runner(ctx, d.list)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.DryRun(ctx, o)
}

// List returns the checkpoints with their ledger status. It reads the ledger
// without taking the lock, so it works while a deployment runs, and it
// creates nothing.
func (d *Deployer) List(ctx context.Context) ([]checkpoint.Info, error) {
	ledger := checkpoint.NewLedger()
	if _, err := os.Stat(d.cluster.StateDir); err == nil {
		st, err := checkpoint.OpenStore(d.cluster.StateDir)
		if err != nil {
			return nil, err
		}
		if ledger, err = st.Load(); err != nil {
			return nil, err
		}
	}
	var out []checkpoint.Info
	for _, name := range d.list.Names() {
		cp, err := d.list.Get(name)
		if err != nil {
			return nil, err
		}
		info := checkpoint.Info{Name: name, Description: cp.Description(), NeedsApproval: cp.NeedsApproval(), Destructive: cp.Destructive(), Status: checkpoint.StatusPending}
		if rec := ledger.Record(name); rec != nil {
			info.Status = rec.Status
		}
		out = append(out, info)
	}
	return out, nil
}

// Down removes every container this cluster owns on every node, after an
// approval (destructive).
func (d *Deployer) Down(ctx context.Context) (*checkpoint.Report, error) {
	list, err := checkpoint.NewList(&down{d: d})
	if err != nil {
		return nil, err
	}
	r, err := d.runner(ctx, list)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx, checkpoint.RunOptions{})
}

// nodeFacts returns the node's facts, gathering them on first use.
func (d *Deployer) nodeFacts(ctx context.Context, n Node) (Facts, error) {
	d.mu.Lock()
	f, ok := d.facts[n.ID()]
	d.mu.Unlock()
	if ok {
		return f, nil
	}
	return d.refreshFacts(ctx, n)
}

func (d *Deployer) refreshFacts(ctx context.Context, n Node) (Facts, error) {
	f, err := d.conn.gatherFacts(ctx, n)
	if err != nil {
		return Facts{}, err
	}
	d.mu.Lock()
	d.facts[n.ID()] = f
	d.mu.Unlock()
	return f, nil
}

// fanout runs fn on every node with the Deployer's concurrency.
func (d *Deployer) fanout(ctx context.Context, nodes []Node, op string, fn func(ctx context.Context, n Node) error) error {
	_, err := fanMap(ctx, d, nodes, fanout.Options{Concurrency: d.opts.Concurrency, Op: op, Logger: d.log}, func(ctx context.Context, n Node) (struct{}, error) {
		return struct{}{}, d.conn.explain(ctx, n, fn(ctx, n))
	})
	return err
}

// fanMap is fanout.Map that lets go of each node's idle Docker API
// connections once the node's call returns: a node done with a step then
// holds only its SSH connection (an idle Docker connection costs four
// goroutines and two buffers, which on a thousand nodes is most of the
// memory), and the next step opens a new channel for one round trip.
func fanMap[T any](ctx context.Context, d *Deployer, nodes []Node, opts fanout.Options, fn func(ctx context.Context, n Node) (T, error)) (map[string]T, error) {
	return fanout.Map(ctx, nodes, opts, func(ctx context.Context, n Node) (T, error) {
		defer d.conn.releaseIdle(n)
		return fn(ctx, n)
	})
}

// results turns a fan-out error into one NodeResult per node: failed nodes
// carry their error, the others the summary summarize gives.
func results(nodes []Node, err error, summarize func(Node) string) []checkpoint.NodeResult {
	failed := map[string]error{}
	markFailed(failed, err)
	out := make([]checkpoint.NodeResult, 0, len(nodes))
	for _, n := range nodes {
		if e, ok := failed[n.ID()]; ok {
			out = append(out, checkpoint.NodeResult{Node: n.ID(), Err: e})
			continue
		}
		if err != nil && len(failed) == 0 { // a failure that names no node
			out = append(out, checkpoint.NodeResult{Node: n.ID(), Err: err})
			continue
		}
		out = append(out, checkpoint.NodeResult{Node: n.ID(), Summary: summarize(n)})
	}
	return out
}

// markFailed records in failed the cause of every node that err names (the
// ledger names the node and checkpoint itself).
func markFailed(failed map[string]error, err error) {
	for _, ne := range checkpoint.NodeErrors(err) {
		failed[ne.Node] = ne.Err
	}
}

// nodesIn returns the cluster's nodes that the plan names, in cluster order.
func (d *Deployer) nodesIn(p checkpoint.Plan) []Node {
	want := map[string]bool{}
	for _, it := range p.Items {
		want[it.Node] = true
	}
	var out []Node
	for _, n := range d.cluster.Nodes() {
		if want[n.ID()] {
			out = append(out, n)
		}
	}
	return out
}

// dashboardClient returns a client of the head's Ray dashboard, reached
// through the head's SSH connection.
func (d *Deployer) dashboardClient() (*raydash.Client, error) {
	tok, err := d.cluster.rayToken()
	if err != nil {
		return nil, err
	}
	head := d.cluster.Nodes()[0]
	return raydash.New(raydash.Config{
		BaseURL:    fmt.Sprintf("http://127.0.0.1:%d", d.cluster.Ray.Ports.Dashboard),
		Token:      tok,
		HTTPClient: d.conn.httpClient(head, 15*time.Second),
	})
}
