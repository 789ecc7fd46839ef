package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// matrixRequest is a request to each route that changes nothing whoever
// sends it (unknown ids, a checkpoint that needs approval, ...).
func matrixRequest(method, pattern string) (path string, body any) {
	path = strings.NewReplacer("{checkpoint_name}", "cleanup-existing", "{node_name}", "head",
		"{execution_id}", strings.Repeat("a", 32), "{request_id}", "nope").Replace(pattern)
	switch {
	case method != "POST":
	case strings.HasSuffix(pattern, "/decision"):
		body = map[string]any{"approved": false, "plan_digest": "sha256:x"}
	case strings.HasPrefix(pattern, "/api/v1/approvals/"):
		body = map[string]any{"approved_by": "x", "reason": "matrix"}
	case pattern == "/api/v1/executions":
		body = map[string]any{"checkpoint": "no-such-checkpoint"}
	default:
		body = map[string]any{}
	}
	return path, body
}

// TestRoleMatrix calls every endpoint with no token, a wrong token and each
// role: 401 without a valid token, 403 below the endpoint's role, neither at
// or above it; the document's x-required-role says the same.
func TestRoleMatrix(t *testing.T) {
	// A Deployer that reaches nodes, so the Prometheus proxy has something to proxy.
	e, _ := newObservingEnv(t, true, func(c *api.Config) { c.FailedAuthBurst = 1000; c.FailedAuthRate = rate.Inf })
	docRoles := map[string]string{}
	for path, item := range e.val.doc.Paths.Map() {
		for method, op := range item.Operations() {
			r, _ := op.Extensions["x-required-role"].(string)
			docRoles[method+" "+path] = r
		}
	}
	routes := e.srv.Routes()
	if len(routes) != len(docRoles) {
		t.Errorf("server has %d routes, document %d operations", len(routes), len(docRoles))
	}
	callers := []string{"", "rdt_wrongwrongwrong", "viewer", "operator", "approver", "admin"}
	rank := map[api.Role]int{"": 0, api.RoleViewer: 1, api.RoleOperator: 2, api.RoleApprover: 3, api.RoleAdmin: 4}
	for _, rt := range routes {
		if got := docRoles[rt.Method+" "+rt.Path]; got != string(rt.Role) {
			t.Errorf("%s %s: server wants role %q, document says %q", rt.Method, rt.Path, rt.Role, got)
		}
		for _, who := range callers {
			path, body := matrixRequest(rt.Method, rt.Path)
			var hdr http.Header
			caller := rank[api.Role(who)]
			if rt.Role != "" && caller == 0 {
				hdr = invalid() // a request without valid credentials is outside the document
			}
			if rt.Path == "/api/v1/events" {
				continue // streamed: checked below
			}
			var raw json.RawMessage
			c := e.callH(who, rt.Method, path, body, &raw, hdr)
			var errb api.ErrorBody
			_ = json.Unmarshal(raw, &errb)
			switch {
			case rt.Role == "":
				if c == 401 || c == 403 {
					t.Errorf("%s %s as %q: %d on a public endpoint", rt.Method, path, who, c)
				}
			case caller == 0:
				if c != 401 || errb.Error != "UNAUTHORIZED" {
					t.Errorf("%s %s as %q: %d %s, want 401", rt.Method, path, who, c, errb.Error)
				}
			case caller < rank[rt.Role]:
				if c != 403 || errb.Error != "FORBIDDEN" {
					t.Errorf("%s %s as %s: %d %s, want 403", rt.Method, path, who, c, errb.Error)
				}
			default:
				if c == 401 || c == 403 || c >= 500 {
					t.Errorf("%s %s as %s: %d %+v", rt.Method, path, who, c, errb)
				}
			}
		}
	}
	for _, who := range callers {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", e.ts.URL+"/api/v1/events", nil)
		if who != "" {
			req.Header.Set("Authorization", "Bearer "+e.tokens[who]+map[bool]string{true: "", false: who}[e.tokens[who] != ""])
		}
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		want := 200
		if rank[api.Role(who)] == 0 {
			want = 401
		}
		if resp.StatusCode != want {
			t.Errorf("events as %q: %d, want %d", who, resp.StatusCode, want)
		}
		cancel()
		resp.Body.Close()
	}
}

func TestFailedAuthIsRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *api.Config) { c.FailedAuthBurst = 3; c.FailedAuthRate = rate.Limit(0.001) }})
	for i := range 3 {
		if c := e.callH("rdt_guess", "GET", "/api/v1/whoami", nil, nil, invalid()); c != 401 {
			t.Fatalf("guess %d: %d", i, c)
		}
	}
	var errb api.ErrorBody
	if c := e.callH("rdt_guess", "GET", "/api/v1/whoami", nil, &errb, invalid()); c != 429 || errb.Error != "RATE_LIMITED" {
		t.Fatalf("fourth guess: %d %+v", c, errb)
	}
	// Even the right token waits: guessing gains nothing.
	if c := e.call("viewer", "GET", "/api/v1/whoami", nil, &errb); c != 429 {
		t.Fatalf("valid token from a limited address: %d", c)
	}
}

func TestHardening(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *api.Config) {
		c.MaxBodyBytes = 512
		c.CORSOrigins = []string{"https://ops.example.org"}
	}})
	var errb api.ErrorBody
	if c := e.callH("operator", "POST", "/api/v1/plans", `{"checkpoint":"x","colour":"red"}`, &errb, invalid()); c != 400 || !strings.Contains(errb.Message, "colour") {
		t.Fatalf("unknown key: %d %+v", c, errb)
	}
	if c := e.callH("operator", "POST", "/api/v1/plans", `{"resume": "yes"}`, &errb, invalid()); c != 400 || !strings.Contains(errb.Message, "resume") {
		t.Fatalf("wrong type: %d %+v", c, errb)
	}
	big := `{"checkpoint":"` + strings.Repeat("a", 1000) + `"}`
	if c := e.callH("operator", "POST", "/api/v1/plans", big, &errb, invalid()); c != 413 || errb.Error != "TOO_LARGE" {
		t.Fatalf("big body: %d %+v", c, errb)
	}
	hdr := invalid()
	hdr.Set("Content-Type", "text/plain")
	if c := e.callH("operator", "POST", "/api/v1/plans", `{}`, &errb, hdr); c != 415 {
		t.Fatalf("text body: %d %+v", c, errb)
	}
	// Internal errors say nothing of the cause (the log has it).
	if err := os.WriteFile(filepath.Join(e.state, "ledger.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := e.call("viewer", "GET", "/api/v1/cluster/status", nil, &errb); c != 500 || errb.Message != "internal error; the server log has the details" {
		t.Fatalf("status over a corrupt ledger: %d %+v", c, errb)
	}
	if c := e.call("", "GET", "/readyz", nil, &errb); c != 503 {
		t.Fatalf("readyz over a corrupt ledger: %d", c)
	}
	os.Remove(filepath.Join(e.state, "ledger.json"))

	// CORS: the listed origin only.
	for origin, want := range map[string]string{"https://ops.example.org": "https://ops.example.org", "https://evil.example": ""} {
		req, _ := http.NewRequest("OPTIONS", e.ts.URL+"/api/v1/cluster/status", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("preflight from %s: allow-origin %q, want %q", origin, got, want)
		}
	}

	// The UI: embedded, strict CSP, the token in sessionStorage only.
	resp, err := http.Get(e.ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "/ui/app.js") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("UI: %d %s", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get(e.ts.URL + "/ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(js), "sessionStorage") || strings.Contains(string(js), "localStorage") || strings.Contains(string(js), "document.cookie") {
		t.Fatal("the UI keeps the token somewhere else than sessionStorage")
	}
}

func TestTokensFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	tok, err := api.CreateToken(path, "alice", api.RoleApprover)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v, %v", st.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), strings.TrimPrefix(tok, api.TokenPrefix)) {
		t.Fatal("the tokens file holds the token itself")
	}
	toks, err := api.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := toks.Authenticate(tok); !ok || p.Name != "alice" || p.Role != api.RoleApprover {
		t.Fatalf("Authenticate = %+v, %v", p, ok)
	}
	if _, ok := toks.Authenticate(tok + "x"); ok {
		t.Fatal("a changed token authenticates")
	}
	os.Chmod(path, 0o644)
	if _, err := api.LoadTokens(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable tokens file loads: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte(`{"version":1,"tokens":[{"name":"a","role":"root","sha256":"`+strings.Repeat("0", 64)+`","created_at":"2026-01-01T00:00:00Z"}]}`), 0o600)
	if _, err := api.LoadTokens(path); err == nil || !strings.Contains(err.Error(), "tokens[0].role") {
		t.Fatalf("unknown role: %v", err)
	}
}
