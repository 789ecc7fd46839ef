package api_test

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/raydeploy/sdk/raydeploy/api"
)

func approveOnly(t *testing.T, e *env) api.ApprovalRequest {
	t.Helper()
	waitFor(t, "a pending request", func() bool { return len(e.pending()) == 1 })
	req := e.pending()[0]
	var da api.DecisionAnswer
	if c := e.call("approver", "POST", "/api/v1/approval-requests/"+req.ID+"/decision",
		map[string]any{"approved": true, "plan_digest": req.PlanDigest, "acknowledge_risks": true}, &da); c != 200 {
		t.Fatalf("approve: %d", c)
	}
	return req
}

// TestRestartDuringRun stops the server while cleanup-existing runs: the
// execution is INTERRUPTED after the restart, and resuming it finishes.
// A record a crashed server left RUNNING is found INTERRUPTED too.
func TestRestartDuringRun(t *testing.T) {
	gate := make(chan struct{}) // never closed: the run is cut off
	e := newEnv(t, envOptions{gate: gate})
	var ex api.Execution
	if c := e.call("operator", "POST", "/api/v1/executions", map[string]any{}, &ex); c != 202 {
		t.Fatalf("start: %d", c)
	}
	approveOnly(t, e)
	waitFor(t, "cleanup-existing running on the nodes", func() bool {
		var cs api.CheckpointStatus
		e.call("viewer", "GET", "/api/v1/checkpoints/cleanup-existing", nil, &cs)
		return cs.Status == "IN_PROGRESS" && len(cs.Nodes) == 2
	})

	e.restart(envOptions{})
	x := e.execution(ex.ID)
	if x.Status != api.ExecInterrupted || !strings.Contains(x.Message, "/resume") {
		t.Fatalf("after restart: %+v", x)
	}
	var st api.ClusterStatus
	if c := e.call("viewer", "GET", "/api/v1/cluster/status", nil, &st); c != 200 || st.RunningExecution != "" {
		t.Fatalf("status after restart: %d %+v", c, st)
	}
	var res api.Execution
	if c := e.call("operator", "POST", "/api/v1/executions/"+ex.ID+"/resume", nil, &res); c != 202 {
		t.Fatalf("resume: %d", c)
	}
	approveOnly(t, e) // a new run asks again: the old decision covered the old run
	waitFor(t, "the resumed run", func() bool { return e.execution(res.ID).Status == api.ExecCompleted })
	x = e.execution(res.ID)
	skipped := 0
	for _, c := range x.Checkpoints {
		if c.Name == "prerequisites-check" && c.Status != "skipped-satisfied" {
			t.Errorf("resume re-ran %s: %+v", c.Name, c)
		}
		if c.Status == "skipped-satisfied" {
			skipped++
		}
	}
	if skipped == 0 || len(x.Checkpoints) != 6 {
		t.Fatalf("resumed execution: %+v", x)
	}

	// A crash: the record still says RUNNING when the next server starts.
	path := filepath.Join(e.state, "api", "executions", res.ID+".json")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"status": "COMPLETED"`, `"status": "RUNNING"`, 1)), 0o600)
	e.restart(envOptions{})
	if x := e.execution(res.ID); x.Status != api.ExecInterrupted {
		t.Fatalf("a crashed run after restart: %s", x.Status)
	}
}

// TestWebhooksSignedAndRetried: approval pending, approval decided and run
// finished reach the hook, signed; a failed delivery is retried.
func TestWebhooksSignedAndRetried(t *testing.T) {
	secret := []byte("s3cret-for-the-test")
	var mu sync.Mutex
	got := map[string]int{}
	attempts := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !api.VerifyWebhook(secret, body, r.Header.Get("X-Raydeploy-Signature")) {
			t.Errorf("bad signature on %s", body)
			w.WriteHeader(400)
			return
		}
		if hmac.Equal([]byte(api.SignWebhook([]byte("other"), body)), []byte(r.Header.Get("X-Raydeploy-Signature"))) {
			t.Error("signature does not depend on the secret")
		}
		var p api.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[p.DeliveryID]++
		if p.Event.Type == api.EventApprovalPending && attempts[p.DeliveryID] == 1 {
			w.WriteHeader(503) // the first try fails
			return
		}
		got[p.Event.Type]++
		if p.Cluster != "apitest" {
			t.Errorf("cluster %q", p.Cluster)
		}
	}))
	defer hook.Close()
	e := newEnv(t, envOptions{webhooks: []api.Webhook{{URL: hook.URL, Secret: secret}}})
	var ce api.CheckpointExecution
	if c := e.call("operator", "POST", "/api/v1/checkpoints/cleanup-existing", map[string]bool{"approve": true}, &ce); c != 202 {
		t.Fatalf("start: %d", c)
	}
	approveOnly(t, e)
	waitFor(t, "all three deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[api.EventApprovalPending] == 1 && got[api.EventApprovalDecided] == 1 && got[api.EventRunFinished] == 1
	})
	mu.Lock()
	defer mu.Unlock()
	for id, n := range attempts {
		if n > 2 {
			t.Errorf("delivery %s: %d attempts", id, n)
		}
	}
	if len(got) != 3 {
		t.Errorf("unexpected event types delivered: %v", got)
	}
}

// TestDeployerKeepsTheAuditLog: with a Deployer that records approvals
// itself, the server records each request and decision once, in the
// Deployer's log, with the principal as requester, beside its API records.
func TestDeployerKeepsTheAuditLog(t *testing.T) {
	e := newEnv(t, envOptions{deployerAudits: true})
	var ce api.CheckpointExecution
	if c := e.call("operator", "POST", "/api/v1/checkpoints/cleanup-existing", map[string]bool{"approve": true}, &ce); c != 202 {
		t.Fatalf("start: %d", c)
	}
	approveOnly(t, e)
	waitFor(t, "the run", func() bool { return e.execution(ce.ExecutionID).Status == api.ExecCompleted })
	var au api.AuditAnswer
	e.call("viewer", "GET", "/api/v1/audit?limit=1000", nil, &au)
	kinds := map[string]int{}
	for _, r := range au.Records {
		kinds[r.Kind]++
		if r.Kind == "request" && r.Request.RequestedBy != "operator" {
			t.Errorf("request recorded for %q, want the principal operator", r.Request.RequestedBy)
		}
	}
	if kinds["request"] != 1 || kinds["decision"] != 1 || kinds["api"] != 2 {
		t.Fatalf("audit kinds %v: want one request, one decision, two api records", kinds)
	}
}
