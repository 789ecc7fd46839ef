package raydeploy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/raydeploy/api"
)

// secretScanner looks for secret values, in the forms they could take in
// text (as is, JSON-quoted, base64, and as HTTP basic credentials), in
// named pieces of output.
type secretScanner struct {
	secrets map[string]string // what -> value
}

// scan returns one line per secret found in data, naming where.
func (s secretScanner) scan(where string, data []byte) []string {
	var out []string
	for _, what := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.secrets {
			if !yield(k) {
				return
			}
		}
	}) {
		v := s.secrets[what]
		q, _ := json.Marshal(v)
		forms := map[string]string{
			"as is":        v,
			"JSON-quoted":  string(q[1 : len(q)-1]),
			"base64":       base64.StdEncoding.EncodeToString([]byte(v)),
			"basic auth":   base64.StdEncoding.EncodeToString([]byte("admin:" + v)),
			"base64 (raw)": base64.RawStdEncoding.EncodeToString([]byte(v)),
		}
		for _, form := range slices.Sorted(func(yield func(string) bool) {
			for k := range forms {
				if !yield(k) {
					return
				}
			}
		}) {
			if bytes.Contains(data, []byte(forms[form])) {
				out = append(out, fmt.Sprintf("%s holds the %s (%s)", where, what, form))
				break
			}
		}
	}
	return out
}

// scanAll scans every source, in name order.
func (s secretScanner) scanAll(sources map[string][]byte) []string {
	var out []string
	for _, where := range slices.Sorted(func(yield func(string) bool) {
		for k := range sources {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, s.scan(where, sources[where])...)
	}
	return out
}

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestSecretScan deploys a one-node cluster with a sudo password (from a
// sudo_password_file), a Grafana admin password (grafana_password_file) and
// a Ray token (ray.token_auth) configured, then looks for the three values
// in every log line, event, error and report of the deploy and of a plan
// and a validation after it, in every file of the state directory, and in
// the REST API's answers (served over the same deployer). None may hold
// one. A planted copy of each secret in each kind of source is found, so
// the scan can fail.
func TestSecretScan(t *testing.T) {
	tb := newTestbed(t, 1)
	ctx := t.Context() // the deploy takes what the loaded machine needs; the test timeout bounds it
	dir := t.TempDir()

	sudo := tb.env.Nodes[0].DeployPassword
	grafana := randomSecret(t, "graf-")
	token := randomSecret(t, "raytok-")
	sudoFile, grafanaFile := filepath.Join(dir, "sudo-password"), filepath.Join(dir, "grafana-password")
	for f, v := range map[string]string{sudoFile: sudo, grafanaFile: grafana} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := tb.cluster
	c.SSH.Auth.SudoPassword, c.SSH.Auth.SudoPasswordFile = raydeploy.Secret{}, sudoFile
	c.Head.Auth.SudoPassword = raydeploy.Secret{}
	t.Setenv("RDSCAN_RAY_TOKEN", token)
	c.Ray.TokenAuth = raydeploy.TokenAuth{Enabled: true, TokenEnv: "RDSCAN_RAY_TOKEN"}
	tb.monitoring.GrafanaPasswordFile = grafanaFile
	scanner := secretScanner{secrets: map[string]string{"sudo password": sudo, "Grafana admin password": grafana, "Ray token": token}}

	// Logs, events and the API, all captured.
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var mu sync.Mutex
	var events bytes.Buffer
	tokFile := filepath.Join(dir, "tokens.json")
	viewer, err := api.CreateToken(tokFile, "viewer", api.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := api.CreateToken(tokFile, "operator", api.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := api.LoadTokens(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	var apiLogs lockedBuffer
	srv, err := api.New(api.Config{Tokens: tokens, Logger: slog.New(slog.NewJSONHandler(&apiLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sink := srv.EventSink()
	d := tb.deployer(t, raydeploy.Options{Logger: logger, Events: func(e checkpoint.Event) {
		j, err := json.Marshal(e)
		mu.Lock()
		fmt.Fprintf(&events, "%T %+v %#v %s %v\n", e, e, e, j, err)
		mu.Unlock()
		sink(e)
	}})
	if err := srv.Attach(d); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	sources := map[string][]byte{}
	report := func(name string, v any, err error) {
		j, _ := json.Marshal(v)
		sources[name] = fmt.Appendf(nil, "%+v\n%s\nerror: %v %+v", v, j, err, err)
	}
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	report("the deploy's report and error", rep, err)
	if err != nil {
		logReport(t, rep)
		t.Fatalf("deploy: %v", err)
	}
	for _, name := range []string{raydeploy.CheckpointRay, raydeploy.CheckpointMonitoring, raydeploy.CheckpointValidation} {
		if got := statusOf(rep, name); got != checkpoint.StatusSucceeded {
			logReport(t, rep)
			t.Fatalf("%s: %s, want succeeded (the secrets must have been used)", name, got)
		}
	}
	plans, err := d.Plan(ctx, checkpoint.RunOptions{})
	report("a plan after the deploy", plans, err)
	vr, err := d.Validate(ctx, raydeploy.ValidateOptions{})
	report("a validation after the deploy", vr, err)
	// The REST API's answers.
	get := func(path, tok string) []byte {
		req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s %s", path, resp.Status, body)
		}
		return body
	}
	// A plan through the API first: the audit log then records a request.
	req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/v1/plans", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+operator)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("POST /api/v1/plans: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sources["API POST /api/v1/plans"] = body
	}

	paths := []string{"/api/v1/cluster/status", "/api/v1/cluster/health", "/api/v1/checkpoints", "/api/v1/nodes",
		"/api/v1/executions", "/api/v1/audit", "/api/v1/audit/verify", "/api/v1/approval-requests", "/api/v1/whoami",
		"/api/v1/monitoring/grafana/dashboards"}
	for _, cp := range rep.Checkpoints {
		paths = append(paths, "/api/v1/checkpoints/"+cp.Name)
	}
	for _, n := range c.Nodes() {
		paths = append(paths, "/api/v1/nodes/"+n.ID())
	}
	for _, p := range paths {
		sources["API GET "+p] = get(p, viewer)
	}
	// Every file of the state directory.
	var files []string
	err = filepath.WalkDir(c.StateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.StateDir, p)
		files = append(files, rel)
		sources["state dir file "+rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{checkpoint.LedgerFile, raydeploy.AuditFile} {
		if !slices.Contains(files, want) {
			t.Errorf("state dir has no %s to scan: %v", want, files)
		}
	}
	t.Logf("scanned state dir files: %v", files)
	sources["deployer logs"] = []byte(logs.String())
	sources["API server logs"] = []byte(apiLogs.String())
	mu.Lock()
	sources["events"] = bytes.Clone(events.Bytes())
	mu.Unlock()
	for name, min := range map[string]int{"deployer logs": 1000, "events": 1000, "API GET /api/v1/audit": 100,
		"API POST /api/v1/plans": 100, "state dir file " + raydeploy.AuditFile: 100, "state dir file " + checkpoint.LedgerFile: 100} {
		if len(sources[name]) < min {
			t.Errorf("%s: only %d bytes captured, the scan would see little: %q", name, len(sources[name]), sources[name])
		}
	}

	for _, f := range scanner.scanAll(sources) {
		t.Error(f)
	}

	// The scan finds what is there: a copy of each secret planted in each
	// kind of source, in each form, is reported there and only there.
	t.Run("planted", func(t *testing.T) {
		i := 0
		for what, v := range scanner.secrets {
			for where, data := range sources {
				i++
				form := []byte(v)
				if i%2 == 0 {
					form = []byte(base64.StdEncoding.EncodeToString([]byte("admin:" + v)))
				}
				got := scanner.scanAll(map[string][]byte{where: append(bytes.Clone(data), form...)})
				if len(got) != 1 || !strings.HasPrefix(got[0], where+" holds the "+what) {
					t.Errorf("planted the %s in %s: found %q", what, where, got)
				}
			}
		}
	})
}
