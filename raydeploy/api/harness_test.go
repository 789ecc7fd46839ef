package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/raydeploy/api"
)

func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/plain", openapi3filter.PlainBodyDecoder)
}

// stepDeployer runs the six checkpoint names as checkpoint.Steps through a
// real checkpoint.Runner on a real state directory: the API's view of a
// deployer without nodes. cleanup-existing is destructive and plans one
// removal per node; its Run waits on gate when set.
type stepDeployer struct {
	cluster  *raydeploy.Cluster
	list     *checkpoint.List
	approver approval.Approver
	events   checkpoint.EventSink
	gate     chan struct{}
	audit    *approval.AuditLog
}

func newStepDeployer(t testing.TB, stateDir string, approver approval.Approver, events checkpoint.EventSink, audit *approval.AuditLog) *stepDeployer {
	t.Helper()
	d := &stepDeployer{
		cluster: &raydeploy.Cluster{Name: "apitest", StateDir: stateDir,
			Head:    raydeploy.Node{Name: "head", Address: "192.0.2.10"},
			Workers: []raydeploy.Node{{Name: "worker1", Address: "192.0.2.11"}}},
		approver: approver, events: events, audit: audit,
	}
	perNode := func(action string) func(context.Context) (checkpoint.Plan, error) {
		return func(context.Context) (checkpoint.Plan, error) {
			return checkpoint.Plan{Items: []checkpoint.PlanItem{{Node: "head", Action: action}, {Node: "worker1", Action: action}}}, nil
		}
	}
	list, err := checkpoint.NewList(
		&checkpoint.Step{StepName: raydeploy.CheckpointPrerequisites, Desc: "Check the nodes", PlanFunc: perNode("check")},
		&checkpoint.Step{StepName: raydeploy.CheckpointDocker, Desc: "Install Docker where missing", Approval: true,
			PlanFunc: func(context.Context) (checkpoint.Plan, error) { return checkpoint.Plan{}, nil }},
		&checkpoint.Step{StepName: raydeploy.CheckpointCleanup, Desc: "Remove earlier Ray installations", Approval: true, IsDestructive: true,
			RiskList: []string{"containers listed in the plan are removed; there is no undo"},
			PlanFunc: func(context.Context) (checkpoint.Plan, error) {
				return checkpoint.Plan{Items: []checkpoint.PlanItem{{Node: "head", Action: "remove container", Detail: "ray_head"}, {Node: "worker1", Action: "remove container", Detail: "ray_worker"}}}, nil
			},
			RunFunc: func(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
				if d.gate != nil {
					select {
					case <-d.gate:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return []checkpoint.NodeResult{{Node: "head", Summary: "removed ray_head"}, {Node: "worker1", Summary: "removed ray_worker"}}, nil
			}},
		&checkpoint.Step{StepName: raydeploy.CheckpointRay, Desc: "Deploy Ray", PlanFunc: perNode("start ray")},
		&checkpoint.Step{StepName: raydeploy.CheckpointMonitoring, Desc: "Deploy monitoring", PlanFunc: perNode("start exporters")},
		&checkpoint.Step{StepName: raydeploy.CheckpointValidation, Desc: "Validate", PlanFunc: perNode("validate")},
	)
	if err != nil {
		t.Fatal(err)
	}
	d.list = list
	return d
}

func (d *stepDeployer) Cluster() *raydeploy.Cluster { return d.cluster }

func (d *stepDeployer) runner(ctx context.Context) (*checkpoint.Runner, error) {
	return checkpoint.Open(ctx, d.list, checkpoint.Options{StateDir: d.cluster.StateDir, Nodes: []string{"head", "worker1"},
		Approver: d.approver, Events: d.events, Audit: d.audit})
}

func (d *stepDeployer) List(ctx context.Context) ([]checkpoint.Info, error) {
	var out []checkpoint.Info
	for _, c := range d.list.Checkpoints() {
		out = append(out, checkpoint.Info{Name: c.Name(), Description: c.Description(), NeedsApproval: c.NeedsApproval(), Destructive: c.Destructive(), Status: checkpoint.StatusPending})
	}
	return out, nil
}

func (d *stepDeployer) Plan(ctx context.Context, o checkpoint.RunOptions) ([]checkpoint.Plan, error) {
	r, err := d.runner(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.DryRun(ctx, o)
}

func (d *stepDeployer) Deploy(ctx context.Context, o checkpoint.RunOptions) (*checkpoint.Report, error) {
	r, err := d.runner(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx, o)
}

// env is a server over a stepDeployer behind an httptest server, with one
// token per role and clients that validate against the served document.
type env struct {
	t       testing.TB
	srv     *api.Server
	ts      *httptest.Server
	dep     *stepDeployer
	audit   *approval.AuditLog
	tokens  map[string]string // name -> token; names = roles, plus "approver2"
	val     *validator
	state   string
	tokFile string
}

type envOptions struct {
	state    string
	gate     chan struct{}
	webhooks []api.Webhook
	cfg      func(*api.Config)
	// deployerAudits: the Deployer keeps the audit log and records
	// approvals itself (as raydeploy.New will); Config.Audit stays nil.
	deployerAudits bool
	// wrap, when set, turns the stepDeployer into the Deployer attached.
	wrap func(*stepDeployer) api.Deployer
}

// auditingDeployer is a stepDeployer that records approvals itself.
type auditingDeployer struct{ *stepDeployer }

func (d auditingDeployer) Audit() *approval.AuditLog { return d.audit }

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.state == "" {
		o.state = filepath.Join(t.TempDir(), "state")
	}
	e := &env{t: t, state: o.state, tokens: map[string]string{}, tokFile: filepath.Join(t.TempDir(), "tokens.json")}
	for _, name := range []string{"viewer", "operator", "approver", "admin", "approver2"} {
		role := strings.TrimSuffix(name, "2")
		tok, err := api.CreateToken(e.tokFile, name, api.Role(role))
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	e.start(o)
	return e
}

func (e *env) start(o envOptions) {
	t := e.t
	tokens, err := api.LoadTokens(e.tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := mkdir(e.state); err != nil {
		t.Fatal(err)
	}
	audit, err := approval.OpenAuditLog(filepath.Join(e.state, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Tokens: tokens, Audit: audit, Webhooks: o.webhooks, WebhookMaxElapsed: 20 * time.Second}
	if o.deployerAudits {
		cfg.Audit = nil
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var d api.Deployer
	if o.deployerAudits {
		dep := newStepDeployer(t, e.state, srv.Approver(), srv.EventSink(), audit) // the runner audits, as raydeploy.New wires it
		e.dep, d = dep, auditingDeployer{dep}
	} else {
		dep := newStepDeployer(t, e.state, srv.Approver(), srv.EventSink(), nil) // the server audits approvals
		e.dep, d = dep, dep
	}
	e.dep.gate = o.gate
	if o.wrap != nil {
		d = o.wrap(e.dep)
	}
	if err := srv.Attach(d); err != nil {
		t.Fatal(err)
	}
	e.srv, e.audit = srv, audit
	e.ts = httptest.NewServer(srv)
	if e.val == nil {
		e.val = newValidator(t)
	}
	e.val.setServer(e.ts.URL)
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.ts == nil {
		return
	}
	e.ts.CloseClientConnections()
	e.ts.Close()
	e.srv.Close()
	e.audit.Close()
	e.ts = nil
}

// restart stops the server and starts a new one on the same state directory.
func (e *env) restart(o envOptions) {
	e.stop()
	o.state = e.state
	e.start(o)
}

// validator checks every request and response against the served document.
type validator struct {
	t      testing.TB
	mu     sync.Mutex
	doc    *openapi3.T
	router routers.Router
	seen   map[string]int // "METHOD path-template status"
}

func newValidator(t testing.TB) *validator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the served OpenAPI document is invalid: %v", err)
	}
	return &validator{t: t, doc: doc, seen: map[string]int{}}
}

// setServer points the document's servers at the test server: kin-openapi's
// router matches requests against the servers list.
func (v *validator) setServer(url string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.doc.Servers = openapi3.Servers{{URL: url}}
	r, err := gorillamux.NewRouter(v.doc)
	if err != nil {
		v.t.Fatal(err)
	}
	v.router = r
}

const invalidHeader = "X-Test-Invalid-Request"

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	v.mu.Lock()
	router := v.router
	v.mu.Unlock()
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	invalid := req.Header.Get(invalidHeader) != ""
	req.Header.Del(invalidHeader)
	route, params, err := router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s %s: not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return http.DefaultTransport.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true}}
	if !invalid {
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			v.t.Errorf("%s %s: request does not match the document: %v", req.Method, req.URL.Path, err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	sse := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var rbody []byte
	if !sse {
		rbody, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(rbody))
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: sse}}
	rin.SetBodyBytes(rbody)
	if err := openapi3filter.ValidateResponse(req.Context(), rin); err != nil {
		v.t.Errorf("%s %s: %d response does not match the document: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, rbody)
	}
	v.mu.Lock()
	v.seen[route.Method+" "+route.Path]++
	v.mu.Unlock()
	return resp, nil
}

// operations lists "METHOD path" of every operation in the document.
func (v *validator) operations() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// call makes one request as the token's owner ("" = no token) and decodes a JSON answer into out.
func (e *env) call(who, method, path string, body any, out any) int {
	e.t.Helper()
	return e.callH(who, method, path, body, out, nil)
}

func (e *env) callH(who, method, path string, body any, out any, hdr http.Header) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		tok, ok := e.tokens[who]
		if !ok {
			tok = who // a literal (wrong) token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := (&http.Client{Transport: e.val, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// waitFor polls cond until it holds (the test timeout bounds the wait).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i%200 == 199 {
			t.Logf("still waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (e *env) pending() []api.ApprovalRequest {
	var p []api.ApprovalRequest
	if c := e.call("viewer", "GET", "/api/v1/approval-requests", nil, &p); c != 200 {
		e.t.Fatalf("approval-requests: %d", c)
	}
	return p
}

func (e *env) execution(id string) api.Execution {
	var x api.Execution
	if c := e.call("viewer", "GET", "/api/v1/executions/"+id, nil, &x); c != 200 {
		e.t.Fatalf("execution %s: %d", id, c)
	}
	return x
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o700) }
