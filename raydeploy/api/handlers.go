package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/fstrust"
)

func (s *Server) buildRoutes() {
	s.routes = []route{
		// The seed's contract.
		{"GET", "/api/v1/cluster/status", RoleViewer, false, s.getClusterStatus},
		{"GET", "/api/v1/cluster/health", RoleViewer, false, s.getClusterHealth},
		{"GET", "/api/v1/checkpoints", RoleViewer, false, s.listCheckpoints},
		{"GET", "/api/v1/checkpoints/{checkpoint_name}", RoleViewer, false, s.getCheckpoint},
		{"POST", "/api/v1/checkpoints/{checkpoint_name}", RoleOperator, true, s.postCheckpoint},
		{"GET", "/api/v1/approvals/{checkpoint_name}", RoleViewer, false, s.getApprovalInfo},
		{"POST", "/api/v1/approvals/{checkpoint_name}", RoleApprover, true, s.postSeedApproval},
		{"GET", "/api/v1/nodes", RoleViewer, false, s.listNodes},
		{"GET", "/api/v1/nodes/{node_name}", RoleViewer, false, s.getNode},
		{"GET", "/api/v1/monitoring/prometheus", RoleViewer, false, s.prometheusMetrics},
		{"GET", "/api/v1/monitoring/grafana/dashboards", RoleViewer, false, s.listDashboards},
		// This server's additions.
		{"GET", "/api/v1/whoami", RoleViewer, false, s.whoami},
		{"POST", "/api/v1/plans", RoleOperator, true, s.postPlan},
		{"GET", "/api/v1/executions", RoleViewer, false, s.listExecutions},
		{"POST", "/api/v1/executions", RoleOperator, true, s.postExecution},
		{"GET", "/api/v1/executions/{execution_id}", RoleViewer, false, s.getExecution},
		{"POST", "/api/v1/executions/{execution_id}/cancel", RoleOperator, true, s.cancelExecution},
		{"POST", "/api/v1/executions/{execution_id}/resume", RoleOperator, true, s.resumeExecution},
		{"GET", "/api/v1/approval-requests", RoleViewer, false, s.listApprovalRequests},
		{"POST", "/api/v1/approval-requests/{request_id}/decision", RoleApprover, true, s.decide},
		{"GET", "/api/v1/events", RoleViewer, false, s.events},
		{"GET", "/api/v1/audit", RoleViewer, false, s.getAudit},
		{"GET", "/api/v1/audit/verify", RoleViewer, false, s.verifyAudit},
		{"GET", "/metrics", RoleViewer, false, s.getMetrics},
		{"GET", "/api/v1/openapi.yaml", "", false, s.getOpenAPI},
		{"GET", "/healthz", "", false, s.healthz},
		{"GET", "/readyz", "", false, s.readyz},
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	mux.HandleFunc("OPTIONS /", s.preflight)
	static := http.FileServerFS(subFS())
	mux.Handle("GET /", s.wrap(route{Method: "GET", Pattern: "/", h: func(w http.ResponseWriter, r *http.Request, _ Principal) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/ui/") {
			s.fail(w, http.StatusNotFound, "NOT_FOUND", "no such path")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/ui")
		if r2.URL.Path == "" {
			r2.URL.Path = "/"
		}
		if _, err := fs.Stat(subFS(), strings.TrimPrefix(r2.URL.Path, "/")); r2.URL.Path != "/" && err != nil {
			s.fail(w, http.StatusNotFound, "NOT_FOUND", "no such file")
			return
		}
		static.ServeHTTP(w, r2)
	}}))
	s.mux = mux
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ Principal) {
	d, _ := s.deployer()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	switch {
	case d == nil:
		s.fail(w, http.StatusServiceUnavailable, "NOT_READY", "not attached to a cluster yet")
	case closed:
		s.fail(w, http.StatusServiceUnavailable, "NOT_READY", "shutting down")
	default:
		if _, err := readLedger(d.Cluster().StateDir); err != nil {
			s.fail(w, http.StatusServiceUnavailable, "NOT_READY", "the ledger cannot be read")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func (s *Server) getOpenAPI(w http.ResponseWriter, _ *http.Request, _ Principal) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openapiYAML)
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request, _ Principal) {
	promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, p Principal) {
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) getClusterStatus(w http.ResponseWriter, r *http.Request, _ Principal) {
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d, _ := s.deployer()
	st := ClusterStatus{
		Cluster: d.Cluster().Name, CompletedCheckpoints: []string{}, TotalCheckpoints: len(sn.infos),
		CheckpointDetails: map[string]CheckpointStatus{}, Checkpoints: []string{},
		ClusterHealth: s.health(), LastUpdated: sn.ledger.UpdatedAt.UTC(), RunningExecution: s.currentExec(),
		PendingApprovals: len(s.queue.Pending()), Links: s.links(),
	}
	if st.LastUpdated.IsZero() {
		st.LastUpdated = time.Now().UTC()
	}
	failed, running := false, st.RunningExecution != ""
	for _, info := range sn.infos {
		cs := sn.checkpointStatus(info)
		st.CheckpointDetails[info.Name] = cs
		st.Checkpoints = append(st.Checkpoints, info.Name)
		switch cs.Status {
		case "PASSED":
			st.CompletedCheckpoints = append(st.CompletedCheckpoints, info.Name)
		case "FAILED":
			failed = true
		case "IN_PROGRESS":
			running = true
		}
	}
	switch {
	case running:
		st.DeploymentStatus = "IN_PROGRESS"
	case failed:
		st.DeploymentStatus = "FAILED"
	case len(st.CompletedCheckpoints) == len(sn.infos):
		st.DeploymentStatus = "COMPLETED"
	default:
		st.DeploymentStatus = "IN_PROGRESS"
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) getClusterHealth(w http.ResponseWriter, _ *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, s.health())
}

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request, _ Principal) {
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := []CheckpointStatus{}
	for _, info := range sn.infos {
		out = append(out, sn.checkpointStatus(info))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) checkpointOr404(w http.ResponseWriter, r *http.Request) (*snapshot, checkpoint.Info, bool) {
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return nil, checkpoint.Info{}, false
	}
	name := r.PathValue("checkpoint_name")
	info, ok := sn.info(name)
	if !ok {
		names := make([]string, len(sn.infos))
		for i, in := range sn.infos {
			names[i] = in.Name
		}
		s.fail(w, http.StatusNotFound, "CHECKPOINT_NOT_FOUND", fmt.Sprintf("unknown checkpoint %q; valid checkpoints: %s", name, strings.Join(names, ", ")))
		return nil, checkpoint.Info{}, false
	}
	return sn, info, true
}

func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request, _ Principal) {
	sn, info, ok := s.checkpointOr404(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, sn.checkpointStatus(info))
}

// CheckpointExecutionRequest is the body of POST /api/v1/checkpoints/{name} (the seed's).
type CheckpointExecutionRequest struct {
	// Force is the seed's; this server refuses true (prerequisites are never skipped).
	Force bool `json:"force"`
	// Approve says the caller knows the checkpoint needs approval: the run
	// starts and waits in the approval queue for an approver's decision.
	Approve bool `json:"approve"`
}

// CheckpointExecution is the answer 202 of POST /api/v1/checkpoints/{name} (the seed's).
type CheckpointExecution struct {
	// Checkpoint is the checkpoint started.
	Checkpoint string `json:"checkpoint"`
	// ExecutionID is the new execution (GET /api/v1/executions/{id}).
	ExecutionID string `json:"execution_id"`
	// Status is STARTED.
	Status string `json:"status"`
	// StartedAt is when the execution started, UTC.
	StartedAt time.Time `json:"started_at"`
	// Message says what happens next (for a checkpoint that needs approval:
	// where it waits).
	Message string `json:"message"`
}

// ApprovalInfo is the seed's ApprovalInfo; Pending (an addition) is the
// request waiting for a decision, if any.
type ApprovalInfo struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint"`
	// Required (approval_required) is true when a run waits for an approver's
	// decision.
	Required bool `json:"approval_required"`
	// Destructive (destructive_operation) is true when the checkpoint removes
	// what cannot be restored.
	Destructive bool `json:"destructive_operation"`
	// Message says in words what approval the checkpoint needs.
	Message string `json:"message"`
	// ImpactSummary lists the pending request's risks, then each plan item as
	// "node: action detail" (empty: no request pending).
	ImpactSummary []string `json:"impact_summary"`
	// Pending is the request waiting for a decision (null: none).
	Pending *ApprovalRequest `json:"pending"`
}

// ApprovalRequired is the seed's 400 answer when approval is needed.
type ApprovalRequired struct {
	// Error is "APPROVAL_REQUIRED".
	Error string `json:"error"`
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint"`
	// ApprovalInfo is what GET /api/v1/approvals/{name} answers.
	ApprovalInfo ApprovalInfo `json:"approval_info"`
	// Message says how to start the checkpoint anyway: send {"approve":
	// true}.
	Message string `json:"message"`
}

func (s *Server) approvalInfo(info checkpoint.Info) ApprovalInfo {
	ai := ApprovalInfo{Checkpoint: info.Name, Required: info.NeedsApproval || info.Destructive, Destructive: info.Destructive, ImpactSummary: []string{}}
	switch {
	case info.Destructive:
		ai.Message = "destructive: needs an approver's decision with the risks acknowledged, bound to the plan digest"
	case ai.Required:
		ai.Message = "needs an approver's decision bound to the plan digest"
	default:
		ai.Message = "runs without approval"
	}
	for _, req := range s.queue.Pending() {
		if req.Checkpoint == info.Name {
			ar := s.toRequest(req)
			ai.Pending = &ar
			ai.ImpactSummary = append(ai.ImpactSummary, req.Risks...)
			for _, it := range req.Plan {
				ai.ImpactSummary = append(ai.ImpactSummary, it.Node+": "+it.Action+" "+it.Detail)
			}
			break
		}
	}
	return ai
}

func (s *Server) postCheckpoint(w http.ResponseWriter, r *http.Request, p Principal) {
	var body CheckpointExecutionRequest
	if err := decode(r, &body, true); err != nil {
		s.badBody(w, err)
		return
	}
	_, info, ok := s.checkpointOr404(w, r)
	if !ok {
		return
	}
	if body.Force {
		s.fail(w, http.StatusBadRequest, "FORCE_UNSUPPORTED", "force: prerequisites are never skipped; fix what prerequisites-check reports")
		return
	}
	if (info.NeedsApproval || info.Destructive) && !body.Approve {
		ai := s.approvalInfo(info)
		writeJSON(w, http.StatusBadRequest, ApprovalRequired{Error: "APPROVAL_REQUIRED", Checkpoint: info.Name, ApprovalInfo: ai,
			Message: "checkpoint " + info.Name + " needs approval: send {\"approve\": true} to start it; it then waits for an approver's decision"})
		return
	}
	ex, err := s.start(p, checkpoint.RunOptions{Only: info.Name}, "")
	if err != nil {
		s.startFailed(w, r, err)
		return
	}
	msg := "checkpoint " + info.Name + " started"
	if info.NeedsApproval || info.Destructive {
		msg += "; it waits for an approver's decision (GET /api/v1/approval-requests)"
	}
	writeJSON(w, http.StatusAccepted, CheckpointExecution{Checkpoint: info.Name, ExecutionID: ex.ID, Status: ExecStarted, StartedAt: ex.StartedAt, Message: msg})
}

var errBusy = errors.New("busy")

func (s *Server) startFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBusy):
		s.fail(w, http.StatusConflict, "EXECUTION_RUNNING", "an execution or plan is in progress ("+s.currentExec()+"); wait for it or cancel it")
	case errors.Is(err, errShutdown):
		s.fail(w, http.StatusServiceUnavailable, "NOT_READY", "shutting down")
	default:
		s.internal(w, r, err)
	}
}

// ExecutionRequest is the body of POST /api/v1/executions. At most one of
// Checkpoint and StartFrom; none runs every checkpoint.
type ExecutionRequest struct {
	// Checkpoint runs only this checkpoint (empty: every one, or those from
	// StartFrom).
	Checkpoint string `json:"checkpoint"`
	// StartFrom runs this checkpoint and those after it (empty: from the
	// first).
	StartFrom string `json:"start_from"`
	// Resume skips checkpoints that already succeeded with the same
	// configuration.
	Resume bool `json:"resume"`
}

func (s *Server) runOptions(w http.ResponseWriter, r *http.Request, er ExecutionRequest) (checkpoint.RunOptions, bool) {
	o := checkpoint.RunOptions{Only: er.Checkpoint, StartFrom: er.StartFrom, Resume: er.Resume}
	if o.Only != "" && o.StartFrom != "" {
		s.fail(w, http.StatusBadRequest, "BAD_REQUEST", "give checkpoint or start_from, not both")
		return o, false
	}
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return o, false
	}
	for field, name := range map[string]string{"checkpoint": o.Only, "start_from": o.StartFrom} {
		if _, ok := sn.info(name); name != "" && !ok {
			s.fail(w, http.StatusNotFound, "CHECKPOINT_NOT_FOUND", fmt.Sprintf("%s: unknown checkpoint %q", field, name))
			return o, false
		}
	}
	return o, true
}

func (s *Server) postExecution(w http.ResponseWriter, r *http.Request, p Principal) {
	var er ExecutionRequest
	if err := decode(r, &er, true); err != nil {
		s.badBody(w, err)
		return
	}
	o, ok := s.runOptions(w, r, er)
	if !ok {
		return
	}
	ex, err := s.start(p, o, "")
	if err != nil {
		s.startFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, ex)
}

func (s *Server) listExecutions(w http.ResponseWriter, _ *http.Request, _ Principal) {
	_, st := s.deployer()
	writeJSON(w, http.StatusOK, st.list())
}

func (s *Server) execOr404(w http.ResponseWriter, r *http.Request) (Execution, bool) {
	_, st := s.deployer()
	id := r.PathValue("execution_id")
	ex, ok := st.get(id)
	if !ok {
		s.fail(w, http.StatusNotFound, "EXECUTION_NOT_FOUND", fmt.Sprintf("no execution %q", id))
	}
	return ex, ok
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request, _ Principal) {
	if ex, ok := s.execOr404(w, r); ok {
		writeJSON(w, http.StatusOK, ex)
	}
}

func (s *Server) cancelExecution(w http.ResponseWriter, r *http.Request, _ Principal) {
	ex, ok := s.execOr404(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	cur := s.current
	s.mu.Unlock()
	if cur == nil || cur.execID != ex.ID {
		s.fail(w, http.StatusConflict, "NOT_RUNNING", "execution "+ex.ID+" is "+ex.Status+", not running")
		return
	}
	cur.cancel(errCancel)
	writeJSON(w, http.StatusAccepted, ex)
}

func (s *Server) resumeExecution(w http.ResponseWriter, r *http.Request, p Principal) {
	ex, ok := s.execOr404(w, r)
	if !ok {
		return
	}
	switch ex.Status {
	case ExecInterrupted, ExecFailed, ExecCancelled:
	default:
		s.fail(w, http.StatusConflict, "NOT_RESUMABLE", "execution "+ex.ID+" is "+ex.Status+"; only INTERRUPTED, FAILED or CANCELLED ones resume")
		return
	}
	o := checkpoint.RunOptions{Only: ex.Checkpoint, StartFrom: ex.StartFrom, Resume: true}
	nex, err := s.start(p, o, ex.ID)
	if err != nil {
		s.startFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, nex)
}

// start records a new execution and runs it in the background.
func (s *Server) start(p Principal, o checkpoint.RunOptions, resumeOf string) (Execution, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Execution{}, errShutdown
	}
	if s.current != nil {
		s.mu.Unlock()
		return Execution{}, errBusy
	}
	ex := &Execution{ID: approval.NewID(), Status: ExecStarted, Checkpoint: o.Only, StartFrom: o.StartFrom, Resume: o.Resume,
		ResumeOf: resumeOf, RequestedBy: p.Name, StartedAt: time.Now().UTC(), Checkpoints: []ExecutionCheckpoint{}}
	if err := s.execs.put(ex); err != nil {
		s.mu.Unlock()
		return Execution{}, err
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	ctx = checkpoint.WithRequester(ctx, p.Name)
	s.current = &running{execID: ex.ID, cancel: cancel}
	d := s.d
	s.wg.Add(1)
	s.mu.Unlock()
	s.publish(Event{Type: EventExecution, ExecutionID: ex.ID, Status: ExecStarted, At: ex.StartedAt})
	out := clone(ex) // before run updates ex
	go s.run(ctx, d, ex.ID, o)
	return out, nil
}

func (s *Server) run(ctx context.Context, d Deployer, id string, o checkpoint.RunOptions) {
	defer s.wg.Done()
	s.execs.update(id, func(e *Execution) { e.Status = ExecRunning })
	rep, err := d.Deploy(ctx, o)
	status := ExecCompleted
	switch {
	case err == nil:
	case errors.Is(context.Cause(ctx), errShutdown):
		status = ExecInterrupted
	case errors.Is(context.Cause(ctx), errCancel):
		status = ExecCancelled
	default:
		status = ExecFailed
	}
	ex, uerr := s.execs.update(id, func(e *Execution) {
		e.Status = status
		t := time.Now().UTC()
		e.EndedAt = &t
		if rep != nil {
			for _, c := range rep.Checkpoints {
				st := string(c.Status)
				if c.Skipped != "" && c.Status.Done() {
					st = string(checkpoint.StatusSkippedSatisfied)
				}
				msg := ""
				if c.Err != nil {
					msg = s.clean(c.Err.Error())
				}
				e.setCheckpoint(c.Name, st, msg)
			}
		}
		if err != nil {
			e.Error = s.clean(err.Error())
		}
		switch status {
		case ExecInterrupted:
			e.Message = "the server stopped while this execution ran; resume it with POST /api/v1/executions/" + e.ID + "/resume"
		case ExecCancelled:
			e.Message = "cancelled through the API"
		case ExecCompleted:
			e.Message = "completed"
		default:
			e.Message = "failed; resume it with POST /api/v1/executions/" + e.ID + "/resume once the cause is fixed"
		}
	})
	if uerr != nil {
		s.log.Error("execution record not saved", "execution", id, "err", uerr)
	}
	cancelCurrent := func() {
		s.mu.Lock()
		if s.current != nil && s.current.execID == id {
			s.current.cancel(nil)
			s.current = nil
		}
		s.mu.Unlock()
	}
	cancelCurrent()
	s.containers().kick()
	s.publish(Event{Type: EventExecution, ExecutionID: id, Status: ex.Status, Error: ex.Error, At: time.Now().UTC()})
}

// PlanRequest is the body of POST /api/v1/plans.
type PlanRequest struct {
	// Checkpoint plans only this checkpoint (empty: every one, or those from
	// StartFrom).
	Checkpoint string `json:"checkpoint"`
	// StartFrom plans this checkpoint and those after it (empty: from the
	// first).
	StartFrom string `json:"start_from"`
	// Resume leaves out checkpoints that already succeeded with the same
	// configuration.
	Resume bool `json:"resume"`
}

// PlanAnswer is the dry run: the plan of each selected checkpoint, per node,
// with its digest (an approval binds to that digest).
type PlanAnswer struct {
	// GeneratedAt is when the plans were made, UTC.
	GeneratedAt time.Time `json:"generated_at"`
	// Plans is the plan of each checkpoint planned, in order.
	Plans []CheckpointPlan `json:"plans"`
	// Error is why planning stopped early (empty: it did not).
	Error string `json:"error,omitempty"`
}

// CheckpointPlan is one checkpoint's plan.
type CheckpointPlan struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint"`
	// Description says what the checkpoint does.
	Description string `json:"description"`
	// NeedsApproval (approval_required) is true when a run waits for an
	// approver's decision.
	NeedsApproval bool `json:"approval_required"`
	// Destructive (destructive_operation) is true when the checkpoint removes
	// what cannot be restored.
	Destructive bool `json:"destructive_operation"`
	// Digest (plan_digest) is the plan's digest; an approval binds to it.
	Digest string `json:"plan_digest"`
	// Empty is true when there is nothing to change (the checkpoint is
	// satisfied).
	Empty bool `json:"empty"`
	// Items is every planned change, all nodes.
	Items []PlanItem `json:"items"`
	// Nodes is the same items by node ID ("*": the whole cluster).
	Nodes map[string][]PlanItem `json:"nodes"`
}

// PlanItem is one planned change on one node ("*": the whole cluster), with
// the machine-readable target the plan digest covers.
type PlanItem = approval.PlanItem

func (s *Server) postPlan(w http.ResponseWriter, r *http.Request, p Principal) {
	var pr PlanRequest
	if err := decode(r, &pr, true); err != nil {
		s.badBody(w, err)
		return
	}
	o, ok := s.runOptions(w, r, ExecutionRequest(pr))
	if !ok {
		return
	}
	s.mu.Lock()
	if s.current != nil {
		s.mu.Unlock()
		s.startFailed(w, r, errBusy)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	s.current = &running{cancel: cancel}
	d := s.d
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.current = nil
		s.mu.Unlock()
		s.containers().kick()
	}()
	sn, err := s.snapshot(ctx)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	plans, perr := d.Plan(ctx, o)
	ans := PlanAnswer{GeneratedAt: time.Now().UTC(), Plans: []CheckpointPlan{}}
	for _, pl := range plans {
		info, _ := sn.info(pl.Checkpoint)
		cp := CheckpointPlan{Checkpoint: pl.Checkpoint, Description: info.Description, NeedsApproval: info.NeedsApproval || info.Destructive,
			Destructive: info.Destructive, Digest: pl.Digest(), Empty: pl.Empty(), Items: []PlanItem{}, Nodes: map[string][]PlanItem{}}
		for _, it := range pl.Items {
			pi := it
			cp.Items = append(cp.Items, pi)
			cp.Nodes[it.Node] = append(cp.Nodes[it.Node], pi)
		}
		ans.Plans = append(ans.Plans, cp)
	}
	if perr != nil {
		var le *checkpoint.LockedError
		if errors.As(perr, &le) {
			s.fail(w, http.StatusConflict, "LOCKED", "another deployment holds the cluster lock")
			return
		}
		ans.Error = s.clean(perr.Error())
	}
	writeJSON(w, http.StatusOK, ans)
}

// ApprovalRequest is a pending approval request as the API shows it.
type ApprovalRequest struct {
	// ID is the request's ID (POST /api/v1/approval-requests/{id}/decision).
	ID string `json:"id"`
	// Checkpoint is the checkpoint waiting to run.
	Checkpoint string `json:"checkpoint"`
	// Description says what the checkpoint does.
	Description string `json:"description"`
	// Destructive is true when the checkpoint removes what cannot be
	// restored; approving it needs acknowledge_risks.
	Destructive bool `json:"destructive"`
	// Risks lists what could go wrong (empty: none described).
	Risks []string `json:"risks"`
	// Plan is the changes an approval allows.
	Plan []PlanItem `json:"plan"`
	// PlanDigest is the plan's digest; a decision must carry it.
	PlanDigest string `json:"plan_digest"`
	// RequestedBy is the principal who started the run.
	RequestedBy string `json:"requested_by"`
	// RequestedAt is when the request was made, UTC.
	RequestedAt time.Time `json:"requested_at"`
	// ExpiresAt is RequestedAt plus Config.ApprovalTimeout: when the waiting
	// run gives up (approval.ErrTimeout).
	ExpiresAt time.Time `json:"expires_at"`
	// ExecutionID is the execution in progress, the one waiting (empty:
	// none).
	ExecutionID string `json:"execution_id,omitempty"`
}

func (s *Server) toRequest(r approval.Request) ApprovalRequest {
	ar := ApprovalRequest{ID: r.ID, Checkpoint: r.Checkpoint, Description: r.Description, Destructive: r.Destructive,
		Risks: append([]string{}, r.Risks...), Plan: []PlanItem{}, PlanDigest: r.PlanDigest, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt.UTC(), ExpiresAt: r.RequestedAt.Add(s.cfg.ApprovalTimeout).UTC(), ExecutionID: s.currentExec()}
	for _, it := range r.Plan {
		ar.Plan = append(ar.Plan, it)
	}
	return ar
}

func (s *Server) listApprovalRequests(w http.ResponseWriter, _ *http.Request, _ Principal) {
	out := []ApprovalRequest{}
	for _, r := range s.queue.Pending() {
		out = append(out, s.toRequest(r))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getApprovalInfo(w http.ResponseWriter, r *http.Request, _ Principal) {
	_, info, ok := s.checkpointOr404(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.approvalInfo(info))
}

// DecisionRequest is the body of POST /api/v1/approval-requests/{id}/decision.
type DecisionRequest struct {
	// Approved: true approves, false rejects.
	Approved bool `json:"approved"`
	// PlanDigest must be the digest of the plan the approver saw.
	PlanDigest string `json:"plan_digest"`
	// Reason is recorded with the decision.
	Reason string `json:"reason"`
	// AcknowledgeRisks is required to approve a destructive checkpoint.
	AcknowledgeRisks bool `json:"acknowledge_risks"`
}

// DecisionAnswer is a recorded decision.
type DecisionAnswer struct {
	// ID is the decision's ID.
	ID string `json:"id"`
	// RequestID is the request decided.
	RequestID string `json:"request_id"`
	// Checkpoint is the checkpoint the request was for.
	Checkpoint string `json:"checkpoint"`
	// Approved is true for an approval, false for a rejection.
	Approved bool `json:"approved"`
	// By is the authenticated principal who decided.
	By string `json:"by"`
	// Reason is as given in the request (empty: none).
	Reason string `json:"reason"`
	// RisksAcknowledged is the acknowledge_risks given.
	RisksAcknowledged bool `json:"risks_acknowledged"`
	// DecidedAt is when the decision was recorded, UTC.
	DecidedAt time.Time `json:"decided_at"`
	// PlanDigest is the digest of the plan the decision covers.
	PlanDigest string `json:"plan_digest"`
}

// SeedApprovalRequest is the seed's ApprovalRequest body. ApprovedBy is kept
// for compatibility and ignored: the approver is the authenticated principal.
type SeedApprovalRequest struct {
	// ApprovedBy must not be empty, but the authenticated principal is
	// recorded instead.
	ApprovedBy string `json:"approved_by"`
	// Reason is required and recorded with the decision.
	Reason string `json:"reason"`
	// AcknowledgeRisks must be true to approve a destructive checkpoint.
	AcknowledgeRisks bool `json:"acknowledge_risks"`
	// PlanDigest, optional here, must match the pending plan when given.
	PlanDigest string `json:"plan_digest"`
	// Reject turns the call into a rejection (an addition; default false).
	Reject bool `json:"reject"`
}

// ApprovalResponse is the seed's answer to POST /api/v1/approvals/{name}.
type ApprovalResponse struct {
	// Checkpoint is the checkpoint's name.
	Checkpoint string `json:"checkpoint"`
	// Approved is true for an approval, false when Reject was set.
	Approved bool `json:"approved"`
	// ApprovedBy is the authenticated principal who decided.
	ApprovedBy string `json:"approved_by"`
	// ApprovedAt is when the decision was recorded, UTC.
	ApprovedAt time.Time `json:"approved_at"`
	// ApprovalToken is the seed's token: here the decision's ID (nothing
	// needs it to run).
	ApprovalToken string `json:"approval_token"`
	// RequestID is the request decided.
	RequestID string `json:"request_id"`
	// PlanDigest is the digest of the plan the decision covers.
	PlanDigest string `json:"plan_digest"`
}

// decideRequest checks and records a decision on req by p.
func (s *Server) decideRequest(w http.ResponseWriter, req approval.Request, p Principal, dr DecisionRequest) (approval.Decision, bool) {
	switch {
	case dr.PlanDigest != req.PlanDigest:
		s.fail(w, http.StatusConflict, "PLAN_CHANGED", fmt.Sprintf("plan_digest %q is not the pending plan's (%s): review the plan again", dr.PlanDigest, req.PlanDigest))
		return approval.Decision{}, false
	case dr.Approved && req.Destructive && !dr.AcknowledgeRisks:
		s.fail(w, http.StatusBadRequest, "RISKS_NOT_ACKNOWLEDGED", "checkpoint "+req.Checkpoint+" is destructive: set acknowledge_risks to approve it")
		return approval.Decision{}, false
	case dr.Approved && !s.cfg.AllowSelfApproval && p.Name == req.RequestedBy:
		s.fail(w, http.StatusForbidden, "SELF_APPROVAL", "the approver must differ from the requester ("+req.RequestedBy+")")
		return approval.Decision{}, false
	}
	d := approval.Decision{ID: approval.NewID(), Approved: dr.Approved, By: p.Name, Reason: dr.Reason,
		RisksAcknowledged: dr.AcknowledgeRisks, DecidedAt: time.Now().UTC(), PlanDigest: req.PlanDigest}
	if err := s.queue.Decide(req.ID, d); err != nil {
		s.fail(w, http.StatusNotFound, "REQUEST_NOT_FOUND", "approval request "+req.ID+" is no longer pending")
		return approval.Decision{}, false
	}
	return d, true
}

func (s *Server) pendingByID(id string) (approval.Request, bool) {
	for _, r := range s.queue.Pending() {
		if r.ID == id {
			return r, true
		}
	}
	return approval.Request{}, false
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, p Principal) {
	var dr DecisionRequest
	if err := decode(r, &dr, false); err != nil {
		s.badBody(w, err)
		return
	}
	if dr.PlanDigest == "" {
		s.fail(w, http.StatusBadRequest, "BAD_REQUEST", "plan_digest: required (the digest of the plan you reviewed)")
		return
	}
	req, ok := s.pendingByID(r.PathValue("request_id"))
	if !ok {
		s.fail(w, http.StatusNotFound, "REQUEST_NOT_FOUND", "no pending approval request "+r.PathValue("request_id"))
		return
	}
	d, ok := s.decideRequest(w, req, p, dr)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, DecisionAnswer{ID: d.ID, RequestID: req.ID, Checkpoint: req.Checkpoint, Approved: d.Approved, By: d.By,
		Reason: d.Reason, RisksAcknowledged: d.RisksAcknowledged, DecidedAt: d.DecidedAt, PlanDigest: d.PlanDigest})
}

func (s *Server) postSeedApproval(w http.ResponseWriter, r *http.Request, p Principal) {
	var body SeedApprovalRequest
	if err := decode(r, &body, false); err != nil {
		s.badBody(w, err)
		return
	}
	if body.ApprovedBy == "" || body.Reason == "" {
		s.fail(w, http.StatusBadRequest, "BAD_REQUEST", "approved_by and reason are required (approved_by is recorded as the authenticated principal)")
		return
	}
	_, info, ok := s.checkpointOr404(w, r)
	if !ok {
		return
	}
	var req approval.Request
	found := false
	for _, pr := range s.queue.Pending() {
		if pr.Checkpoint == info.Name {
			req, found = pr, true
			break
		}
	}
	if !found {
		s.fail(w, http.StatusBadRequest, "NO_PENDING_REQUEST", "checkpoint "+info.Name+" has no pending approval request: start it first (POST /api/v1/checkpoints/"+info.Name+")")
		return
	}
	digest := body.PlanDigest
	if digest == "" {
		digest = req.PlanDigest // the plan shown by GET /api/v1/approvals/{name}
	}
	d, ok := s.decideRequest(w, req, p, DecisionRequest{Approved: !body.Reject, PlanDigest: digest, Reason: body.Reason, AcknowledgeRisks: body.AcknowledgeRisks})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, ApprovalResponse{Checkpoint: info.Name, Approved: d.Approved, ApprovedBy: d.By, ApprovedAt: d.DecidedAt,
		ApprovalToken: d.ID, RequestID: req.ID, PlanDigest: d.PlanDigest})
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, _ Principal) {
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := []NodeInfo{}
	for _, n := range sn.nodes {
		st, asOf := sn.nodeState(n.ID())
		nc := s.containers().of(n.ID())
		out = append(out, NodeInfo{Name: n.ID(), IP: n.Address, Role: string(n.Role), Status: st, Containers: nc.names(), StatusAsOf: asOf,
			ContainersAsOf: tp(nc.asOf), ContainersError: s.clean(nc.err)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request, _ Principal) {
	sn, err := s.snapshot(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	name := r.PathValue("node_name")
	for _, n := range sn.nodes {
		if n.ID() != name {
			continue
		}
		st, asOf := sn.nodeState(n.ID())
		nc := s.containers().of(n.ID())
		nd := NodeDetails{Name: n.ID(), IP: n.Address, Role: string(n.Role), Status: st, SystemInfo: map[string]string{},
			Containers: nc.details(), Checkpoints: []NodeCheckpointStatus{}, StatusAsOf: asOf,
			ContainersAsOf: tp(nc.asOf), ContainersError: s.clean(nc.err)}
		for _, info := range sn.infos {
			if rec := sn.ledger.Checkpoints[info.Name]; rec != nil {
				if nr := rec.Nodes[n.ID()]; nr != nil && nr.Status != checkpoint.StatusPending {
					nd.Checkpoints = append(nd.Checkpoints, sn.nodeStatus(info, nr))
				}
			}
		}
		if rec := sn.ledger.Checkpoints["prerequisites-check"]; rec != nil {
			if nr := rec.Nodes[n.ID()]; nr != nil && nr.Summary != "" {
				nd.SystemInfo["prerequisites"] = nr.Summary
			}
		}
		writeJSON(w, http.StatusOK, nd)
		return
	}
	s.fail(w, http.StatusNotFound, "NODE_NOT_FOUND", fmt.Sprintf("no node %q in cluster %s", name, s.clusterName()))
}

func (s *Server) clusterName() string {
	d, _ := s.deployer()
	return d.Cluster().Name
}

func (s *Server) listDashboards(w http.ResponseWriter, _ *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, s.dashboards())
}

// AuditAnswer is a page of the audit log.
type AuditAnswer struct {
	// Records are the newest records after since, at most limit, oldest
	// first.
	Records []approval.AuditRecord `json:"records"`
	// Total is how many records there are after since, before limit.
	Total int `json:"total"`
}

// AuditVerification is the result of verifying the audit log's hash chain.
type AuditVerification struct {
	// OK is true when the chain and the log's end are intact.
	OK bool `json:"ok"`
	// Records is the number of intact records.
	Records int `json:"records"`
	// Line is the first line, 1-based, that breaks the chain (absent: none).
	Line int `json:"line,omitempty"`
	// Reason says what is wrong (empty: nothing).
	Reason string `json:"reason,omitempty"`
}

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request, _ Principal) {
	q := r.URL.Query()
	limit, since := 100, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, http.StatusBadRequest, "BAD_REQUEST", "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, http.StatusBadRequest, "BAD_REQUEST", "since: want a record sequence number")
			return
		}
		since = n
	}
	data, err := readAuditLog(s.cfg.Audit.Path())
	if err != nil {
		if msg, ok := auditRefused(err); ok {
			s.log.Error("audit log refused", "method", r.Method, "path", r.URL.Path, "err", err)
			s.fail(w, http.StatusInternalServerError, "AUDIT_LOG_REFUSED", msg)
			return
		}
		s.internal(w, r, err)
		return
	}
	all := []approval.AuditRecord{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" {
			continue
		}
		var rec approval.AuditRecord
		if err := strictUnmarshal([]byte(line), &rec); err != nil {
			continue // verify reports it
		}
		if rec.Seq > since {
			all = append(all, rec)
		}
	}
	ans := AuditAnswer{Total: len(all)}
	if len(all) > limit { // the newest limit records
		all = all[len(all)-limit:]
	}
	ans.Records = slices.Clip(all)
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) verifyAudit(w http.ResponseWriter, _ *http.Request, _ Principal) {
	n, err := approval.Verify(s.cfg.Audit.Path())
	v := AuditVerification{OK: err == nil, Records: n}
	var ce *approval.ChainError
	if errors.As(err, &ce) {
		v.Line, v.Reason = ce.Line, ce.Reason
	} else if msg, ok := auditRefused(err); ok {
		v.Reason = msg
	} else if err != nil {
		v.Reason = "the audit log cannot be read"
	}
	writeJSON(w, http.StatusOK, v)
}

// readAuditLog reads the audit log the way the state is opened: without
// following a symbolic link, without blocking on a FIFO, checked as opened
// (a regular file of this user that others cannot write).
func readAuditLog(path string) ([]byte, error) {
	f, _, err := fstrust.Open(path, os.O_RDONLY, 0o600, fstrust.AllowRead)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// auditRefused says why the audit log was refused, for the client, when
// err is such a refusal (a link, not a regular file, a foreign owner...).
func auditRefused(err error) (string, bool) {
	var ue *fstrust.UnsafeError
	if !errors.As(err, &ue) {
		return "", false
	}
	return "the audit log is refused: it " + ue.Reason, true
}
