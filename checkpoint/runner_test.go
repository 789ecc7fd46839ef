package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/raydeploy/sdk/approval"
)

// recorder records the order of Plan and Run calls across checkpoints.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// fake builds a Step that plans one item per node in nodes and fails on the
// nodes in failOn (a map the test may change between runs).
func fake(rec *recorder, name string, nodes []string, failOn map[string]error) *Step {
	return &Step{
		StepName: name,
		Desc:     "fake " + name,
		PlanFunc: func(ctx context.Context) (Plan, error) {
			rec.add("plan " + name)
			p := Plan{}
			for _, n := range nodes {
				p.Items = append(p.Items, PlanItem{Node: n, Action: "do", Detail: name})
			}
			return p, nil
		},
		RunFunc: func(ctx context.Context, p Plan) ([]NodeResult, error) {
			rec.add("run " + name)
			var out []NodeResult
			for _, n := range p.Nodes() {
				out = append(out, NodeResult{Node: n, Summary: name + " done", Err: failOn[n]})
			}
			return out, nil
		},
	}
}

var twoNodes = []string{"n1", "n2"}

func openRunner(t *testing.T, dir string, opts Options, cps ...Checkpoint) *Runner {
	t.Helper()
	l, err := NewList(cps...)
	if err != nil {
		t.Fatal(err)
	}
	opts.StateDir = dir
	if opts.Nodes == nil {
		opts.Nodes = twoNodes
	}
	r, err := Open(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRunnerSelection(t *testing.T) {
	tests := []struct {
		name string
		opts RunOptions
		want []string
	}{
		{"all", RunOptions{}, []string{"plan a", "run a", "plan b", "run b", "plan c", "run c"}},
		{"one", RunOptions{Only: "b"}, []string{"plan b", "run b"}},
		{"from", RunOptions{StartFrom: "b"}, []string{"plan b", "run b", "plan c", "run c"}},
		{"from first", RunOptions{StartFrom: "a"}, []string{"plan a", "run a", "plan b", "run b", "plan c", "run c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			r := openRunner(t, t.TempDir(), Options{},
				fake(rec, "a", twoNodes, nil), fake(rec, "b", twoNodes, nil), fake(rec, "c", twoNodes, nil))
			if _, err := r.Run(context.Background(), tt.opts); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, rec.get()); diff != "" {
				t.Errorf("call order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunnerUnknownName(t *testing.T) {
	rec := &recorder{}
	r := openRunner(t, t.TempDir(), Options{}, fake(rec, "a", twoNodes, nil), fake(rec, "b", twoNodes, nil))
	for _, o := range []RunOptions{{Only: "nope"}, {StartFrom: "nope"}} {
		_, err := r.Run(context.Background(), o)
		var ue *UnknownCheckpointError
		if !errors.As(err, &ue) {
			t.Fatalf("Run(%+v) error = %v, want *UnknownCheckpointError", o, err)
		}
		if diff := cmp.Diff([]string{"a", "b"}, ue.Valid); diff != "" {
			t.Errorf("valid names (-want +got):\n%s", diff)
		}
	}
	if _, err := r.DryRun(context.Background(), RunOptions{Only: "nope"}); err == nil {
		t.Error("DryRun accepted an unknown name")
	}
	if got := rec.get(); len(got) != 0 {
		t.Errorf("checkpoints were called: %v", got)
	}
}

func TestRunnerResumeAfterFailure(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	boom := errors.New("disk full")
	failOn := map[string]error{"n2": boom}
	a := fake(rec, "a", twoNodes, nil)
	b := fake(rec, "b", twoNodes, failOn)
	c := fake(rec, "c", twoNodes, nil)
	r := openRunner(t, dir, Options{ResumeCommand: "deploy-master --deploy --config c.yaml"}, a, b, c)

	_, err := r.RunAll(context.Background())
	if err == nil {
		t.Fatal("run with a failing node succeeded")
	}
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != "n2" || ne.Checkpoint != "b" {
		t.Fatalf("error %v: want a *NodeError for b on n2", err)
	}
	if !errors.Is(err, boom) {
		t.Errorf("errors.Is(err, boom) = false for %v", err)
	}
	if want := "checkpoint b: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if diff := cmp.Diff([]string{"plan a", "run a", "plan b", "run b"}, rec.get()); diff != "" {
		t.Errorf("first run order (-want +got):\n%s", diff)
	}
	l, err := r.Store().Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{
		"a":    l.Checkpoints["a"].Status,
		"b":    l.Checkpoints["b"].Status,
		"b/n1": l.Checkpoints["b"].Nodes["n1"].Status,
		"b/n2": l.Checkpoints["b"].Nodes["n2"].Status,
	}
	want := map[string]Status{"a": StatusSucceeded, "b": StatusFailed, "b/n1": StatusSucceeded, "b/n2": StatusFailed}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	if _, ok := l.Checkpoints["c"]; ok {
		t.Error("ledger has a record for c, which never started")
	}
	if e := l.Checkpoints["b"].Nodes["n2"].Error; e != "disk full" {
		t.Errorf("n2 error text = %q", e)
	}
	f, err := ReadFailure(dir)
	if err != nil || f == nil {
		t.Fatalf("failure record: %v, %v", f, err)
	}
	wantF := FailureRecord{Version: 1, Checkpoint: "b", FailedNodes: []string{"n2"},
		NodeErrors: map[string]string{"n2": "disk full"}, ResumeCommand: "deploy-master --deploy --config c.yaml"}
	if diff := cmp.Diff(wantF, *f, cmp.FilterPath(func(p cmp.Path) bool {
		return p.String() == "Time" || p.String() == "Error"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("failure record (-want +got):\n%s", diff)
	}

	// Fix the node and resume: a is not run again, b and c are.
	delete(failOn, "n2")
	rec.calls = nil
	if _, err := r.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plan b", "run b", "plan c", "run c"}, rec.get()); diff != "" {
		t.Errorf("resume order (-want +got):\n%s", diff)
	}
	if f, err := ReadFailure(dir); err != nil || f != nil {
		t.Errorf("failure record after a successful resume: %+v, %v", f, err)
	}

	// A changed config digest makes a run again on resume.
	a.Config = "v2"
	rec.calls = nil
	if _, err := r.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plan a", "run a"}, rec.get()); diff != "" {
		t.Errorf("resume after config change (-want +got):\n%s", diff)
	}
}

func TestRunnerWholeStepErrorAndMissingResult(t *testing.T) {
	rec := &recorder{}
	s := fake(rec, "a", twoNodes, nil)
	s.RunFunc = func(ctx context.Context, p Plan) ([]NodeResult, error) {
		return []NodeResult{{Node: "n1", Summary: "ok"}}, nil // n2 missing
	}
	r := openRunner(t, t.TempDir(), Options{}, s)
	_, err := r.RunAll(context.Background())
	if !errors.Is(err, ErrNoResult) {
		t.Fatalf("err = %v, want ErrNoResult", err)
	}
	stepErr := errors.New("ssh down")
	s.RunFunc = func(ctx context.Context, p Plan) ([]NodeResult, error) { return nil, stepErr }
	_, err = r.RunAll(context.Background())
	if !errors.Is(err, stepErr) {
		t.Fatalf("err = %v, want the step error", err)
	}
	l, _ := r.Store().Load()
	if st := l.Checkpoints["a"].Nodes["n1"].Status; st != StatusFailed {
		t.Errorf("n1 status after a whole-step failure = %s", st)
	}
}

func TestRunnerEmptyPlanSkipsSatisfied(t *testing.T) {
	rec := &recorder{}
	s := fake(rec, "a", nil, nil) // plans nothing
	s.Approval, s.IsDestructive = true, true
	asked := false
	r := openRunner(t, t.TempDir(), Options{Approver: approval.ApproverFunc(func(ctx context.Context, q approval.Request) (approval.Decision, error) {
		asked = true
		return approval.Decision{}, errors.New("must not be asked")
	})}, s)
	rep, err := r.RunAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if asked {
		t.Error("approver asked for an empty plan")
	}
	if diff := cmp.Diff([]string{"plan a"}, rec.get()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if rep.Checkpoints[0].Status != StatusSkippedSatisfied {
		t.Errorf("report status %s", rep.Checkpoints[0].Status)
	}
	l, _ := r.Store().Load()
	for _, n := range twoNodes {
		if st := l.Checkpoints["a"].Nodes[n].Status; st != StatusSkippedSatisfied {
			t.Errorf("node %s status %s, want skipped-satisfied", n, st)
		}
	}
}

func TestRunnerApprovalGate(t *testing.T) {
	approveWith := func(mod func(r approval.Request, d *approval.Decision)) approval.Approver {
		return approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
			d := approval.Decision{ID: "d1", Approved: true, By: "alice", Channel: approval.ChannelQueue,
				PlanDigest: r.PlanDigest, RisksAcknowledged: true}
			mod(r, &d)
			return d, nil
		})
	}
	tests := []struct {
		name        string
		destructive bool
		approver    approval.Approver
		wantErr     error
	}{
		{"approved", true, approveWith(func(approval.Request, *approval.Decision) {}), nil},
		{"refused", false, approveWith(func(_ approval.Request, d *approval.Decision) { d.Approved = false }), ErrNotApproved},
		{"wrong digest", false, approveWith(func(_ approval.Request, d *approval.Decision) { d.PlanDigest = "sha256:other" }), approval.ErrDigestMismatch},
		{"risks not acknowledged", true, approveWith(func(_ approval.Request, d *approval.Decision) { d.RisksAcknowledged = false }), approval.ErrRisksNotAcknowledged},
		{"non-destructive needs no ack", false, approveWith(func(_ approval.Request, d *approval.Decision) { d.RisksAcknowledged = false }), nil},
		{"expired", false, approveWith(func(r approval.Request, d *approval.Decision) { d.ExpiresAt = r.RequestedAt.Add(-1) }), approval.ErrExpired},
		{"no approver", true, nil, ErrNoApprover},
		{"approver error", false, approval.ApproverFunc(func(context.Context, approval.Request) (approval.Decision, error) {
			return approval.Decision{}, approval.ErrTimeout
		}), approval.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			s := fake(rec, "cleanup-existing", twoNodes, nil)
			s.Approval, s.IsDestructive = true, tt.destructive
			r := openRunner(t, t.TempDir(), Options{Approver: tt.approver}, s)
			_, err := r.RunAll(context.Background())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			ran := len(rec.get()) == 2
			if ran != (tt.wantErr == nil) {
				t.Fatalf("calls %v: ran=%v with err %v", rec.get(), ran, err)
			}
			l, _ := r.Store().Load()
			cr := l.Checkpoints["cleanup-existing"]
			if tt.wantErr == nil {
				want := &ApprovalRef{DecisionID: "d1", By: "alice", Channel: "queue", PlanDigest: cr.PlanDigest}
				if diff := cmp.Diff(want, cr.Nodes["n1"].Approval); diff != "" {
					t.Errorf("node approval (-want +got):\n%s", diff)
				}
			} else if cr.Status != StatusFailed || cr.Nodes["n1"] != nil {
				t.Errorf("after refusal: status %s, node records %v", cr.Status, cr.Nodes)
			}
		})
	}
}

func TestRunnerApprovalRequestCarriesPlan(t *testing.T) {
	rec := &recorder{}
	s := fake(rec, "docker-installation", twoNodes, nil)
	s.Approval, s.RiskList = true, []string{"restarts docker"}
	var got approval.Request
	r := openRunner(t, t.TempDir(), Options{RequestedBy: "ci", Approver: approval.ApproverFunc(func(ctx context.Context, q approval.Request) (approval.Decision, error) {
		got = q
		return approval.Decision{Approved: true, PlanDigest: q.PlanDigest}, nil
	})}, s)
	rep, err := r.RunAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := approval.Request{Checkpoint: "docker-installation", Description: "fake docker-installation",
		Risks: []string{"restarts docker"}, RequestedBy: "ci", PlanDigest: rep.Checkpoints[0].Plan.Digest(),
		Plan: []approval.PlanItem{{Node: "n1", Action: "do", Detail: "docker-installation"}, {Node: "n2", Action: "do", Detail: "docker-installation"}}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		return p.String() == "ID" || p.String() == "RequestedAt"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	rec := &recorder{}
	s := fake(rec, "cleanup-existing", twoNodes, nil)
	s.Approval, s.IsDestructive = true, true
	r := openRunner(t, dir, Options{}, fake(rec, "a", nil, nil), s)
	plans, err := r.DryRun(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plan a", "plan cleanup-existing"}, rec.get()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(plans) != 2 || !plans[0].Empty() || len(plans[1].Items) != 2 {
		t.Errorf("plans = %+v", plans)
	}
	want := "cleanup-existing:\n  n1  do  cleanup-existing\n  n2  do  cleanup-existing\n"
	if got := plans[1].String(); got != want {
		t.Errorf("rendered plan:\n%q\nwant\n%q", got, want)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != LockFile {
			t.Errorf("dry run left %s in the state directory", e.Name())
		}
	}
}

func TestPlanDigest(t *testing.T) {
	p1 := Plan{Checkpoint: "x", Items: []PlanItem{{Node: "n1", Action: "rm", Detail: "c1"}, {Node: "n2", Action: "rm", Detail: "c2"}}}
	p2 := Plan{Checkpoint: "x", Items: []PlanItem{{Node: "n2", Action: "rm", Detail: "c2"}, {Node: "n1", Action: "rm", Detail: "c1"}}}
	p3 := Plan{Checkpoint: "x", Items: []PlanItem{{Node: "n1", Action: "rm", Detail: "c1"}, {Node: "n2", Action: "rm", Detail: "c3"}}}
	p4 := Plan{Checkpoint: "y", Items: p1.Items}
	if p1.Digest() != p2.Digest() {
		t.Error("digest depends on item order")
	}
	for _, p := range []Plan{p3, p4, {Checkpoint: "x"}} {
		if p.Digest() == p1.Digest() {
			t.Errorf("plan %+v has the same digest as %+v", p, p1)
		}
	}
	if d := p1.Digest(); len(d) != len("sha256:")+64 {
		t.Errorf("digest %q", d)
	}
}

func TestListEditing(t *testing.T) {
	rec := &recorder{}
	mk := func(n string) Checkpoint { return fake(rec, n, nil, nil) }
	l, err := NewList(mk("a"), mk("c"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		op   func() error
		want []string
	}{
		{func() error { return l.InsertBefore("c", mk("b")) }, []string{"a", "b", "c"}},
		{func() error { return l.InsertAfter("c", mk("d")) }, []string{"a", "b", "c", "d"}},
		{func() error { return l.Remove("a") }, []string{"b", "c", "d"}},
		{func() error { return l.Replace("c", mk("c2")) }, []string{"b", "c2", "d"}},
		{func() error { return l.Replace("d", mk("d")) }, []string{"b", "c2", "d"}},
	}
	for i, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(s.want, l.Names()); diff != "" {
			t.Fatalf("step %d (-want +got):\n%s", i, diff)
		}
	}
	var ue *UnknownCheckpointError
	if err := l.InsertAfter("zz", mk("e")); !errors.As(err, &ue) {
		t.Errorf("insert after unknown: %v", err)
	}
	if err := l.Append(mk("b")); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate: %v", err)
	}
	if err := l.Replace("b", mk("d")); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("replace into duplicate: %v", err)
	}
	for _, bad := range []string{"", "Upper", "with space", "-lead", "a--b"} {
		if err := l.Append(mk(bad)); !errors.Is(err, ErrInvalidName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestRunnerListStatus(t *testing.T) {
	rec := &recorder{}
	s := fake(rec, "b", twoNodes, nil)
	s.Approval = true
	r := openRunner(t, t.TempDir(), Options{}, fake(rec, "a", twoNodes, nil), s)
	if _, err := r.RunOne(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	got, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{{"a", "fake a", false, false, StatusSucceeded}, {"b", "fake b", true, false, StatusPending}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
}

func TestRunnerPanicBecomesError(t *testing.T) {
	s := &Step{StepName: "p", RunFunc: func(ctx context.Context, p Plan) ([]NodeResult, error) { panic("oops") }}
	r := openRunner(t, t.TempDir(), Options{}, s)
	_, err := r.RunAll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "run panicked: oops") {
		t.Fatalf("err = %v", err)
	}
	l, _ := r.Store().Load()
	if st := l.Checkpoints["p"].Status; st != StatusFailed {
		t.Errorf("status %s", st)
	}
}

func TestRunnerRecordsAuditTrail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := approval.OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rec := &recorder{}
	s := fake(rec, "docker-installation", twoNodes, nil)
	s.Approval = true
	r := openRunner(t, t.TempDir(), Options{Audit: log, Approver: approval.NewAuto("bot", false)}, s)
	if _, err := r.RunAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := approval.Verify(path); err != nil || n != 3 {
		t.Fatalf("audit log: %d records, %v; want request, decision, outcome", n, err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if !strings.Contains(lines[2], `"kind":"outcome"`) || !strings.Contains(lines[2], `"outcome":"succeeded"`) {
		t.Errorf("last audit line %s", lines[2])
	}
}

func TestDryRunShowsEveryCheckpointPastAFailedPlan(t *testing.T) {
	rec := &recorder{}
	broken := &Step{StepName: "b", PlanFunc: func(ctx context.Context) (Plan, error) {
		rec.add("plan b")
		p := Plan{Items: []PlanItem{{Node: "n1", Action: "do", Detail: "b"}}}
		return p, &NodeError{Node: "n2", Op: "connect", Err: errors.New("connection refused")}
	}}
	whole := &Step{StepName: "c", PlanFunc: func(ctx context.Context) (Plan, error) {
		rec.add("plan c")
		return Plan{}, errors.New("no dashboard")
	}}
	r := openRunner(t, filepath.Join(t.TempDir(), "state"), Options{}, fake(rec, "a", twoNodes, nil), broken, whole, fake(rec, "d", twoNodes, nil))
	plans, err := r.DryRun(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "checkpoint b: plan: node n2: connect: connection refused") || !strings.Contains(err.Error(), "checkpoint c: plan: no dashboard") {
		t.Errorf("DryRun error = %v, want both failed plans named", err)
	}
	if diff := cmp.Diff([]string{"plan a", "plan b", "plan c", "plan d"}, rec.get()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(plans) != 4 {
		t.Fatalf("%d plans, want 4: %+v", len(plans), plans)
	}
	if diff := cmp.Diff([]PlanError{{Node: "n2", Error: "connect: connection refused"}}, plans[1].Errors); diff != "" {
		t.Errorf("plan b errors (-want +got):\n%s", diff)
	}
	want := "b:\n  n1  do     b\n  n2  ERROR  cannot plan: connect: connection refused\n"
	if got := plans[1].String(); got != want {
		t.Errorf("plan b rendered:\n%q\nwant\n%q", got, want)
	}
	if diff := cmp.Diff([]PlanError{{Node: AllNodes, Error: "no dashboard"}}, plans[2].Errors); diff != "" {
		t.Errorf("plan c errors (-want +got):\n%s", diff)
	}
	if plans[2].Empty() || len(plans[3].Items) != 2 {
		t.Errorf("plan c empty = %v, plan d = %+v", plans[2].Empty(), plans[3])
	}
}
