package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/internal/fence"
)

// Errors of the runner, checkable with errors.Is. Decisions for another plan
// are reported with approval.ErrDigestMismatch, unacknowledged risks with
// approval.ErrRisksNotAcknowledged and expired decisions with approval.ErrExpired.
var (
	// ErrNotApproved means the approver said no (it is approval.ErrNotApproved).
	ErrNotApproved = approval.ErrNotApproved
	// ErrNoApprover means a checkpoint needs approval but the Runner has no Approver.
	ErrNoApprover = errors.New("checkpoint needs approval but no approver is configured")
	// ErrNoResult means Run reported nothing for a planned node.
	ErrNoResult = errors.New("no result reported for node")
)

// Options configure a Runner. StateDir is required.
type Options struct {
	// StateDir holds the ledger, the lock and failure records (created 0700).
	StateDir string
	// Nodes are the cluster's nodes; an empty plan records them as skipped-satisfied.
	Nodes []string
	// Approver decides on checkpoints that need approval. Its decisions are
	// completed from the request (approval.Complete: plan digest, request
	// ID, time, approver) and must pass approval.Check.
	Approver approval.Approver
	// Audit, if set, records every approval request, decision (or error) and
	// the outcome of the checkpoint it was for: the Runner wraps Approver with
	// approval.Audited itself, so the Approver must not be audited already.
	Audit *approval.AuditLog
	// Events receives progress events; see EventSink for the delivery guarantees.
	Events EventSink
	// EventBuffer is the number of events buffered for a slow sink. 0 (the
	// default) sizes it from the run: at least DefaultEventBuffer, raised
	// before each checkpoint's node events to hold them all (2 per planned
	// node), up to MaxEventBuffer. A positive value fixes it.
	EventBuffer int
	// EventFlushTimeout bounds the wait for the sink at the end of a run (default 5s).
	EventFlushTimeout time.Duration
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// ResumeCommand is written into failure records; "{checkpoint}" is replaced
	// by the failed checkpoint's name, e.g. "deploy-master --deploy --config c.yaml".
	ResumeCommand string
	// RequestedBy names who asks for approvals (default approval.CurrentUser()).
	RequestedBy string
	// Lock tunes the state directory lock.
	Lock LockOptions
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Runner runs the checkpoints of a List against a state directory it holds
// locked from Open to Close. Runs are serialized.
type Runner struct {
	list  *List
	opts  Options
	store *Store
	lock  *Lock
	log   *slog.Logger
	ev    *dispatcher
	mu    sync.Mutex
}

// Open locks opts.StateDir and returns a Runner over list. A second Runner on
// the same state directory gets a *LockedError while this one is open.
func Open(ctx context.Context, list *List, opts Options) (*Runner, error) {
	if opts.StateDir == "" {
		return nil, errors.New("checkpoint runner: no state directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.EventBuffer < 0 {
		return nil, fmt.Errorf("checkpoint runner: EventBuffer %d must not be negative", opts.EventBuffer)
	}
	if opts.EventFlushTimeout <= 0 {
		opts.EventFlushTimeout = 5 * time.Second
	}
	if opts.RequestedBy == "" {
		opts.RequestedBy = approval.CurrentUser()
	}
	if opts.Lock.Logger == nil {
		opts.Lock.Logger = opts.Logger
	}
	if opts.Approver != nil {
		opts.Approver = approval.Completed(opts.Approver)
		if opts.Audit != nil {
			opts.Approver = approval.Audited(opts.Approver, opts.Audit)
		}
	}
	lock, err := AcquireLock(ctx, opts.StateDir, opts.Lock)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(opts.StateDir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := store.Load(); err != nil {
		lock.Close()
		return nil, err
	}
	return &Runner{list: list, opts: opts, store: store, lock: lock, log: opts.Logger,
		ev: newDispatcher(opts.Events, opts.EventBuffer)}, nil
}

// Close delivers pending events (bounded by EventFlushTimeout) and releases the lock.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev.close(r.opts.EventFlushTimeout)
	return r.lock.Close()
}

// DroppedEvents counts the events not delivered because the sink was too slow.
func (r *Runner) DroppedEvents() int64 { return r.ev.dropped.Load() }

// Store returns the ledger store.
func (r *Runner) Store() *Store { return r.store }

// RunOptions select what a run covers. At most one of Only and StartFrom.
type RunOptions struct {
	// Only runs just this checkpoint.
	Only string
	// StartFrom runs this checkpoint and all after it.
	StartFrom string
	// Resume skips checkpoints whose ledger record is succeeded or
	// skipped-satisfied with the same config digest.
	Resume bool
}

// CheckpointReport is the outcome of one checkpoint in a run.
type CheckpointReport struct {
	// Name is the checkpoint's name.
	Name string
	// Status is its status at the end of the run.
	Status  Status
	Skipped string // why it was not run, if it was not
	// Plan is the plan made (zero: skipped on resume, or planning failed).
	Plan Plan
	// Decision is the approver's decision (nil: none asked for, or none
	// obtained).
	Decision *approval.Decision
	// Nodes are the results of each planned node.
	Nodes []NodeResult
	// Err is why it failed (nil: it did not).
	Err error
}

// Report is the outcome of a run, in order.
type Report struct {
	// Checkpoints holds one report per checkpoint reached, in order.
	Checkpoints []CheckpointReport
}

// Info describes a checkpoint and its ledger status, for listings.
type Info struct {
	// Name is the checkpoint's name.
	Name string
	// Description says what it does.
	Description string
	// NeedsApproval is true when a non-empty plan needs approval.
	NeedsApproval bool
	// Destructive is true when it removes what cannot be restored.
	Destructive bool
	// Status is its ledger status (StatusPending: no record).
	Status Status
}

// List describes the checkpoints in order with their ledger status.
func (r *Runner) List() ([]Info, error) {
	l, err := r.store.Load()
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, c := range r.list.Checkpoints() {
		st := StatusPending
		if rec := l.Checkpoints[c.Name()]; rec != nil {
			st = rec.Status
		}
		out = append(out, Info{c.Name(), c.Description(), c.NeedsApproval(), c.Destructive(), st})
	}
	return out, nil
}

// RunAll runs every checkpoint in order.
func (r *Runner) RunAll(ctx context.Context) (*Report, error) { return r.Run(ctx, RunOptions{}) }

// RunOne runs only the checkpoint called name.
func (r *Runner) RunOne(ctx context.Context, name string) (*Report, error) {
	return r.Run(ctx, RunOptions{Only: name})
}

// RunFrom runs the checkpoint called name and all after it.
func (r *Runner) RunFrom(ctx context.Context, name string) (*Report, error) {
	return r.Run(ctx, RunOptions{StartFrom: name})
}

// Resume runs every checkpoint that has not succeeded with its current config digest.
func (r *Runner) Resume(ctx context.Context) (*Report, error) {
	return r.Run(ctx, RunOptions{Resume: true})
}

func (r *Runner) selectCheckpoints(o RunOptions) ([]Checkpoint, error) {
	all := r.list.Checkpoints()
	switch {
	case o.Only != "" && o.StartFrom != "":
		return nil, errors.New("checkpoint runner: give Only or StartFrom, not both")
	case o.Only != "":
		c, err := r.list.Get(o.Only)
		if err != nil {
			return nil, err
		}
		return []Checkpoint{c}, nil
	case o.StartFrom != "":
		i, err := r.list.index(o.StartFrom)
		if err != nil {
			return nil, err
		}
		return all[i:], nil
	}
	return all, nil
}

func configDigest(c Checkpoint) string {
	if d, ok := c.(ConfigDigester); ok {
		return d.ConfigDigest()
	}
	return ""
}

func (r *Runner) nodesOf(c Checkpoint) []string {
	if nl, ok := c.(NodeLister); ok {
		return nl.Nodes()
	}
	return r.opts.Nodes
}

func alreadyDone(l *Ledger, c Checkpoint) bool {
	rec := l.Checkpoints[c.Name()]
	return rec != nil && rec.Status.Done() && rec.ConfigDigest == configDigest(c)
}

// DryRun plans the selected checkpoints and changes nothing: no Run, no
// approval, no ledger write. It plans every selected checkpoint even when
// one fails: a failed plan is returned with its Errors filled in (per node
// where the failure names nodes) and the items it could make, and the
// returned error joins every failure. Print each Plan with its String method.
func (r *Runner) DryRun(ctx context.Context, o RunOptions) ([]Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx = fence.With(ctx, r.lock.Check)
	cps, err := r.selectCheckpoints(o)
	if err != nil {
		return nil, err
	}
	l, err := r.store.Load()
	if err != nil {
		return nil, err
	}
	var plans []Plan
	var errs []error
	for _, c := range cps {
		if err := ctx.Err(); err != nil {
			return plans, errors.Join(append(errs, err)...)
		}
		if o.Resume && alreadyDone(l, c) {
			continue
		}
		p, err := safePlan(ctx, c)
		if err != nil {
			p.Errors = planErrors(err)
			errs = append(errs, fmt.Errorf("checkpoint %s: plan: %w", c.Name(), err))
		}
		r.ev.emit(CheckpointPlanned{Checkpoint: c.Name(), Plan: p, Digest: p.Digest(), At: r.opts.Now()})
		plans = append(plans, p)
	}
	r.ev.drain(r.opts.EventFlushTimeout)
	return plans, errors.Join(errs...)
}

// planErrors turns a Plan error into one PlanError per failed node, or one
// for AllNodes when the error names no node.
func planErrors(err error) []PlanError {
	nes := NodeErrors(err)
	if len(nes) == 0 {
		return []PlanError{{Node: AllNodes, Error: err.Error()}}
	}
	out := make([]PlanError, 0, len(nes))
	for _, ne := range nes {
		msg := ne.Err.Error()
		if ne.Op != "" {
			msg = ne.Op + ": " + msg
		}
		out = append(out, PlanError{Node: ne.Node, Error: msg})
	}
	return out
}

// Run runs the selected checkpoints in order and stops at the first failure,
// which it returns wrapped as "checkpoint <name>: ..." (node failures as
// *NodeError values inside a *multierror.Error) after writing a FailureRecord.
func (r *Runner) Run(ctx context.Context, o RunOptions) (rep *Report, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep = &Report{}
	defer func() {
		r.ev.emitWait(RunFinished{Err: err, Dropped: r.ev.dropped.Load(), At: r.opts.Now()}, r.opts.EventFlushTimeout)
		r.ev.drain(r.opts.EventFlushTimeout)
	}()
	if err := r.lock.Check(); err != nil {
		return rep, err
	}
	ctx = fence.With(ctx, r.lock.Check)
	cps, err := r.selectCheckpoints(o)
	if err != nil {
		return rep, err
	}
	l, err := r.store.Load()
	if err != nil {
		return rep, err
	}
	for _, c := range cps {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if o.Resume && alreadyDone(l, c) {
			r.ev.emit(CheckpointSkipped{Checkpoint: c.Name(), Reason: "already succeeded", At: r.opts.Now()})
			rep.Checkpoints = append(rep.Checkpoints, CheckpointReport{Name: c.Name(), Status: l.Checkpoints[c.Name()].Status, Skipped: "already succeeded"})
			continue
		}
		cr, err := r.runOne(ctx, l, c)
		rep.Checkpoints = append(rep.Checkpoints, cr)
		if err != nil {
			err = fmt.Errorf("checkpoint %s: %w", c.Name(), err)
			r.ev.emit(CheckpointFailed{Checkpoint: c.Name(), Err: err, At: r.opts.Now()})
			r.log.Error("checkpoint failed", "checkpoint", c.Name(), "err", err)
			if errors.Is(err, ErrLockLost) {
				return rep, err // the state directory is another deployer's now
			}
			if ferr := r.writeFailure(c.Name(), cr, err); ferr != nil {
				return rep, errors.Join(err, ferr)
			}
			return rep, err
		}
	}
	if err := r.clearFailure(l); err != nil {
		return rep, err
	}
	return rep, nil
}

func (r *Runner) save(l *Ledger) error {
	if err := r.lock.Check(); err != nil {
		return err
	}
	l.UpdatedAt = r.opts.Now().UTC()
	if err := r.store.Save(l); err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	return nil
}

func safePlan(ctx context.Context, c Checkpoint) (p Plan, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("plan panicked: %v", v)
		}
	}()
	p, err = c.Plan(ctx)
	p.Checkpoint = c.Name()
	return p, err
}

func safeRun(ctx context.Context, c Checkpoint, p Plan) (res []NodeResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("run panicked: %v", v)
		}
	}()
	return c.Run(ctx, p)
}

const maxSummary = 2048

func clip(s string) string {
	if len(s) <= maxSummary {
		return s
	}
	return s[:maxSummary] + "…"
}

func (r *Runner) runOne(ctx context.Context, l *Ledger, c Checkpoint) (CheckpointReport, error) {
	name := c.Name()
	cr := CheckpointReport{Name: name, Status: StatusFailed}
	now := r.opts.Now
	r.ev.emit(CheckpointStarted{Checkpoint: name, At: now()})
	rec := l.Record(name)
	rec.Status, rec.StartedAt, rec.EndedAt, rec.Error, rec.Approval = StatusRunning, now().UTC(), time.Time{}, "", nil
	rec.ConfigDigest = configDigest(c)
	rec.PlanDigest = ""
	// Planning changes nothing, so the ledger is first written once the plan is
	// known: a satisfied re-run costs one atomic write per checkpoint.
	fail := func(err error) (CheckpointReport, error) {
		rec.Status, rec.EndedAt, rec.Error = StatusFailed, now().UTC(), err.Error()
		cr.Err = err
		if serr := r.save(l); serr != nil {
			return cr, errors.Join(err, serr)
		}
		return cr, err
	}

	plan, err := safePlan(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("plan: %w", err))
	}
	digest := plan.Digest()
	cr.Plan = plan
	rec.PlanDigest = digest
	r.ev.emit(CheckpointPlanned{Checkpoint: name, Plan: plan, Digest: digest, At: now()})
	r.log.Info("checkpoint planned", "checkpoint", name, "items", len(plan.Items), "digest", digest)

	if plan.Empty() {
		t := now().UTC()
		for _, n := range r.nodesOf(c) {
			nr := l.Node(name, n)
			*nr = NodeRecord{Status: StatusSkippedSatisfied, StartedAt: t, EndedAt: t, Summary: "already satisfied"}
		}
		rec.Status, rec.EndedAt = StatusSkippedSatisfied, t
		cr.Status, cr.Skipped = StatusSkippedSatisfied, "already satisfied"
		r.ev.emit(CheckpointSkipped{Checkpoint: name, Reason: "already satisfied", At: now()})
		return cr, r.save(l)
	}

	var ref *ApprovalRef
	if c.NeedsApproval() || c.Destructive() {
		d, reqID, err := r.approve(ctx, c, plan, digest)
		if d != nil {
			cr.Decision = d
		}
		if err != nil {
			r.auditOutcome(ctx, name, reqID, "refused", err)
			return fail(err)
		}
		ref = &ApprovalRef{DecisionID: d.ID, By: d.By, Channel: string(d.Channel), PlanDigest: d.PlanDigest}
		rec.Approval = ref
		defer func() { r.auditOutcome(ctx, name, reqID, string(cr.Status), cr.Err) }()
	}

	planned := plan.Nodes()
	// Room for this checkpoint's node events (started, finished) and the
	// few after them, so a sink that keeps up on average loses none.
	r.ev.reserve(2*len(planned) + 8)
	t := now().UTC()
	for _, n := range planned {
		nr := l.Node(name, n)
		*nr = NodeRecord{Status: StatusRunning, StartedAt: t, Approval: ref}
	}
	if err := r.save(l); err != nil {
		return fail(err)
	}
	for _, n := range planned {
		r.ev.emit(NodeStarted{Checkpoint: name, Node: n, At: t})
	}

	results, runErr := safeRun(ctx, c, plan)
	byNode := map[string]NodeResult{}
	for _, res := range results {
		byNode[res.Node] = res
	}
	var errs *multierror.Error
	end := now().UTC()
	for _, n := range planned {
		res, ok := byNode[n]
		if !ok {
			res = NodeResult{Node: n, Err: ErrNoResult}
			if runErr != nil {
				res.Err = runErr
			}
		}
		nr := l.Node(name, n)
		nr.EndedAt, nr.Summary = end, clip(res.Summary)
		if res.Err != nil {
			nr.Status, nr.Error = StatusFailed, clip(res.Err.Error())
			errs = multierror.Append(errs, &NodeError{Checkpoint: name, Node: n, Err: res.Err})
		} else {
			nr.Status = StatusSucceeded
		}
		cr.Nodes = append(cr.Nodes, res)
		r.ev.emit(NodeFinished{Checkpoint: name, Node: n, Status: nr.Status, Summary: nr.Summary, Err: res.Err, At: end})
		r.log.Info("node finished", "checkpoint", name, "node", n, "status", nr.Status)
	}
	isPlanned := make(map[string]bool, len(planned))
	for _, n := range planned {
		isPlanned[n] = true
	}
	for _, n := range r.nodesOf(c) {
		if !isPlanned[n] {
			nr := l.Node(name, n)
			*nr = NodeRecord{Status: StatusSkippedSatisfied, StartedAt: end, EndedAt: end, Summary: "nothing planned"}
		}
	}
	if runErr != nil {
		return fail(fmt.Errorf("run: %w", runErr))
	}
	if err := errs.ErrorOrNil(); err != nil {
		errs.ErrorFormat = nodeErrorFormat
		return fail(errs)
	}
	rec.Status, rec.EndedAt = StatusSucceeded, end
	cr.Status = StatusSucceeded
	if err := r.save(l); err != nil {
		return fail(err)
	}
	r.ev.emit(CheckpointFinished{Checkpoint: name, At: now()})
	return cr, nil
}

func nodeErrorFormat(es []error) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("%d node(s) failed: %s", len(es), strings.Join(parts, "; "))
}

func (r *Runner) auditOutcome(ctx context.Context, name, reqID, outcome string, err error) {
	if r.opts.Audit == nil {
		return
	}
	if aerr := r.opts.Audit.RecordOutcome(context.WithoutCancel(ctx), name, reqID, outcome, err); aerr != nil {
		r.log.Error("audit outcome not recorded", "checkpoint", name, "err", aerr)
	}
}

// approve asks the Approver and accepts only an approved decision for exactly
// this plan digest (with risks acknowledged when destructive, not expired).
func (r *Runner) approve(ctx context.Context, c Checkpoint, plan Plan, digest string) (*approval.Decision, string, error) {
	req := approval.Request{
		ID: approval.NewID(), Checkpoint: c.Name(), Description: c.Description(),
		Destructive: c.Destructive(), PlanDigest: digest,
		RequestedBy: requester(ctx, r.opts.RequestedBy), RequestedAt: r.opts.Now().UTC(),
	}
	if rd, ok := c.(RiskDescriber); ok {
		req.Risks = rd.Risks()
	}
	req.Plan = plan.Items
	if r.opts.Approver == nil {
		return nil, req.ID, ErrNoApprover
	}
	r.ev.emit(ApprovalWaiting{Checkpoint: c.Name(), Request: req, At: r.opts.Now()})
	r.log.Info("waiting for approval", "checkpoint", c.Name(), "request", req.ID, "digest", digest)
	d, err := r.opts.Approver.Approve(ctx, req)
	r.ev.emit(ApprovalDecided{Checkpoint: c.Name(), Decision: d, Err: err, At: r.opts.Now()})
	if err != nil {
		return nil, req.ID, fmt.Errorf("approval: %w", err)
	}
	r.log.Info("approval decided", "checkpoint", c.Name(), "decision", d.ID, "approved", d.Approved, "by", d.By, "channel", d.Channel)
	if err := approval.Check(req, d, r.opts.Now()); err != nil {
		return &d, req.ID, err
	}
	return &d, req.ID, nil
}
