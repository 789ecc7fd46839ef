package api_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// sseClient reads the event stream in the background.
type sseClient struct {
	mu     chan struct{}
	events []sseEvent
	done   chan struct{}
	cancel context.CancelFunc
}

type sseEvent struct{ id, typ, data string }

func (e *env) stream(lastID string) *sseClient {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["viewer"])
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := (&http.Client{Transport: e.val}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("events: %d", resp.StatusCode)
	}
	c := &sseClient{mu: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
	c.mu <- struct{}{}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.typ != "" {
					<-c.mu
					c.events = append(c.events, cur)
					c.mu <- struct{}{}
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func (c *sseClient) snapshot() []sseEvent {
	<-c.mu
	defer func() { c.mu <- struct{}{} }()
	return slices.Clone(c.events)
}

func (c *sseClient) has(typ string) bool {
	return slices.ContainsFunc(c.snapshot(), func(e sseEvent) bool { return e.typ == typ })
}

func invalid() http.Header { return http.Header{"X-Test-Invalid-Request": {"1"}} }

// TestEveryEndpointAgainstOpenAPI drives every operation of the served
// document, each request and response validated against it.
func TestEveryEndpointAgainstOpenAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.yaml"} {
		if c := e.call("", "GET", p, nil, nil); c != 200 {
			t.Fatalf("%s: %d", p, c)
		}
	}
	var who api.Principal
	if c := e.call("operator", "GET", "/api/v1/whoami", nil, &who); c != 200 || who.Name != "operator" || who.Role != api.RoleOperator {
		t.Fatalf("whoami: %d %+v", c, who)
	}
	var st api.ClusterStatus
	if c := e.call("viewer", "GET", "/api/v1/cluster/status", nil, &st); c != 200 || st.DeploymentStatus != "IN_PROGRESS" || st.TotalCheckpoints != 6 || len(st.Links) != 3 {
		t.Fatalf("status: %d %+v", c, st)
	}
	var h api.ClusterHealth
	if c := e.call("viewer", "GET", "/api/v1/cluster/health", nil, &h); c != 200 || h.OverallStatus != "UNKNOWN" || h.AsOf != nil {
		t.Fatalf("health without a validation report: %d %+v", c, h)
	}
	var cps []api.CheckpointStatus
	if c := e.call("viewer", "GET", "/api/v1/checkpoints", nil, &cps); c != 200 || len(cps) != 6 || cps[2].Checkpoint != "cleanup-existing" || !cps[2].Destructive || cps[0].Status != "NOT_FOUND" {
		t.Fatalf("checkpoints: %d %+v", c, cps)
	}
	var errb api.ErrorBody
	if c := e.callH("viewer", "GET", "/api/v1/checkpoints/no-such-step", nil, &errb, invalid()); c != 404 || !strings.Contains(errb.Message, "valid checkpoints: prerequisites-check") {
		t.Fatalf("unknown checkpoint: %d %+v", c, errb)
	}
	if c := e.call("operator", "POST", "/api/v1/checkpoints/no-such-step", map[string]bool{"approve": true}, &errb); c != 404 {
		t.Fatalf("POST unknown checkpoint: %d", c)
	}
	var nodes []api.NodeInfo
	if c := e.call("viewer", "GET", "/api/v1/nodes", nil, &nodes); c != 200 || len(nodes) != 2 || nodes[0].Role != "head" || nodes[0].Status != "UNKNOWN" {
		t.Fatalf("nodes: %d %+v", c, nodes)
	}
	if c := e.call("viewer", "GET", "/api/v1/nodes/nope", nil, &errb); c != 404 || errb.Error != "NODE_NOT_FOUND" {
		t.Fatalf("unknown node: %d %+v", c, errb)
	}
	var dash []api.Dashboard
	if c := e.call("viewer", "GET", "/api/v1/monitoring/grafana/dashboards", nil, &dash); c != 200 || len(dash) != 3 || !strings.HasPrefix(dash[0].URL, "http://192.0.2.10:3000/d/") {
		t.Fatalf("dashboards: %d %+v", c, dash)
	}

	// Plan: every checkpoint, per node, with digests; changes nothing.
	var plan api.PlanAnswer
	if c := e.call("operator", "POST", "/api/v1/plans", map[string]any{}, &plan); c != 200 || len(plan.Plans) != 6 || plan.Error != "" {
		t.Fatalf("plan: %d %+v", c, plan)
	}
	if p := plan.Plans[2]; p.Checkpoint != "cleanup-existing" || p.Empty || len(p.Nodes["worker1"]) != 1 || !strings.HasPrefix(p.Digest, "sha256:") {
		t.Fatalf("cleanup plan: %+v", p)
	}
	if !plan.Plans[1].Empty {
		t.Fatalf("docker-installation plans work: %+v", plan.Plans[1])
	}

	// The seed's approval contract: 400 APPROVAL_REQUIRED without approve.
	var ar api.ApprovalRequired
	if c := e.call("operator", "POST", "/api/v1/checkpoints/cleanup-existing", nil, &ar); c != 400 || ar.Error != "APPROVAL_REQUIRED" || !ar.ApprovalInfo.Destructive {
		t.Fatalf("approval required: %d %+v", c, ar)
	}

	sse := e.stream("")
	// approver2 starts it (an approver may operate); only another principal may approve.
	var ce api.CheckpointExecution
	if c := e.call("approver2", "POST", "/api/v1/checkpoints/cleanup-existing", map[string]bool{"approve": true}, &ce); c != 202 || ce.Status != "STARTED" || ce.ExecutionID == "" {
		t.Fatalf("start: %d %+v", c, ce)
	}
	if c := e.call("operator", "POST", "/api/v1/checkpoints/prerequisites-check", nil, &errb); c != 409 {
		t.Fatalf("second run while one runs: %d %+v", c, errb)
	}
	waitFor(t, "the pending cleanup request", func() bool { return len(e.pending()) == 1 })
	req := e.pending()[0]
	if req.Checkpoint != "cleanup-existing" || req.RequestedBy != "approver2" || req.PlanDigest != plan.Plans[2].Digest || len(req.Plan) != 2 || len(req.Risks) != 1 || req.ExecutionID != ce.ExecutionID || !req.ExpiresAt.After(req.RequestedAt) {
		t.Fatalf("pending request: %+v (planned digest %s)", req, plan.Plans[2].Digest)
	}
	var ai api.ApprovalInfo
	if c := e.call("viewer", "GET", "/api/v1/approvals/cleanup-existing", nil, &ai); c != 200 || ai.Pending == nil || ai.Pending.ID != req.ID || len(ai.ImpactSummary) != 3 {
		t.Fatalf("approval info: %d %+v", c, ai)
	}
	decision := "/api/v1/approval-requests/" + req.ID + "/decision"
	if c := e.call("approver", "POST", decision, map[string]any{"approved": true, "plan_digest": "sha256:" + strings.Repeat("0", 64), "acknowledge_risks": true}, &errb); c != 409 || errb.Error != "PLAN_CHANGED" {
		t.Fatalf("other digest: %d %+v", c, errb)
	}
	if c := e.call("approver", "POST", decision, map[string]any{"approved": true, "plan_digest": req.PlanDigest}, &errb); c != 400 || errb.Error != "RISKS_NOT_ACKNOWLEDGED" {
		t.Fatalf("no risk acknowledgment: %d %+v", c, errb)
	}
	if c := e.call("approver2", "POST", decision, map[string]any{"approved": true, "plan_digest": req.PlanDigest, "acknowledge_risks": true}, &errb); c != 403 || errb.Error != "SELF_APPROVAL" {
		t.Fatalf("self approval: %d %+v", c, errb)
	}
	var da api.DecisionAnswer
	if c := e.call("approver", "POST", decision, map[string]any{"approved": true, "plan_digest": req.PlanDigest, "acknowledge_risks": true, "reason": "planned maintenance"}, &da); c != 200 || da.By != "approver" || da.PlanDigest != req.PlanDigest {
		t.Fatalf("approve: %d %+v", c, da)
	}
	waitFor(t, "the execution to complete", func() bool { return e.execution(ce.ExecutionID).Status == api.ExecCompleted })
	x := e.execution(ce.ExecutionID)
	if len(x.Checkpoints) != 1 || x.Checkpoints[0].Status != "succeeded" || x.RequestedBy != "approver2" || x.EndedAt == nil {
		t.Fatalf("execution: %+v", x)
	}
	var cs api.CheckpointStatus
	if c := e.call("viewer", "GET", "/api/v1/checkpoints/cleanup-existing", nil, &cs); c != 200 || cs.Status != "PASSED" || cs.PassedNodes != 2 || cs.ApprovedBy != "approver" || cs.Nodes["head"].Summary != "removed ray_head" {
		t.Fatalf("checkpoint after the run: %d %+v", c, cs)
	}
	var nd api.NodeDetails
	if c := e.call("viewer", "GET", "/api/v1/nodes/worker1", nil, &nd); c != 200 || nd.Status != "ONLINE" || len(nd.Checkpoints) != 1 {
		t.Fatalf("node details: %d %+v", c, nd)
	}
	waitFor(t, "run.finished on the stream", func() bool { return sse.has("run.finished") })
	for _, typ := range []string{"checkpoint.started", "checkpoint.planned", "approval.pending", "approval.decided", "node.started", "node.finished", "checkpoint.finished", "execution.updated"} {
		if !sse.has(typ) {
			t.Errorf("stream lacks %s: %+v", typ, sse.snapshot())
		}
	}
	// Resuming from an early event id replays exactly what followed it.
	evs := sse.snapshot()
	again := e.stream(evs[1].id)
	waitFor(t, "the replay", func() bool { return len(again.snapshot()) >= len(evs)-2 })
	if got := again.snapshot(); got[0].id != evs[2].id {
		t.Fatalf("replay after %s starts at %s, want %s", evs[1].id, got[0].id, evs[2].id)
	}

	// Cancel a run waiting for approval, resume it, approve through the seed's endpoint.
	var ex api.Execution
	if c := e.call("operator", "POST", "/api/v1/executions", map[string]any{"start_from": "cleanup-existing"}, &ex); c != 202 {
		t.Fatalf("start execution: %d", c)
	}
	waitFor(t, "a pending request", func() bool { return len(e.pending()) == 1 })
	if c := e.call("operator", "POST", "/api/v1/executions/"+ex.ID+"/cancel", nil, &ex); c != 202 {
		t.Fatalf("cancel: %d", c)
	}
	waitFor(t, "CANCELLED", func() bool { return e.execution(ex.ID).Status == api.ExecCancelled })
	if c := e.call("operator", "POST", "/api/v1/executions/"+ex.ID+"/cancel", nil, &errb); c != 409 {
		t.Fatalf("cancel a finished run: %d", c)
	}
	var res api.Execution
	if c := e.call("operator", "POST", "/api/v1/executions/"+ex.ID+"/resume", nil, &res); c != 202 || !res.Resume || res.ResumeOf != ex.ID {
		t.Fatalf("resume: %d %+v", c, res)
	}
	waitFor(t, "the resumed run's request", func() bool { return len(e.pending()) == 1 })
	var resp api.ApprovalResponse
	if c := e.call("approver", "POST", "/api/v1/approvals/cleanup-existing", map[string]any{"approved_by": "someone-else", "reason": "resume", "acknowledge_risks": true}, &resp); c != 200 || resp.ApprovedBy != "approver" || !resp.Approved || resp.PlanDigest != req.PlanDigest {
		t.Fatalf("seed approval: %d %+v", c, resp)
	}
	waitFor(t, "the resumed run", func() bool { return e.execution(res.ID).Status == api.ExecCompleted })
	var list []api.Execution
	if c := e.call("viewer", "GET", "/api/v1/executions", nil, &list); c != 200 || len(list) != 3 || list[0].ID != res.ID {
		t.Fatalf("executions: %d %+v", c, list)
	}

	// Audit: every mutating request with principal and remote address; the chain verifies.
	var au api.AuditAnswer
	if c := e.call("viewer", "GET", "/api/v1/audit?limit=1000", nil, &au); c != 200 {
		t.Fatalf("audit: %d", c)
	}
	apiRecs, decisions := 0, 0
	for _, r := range au.Records {
		if r.Kind == "api" {
			apiRecs++
			if r.Actor == nil || r.Actor.Principal == "" || !strings.HasPrefix(r.Actor.Remote, "127.0.0.1:") {
				t.Errorf("api record without principal or remote: %+v", r)
			}
		}
		if r.Kind == "request" && r.Request.RequestedBy != "approver2" && r.Request.RequestedBy != "operator" {
			t.Errorf("request recorded for %q, not for the principal who started the run", r.Request.RequestedBy)
		}
		if r.Kind == "decision" && r.Decision != nil && r.Decision.Approved {
			decisions++
			if r.Decision.By != "approver" {
				t.Errorf("decision recorded for %q", r.Decision.By)
			}
		}
	}
	if apiRecs < 12 || decisions != 2 {
		t.Fatalf("audit: %d api records, %d approvals", apiRecs, decisions)
	}
	var v api.AuditVerification
	if c := e.call("viewer", "GET", "/api/v1/audit/verify", nil, &v); c != 200 || !v.OK || v.Records != len(au.Records) {
		t.Fatalf("verify: %d %+v (records %d)", c, v, len(au.Records))
	}
	// A Deployer that cannot reach nodes has no Prometheus to proxy
	// (observed_test.go proxies one).
	if c := e.call("viewer", "GET", "/api/v1/monitoring/prometheus", nil, &errb); c != 503 || errb.Error != "PROXY_UNAVAILABLE" {
		t.Fatalf("prometheus without node HTTP: %d %+v", c, errb)
	}
	for _, p := range []string{"/metrics"} {
		req, _ := http.NewRequest("GET", e.ts.URL+p, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["viewer"])
		resp, err := (&http.Client{Transport: e.val}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `raydeploy_api_requests_total{code="202",method="POST",route="/api/v1/checkpoints/{checkpoint_name}"} 1`) {
			t.Fatalf("%s: %d, no request counter of the started checkpoint:\n%s", p, resp.StatusCode, body)
		}
	}

	// Every operation of the document was exercised.
	for _, op := range e.val.operations() {
		if e.val.seen[op] == 0 {
			t.Errorf("operation %s not exercised", op)
		}
	}
}
