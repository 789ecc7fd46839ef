package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
	"github.com/raydeploy/sdk/internal/testenv"
)

// debianPython has Debian's python3-fastapi and python3-uvicorn, which the
// replicas need (the `python3` on PATH may be another interpreter).
const debianPython = "/usr/bin/python3"

func requireServeRuntime(t *testing.T) {
	t.Helper()
	testenv.RequireBinary(t, debianPython, "python3")
	if out, err := exec.Command(debianPython, "-c", "import fastapi, uvicorn").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("Serve replicas need Debian's python3-fastapi and python3-uvicorn (scripts/setup --tests): %s", out)
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip("test skipped: " + msg)
	}
}

// keysMissing returns the paths of keys in want (a recorded Ray answer) that
// got lacks, descending into objects; the maps of ids (proxies, applications,
// deployments) are compared through their first entry.
func keysMissing(path string, want, got any, byEntry map[string]bool) []string {
	wm, ok := want.(map[string]any)
	if !ok {
		if wl, ok := want.([]any); ok && len(wl) > 0 {
			gl, _ := got.([]any)
			if len(gl) == 0 {
				return []string{path + "[] (empty)"}
			}
			return keysMissing(path+"[]", wl[0], gl[0], byEntry)
		}
		return nil
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return []string{path + " (not an object)"}
	}
	var miss []string
	if byEntry[path] {
		for _, wv := range wm {
			for _, gv := range gm {
				return keysMissing(path+".*", wv, gv, byEntry)
			}
			return []string{path + ".* (no entries)"}
		}
		return nil
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok {
			miss = append(miss, path+"."+k)
			continue
		}
		if k == "user_config" || k == "deployed_app_config" || k == "runtime_env" {
			continue // the submitted values, not a shape
		}
		miss = append(miss, keysMissing(path+"."+k, wv, gv, byEntry)...)
	}
	return miss
}

func TestServe(t *testing.T) {
	requireServeRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shim, _ := filepath.Abs("python")
	apps, _ := filepath.Abs("testdata/serveapp")
	gate := filepath.Join(t.TempDir(), "gate")
	head := newNodeAddr(t, "127.0.0.1")
	gcs, dash := freePort(t, head.ip), freePort(t, head.ip)
	head.proc = startRay(t, "head", []string{
		"PYTHONPATH=" + shim + ":" + apps, "RAY_STANDIN_PYTHON=" + debianPython, "GREET_GATE=" + gate,
	}, headArgs(t, head, gcs, dash, 2)...)
	c, err := raydash.New(raydash.Config{BaseURL: fmt.Sprintf("http://%s:%d", head.ip, dash)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "dashboard up", func() error { _, err := c.Version(ctx); return err })
	proxyPort := freePort(t, head.ip)
	config := func(apps ...string) []byte {
		return []byte(fmt.Sprintf(`{"http_options":{"host":"0.0.0.0","port":%d},"applications":[%s]}`, proxyPort, strings.Join(apps, ",")))
	}
	greet := `{"name":"greet","route_prefix":"/greet","import_path":"greet:app","deployments":[{"name":"Greeter","num_replicas":2}]}`
	broken := `{"name":"broken","route_prefix":"/broken","import_path":"broken:app"}`
	raw := func() map[string]any {
		var m map[string]any
		_, body, err := httpGet(ctx, fmt.Sprintf("http://%s:%d/api/serve/applications/", head.ip, dash))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	if err := c.PutServeApplications(ctx, config(greet, broken)); err != nil {
		t.Fatal(err)
	}
	// The import of greet waits for the gate: it is DEPLOYING until then.
	d, err := c.ServeApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Applications["greet"].Status; st != raydash.AppDeploying {
		t.Errorf("greet before its import finished: %s, want DEPLOYING", st)
	}
	eventually(t, 60*time.Second, "broken DEPLOY_FAILED", func() error {
		d, err := c.ServeApplications(ctx)
		if err != nil {
			return err
		}
		if a := d.Applications["broken"]; a.Status != raydash.AppDeployFailed {
			return fmt.Errorf("broken is %s", a.Status)
		}
		return nil
	})
	d, _ = c.ServeApplications(ctx)
	if msg := d.Applications["broken"].Message; !strings.Contains(msg, "ModuleNotFoundError: No module named 'not_a_module_of_anyone'") || !strings.Contains(msg, "Deploying app 'broken' failed") {
		t.Errorf("broken's message = %q, want the import error", msg)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "greet RUNNING", func() error {
		d, err := c.ServeApplications(ctx)
		if err != nil {
			return err
		}
		if a := d.Applications["greet"]; a.Status != raydash.AppRunning {
			return fmt.Errorf("greet is %s: %s", a.Status, a.Message)
		}
		return nil
	})

	// The answer has every key of the recorded one, with real values.
	rec, err := os.ReadFile("../../../internal/raydash/testdata/serve-rest-get-response.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(rec, &want); err != nil {
		t.Fatal(err)
	}
	// Compare an application of the recorded kind (one with num_replicas).
	got := raw()
	gotApps := got["applications"].(map[string]any)
	got["applications"] = map[string]any{"greet": gotApps["greet"]}
	if miss := keysMissing("", want, got, map[string]bool{".proxies": true, ".applications": true, ".applications.*.deployments": true}); len(miss) > 0 {
		t.Errorf("keys of the recorded answer missing: %v", miss)
	}
	g := gotApps["greet"].(map[string]any)
	dep := g["deployments"].(map[string]any)["Greeter"].(map[string]any)
	dc := dep["deployment_config"].(map[string]any)
	if dc["num_replicas"] != 2.0 || dc["max_ongoing_requests"] != 5.0 || dc["graceful_shutdown_timeout_s"] != 20.0 ||
		dc["ray_actor_options"].(map[string]any)["num_cpus"] != 0.5 {
		t.Errorf("deployment_config = %v, want Ray's filled-in defaults with the code's and the config's values", dc)
	}
	if gr := got["grpc_options"].(map[string]any); gr["port"] != 9000.0 {
		t.Errorf("grpc_options = %v", gr)
	}
	hexID := regexp.MustCompile(`^[0-9a-f]+$`)
	reps := dep["replicas"].([]any)
	if len(reps) != 2 {
		t.Fatalf("replicas = %v, want 2", reps)
	}
	pids := map[float64]bool{}
	for _, r := range reps {
		r := r.(map[string]any)
		pid := r["pid"].(float64)
		if pid <= 0 || syscall.Kill(int(pid), 0) != nil {
			t.Errorf("replica pid %v is not a live process", pid)
		}
		pids[pid] = true
		if a, w := r["actor_id"].(string), r["worker_id"].(string); len(a) != 32 || len(w) != 56 || !hexID.MatchString(a+w) || r["log_file_path"] == "" {
			t.Errorf("replica ids: %v", r)
		}
		if !strings.HasPrefix(r["replica_id"].(string), "greet#Greeter#") || r["state"] != "RUNNING" {
			t.Errorf("replica = %v", r)
		}
	}

	// The proxy routes to both replicas, prefix stripped.
	seen := map[float64]bool{}
	for range 4 {
		code, body, err := httpGet(ctx, fmt.Sprintf("http://%s:%d/greet/hello?name=ray", head.ip, proxyPort))
		if err != nil || code != 200 {
			t.Fatalf("proxy: %d %s %v", code, body, err)
		}
		var ans struct {
			Greeting string  `json:"greeting"`
			PID      float64 `json:"pid"`
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Greeting != "hello ray!" {
			t.Fatalf("proxy answer %s (%v)", body, err)
		}
		seen[ans.PID] = true
	}
	if len(seen) != 2 {
		t.Errorf("answers came from replicas %v, want both of %v", seen, pids)
	}
	if code, body, _ := httpGet(ctx, fmt.Sprintf("http://%s:%d/-/routes", head.ip, proxyPort)); code != 200 || !strings.Contains(body, `"/greet":"greet"`) {
		t.Errorf("/-/routes: %d %s", code, body)
	}

	// What real Serve rejects is rejected, and changes nothing.
	bad := config(`{"name":"a","import_path":"m:app","route_prefix":"/a","deployments":[{"name":"D","num_replicas":2,"autoscaling_config":{"min_replicas":1,"max_replicas":3}}]}`)
	err = c.PutServeApplications(ctx, bad)
	var he *raydash.HTTPError
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Body, "num_replicas is not allowed when autoscaling_config") {
		t.Errorf("num_replicas+autoscaling: err = %v, want 400 with Ray's text", err)
	}
	err = c.PutServeApplications(ctx, config(`{"name":"a","import_path":"m:app","route_prefix":"/a","replicas":3}`))
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Body, "extra fields not permitted") {
		t.Errorf("unknown key: err = %v, want 400", err)
	}

	// Dropping broken keeps greet's replicas; a builder with args redeploys it.
	if err := c.PutServeApplications(ctx, config(greet)); err != nil {
		t.Fatal(err)
	}
	d, _ = c.ServeApplications(ctx)
	if _, still := d.Applications["broken"]; still || len(d.Applications["greet"].Deployments["Greeter"].Replicas) != 2 {
		t.Errorf("after dropping broken: %+v", d.Applications)
	}
	for _, r := range d.Applications["greet"].Deployments["Greeter"].Replicas {
		if !pids[float64(r.PID)] {
			t.Errorf("unchanged greet got a new replica %d", r.PID)
		}
	}
	builder := `{"name":"greet","route_prefix":"/greet","import_path":"greet:build","args":{"punct":"?"},` +
		`"deployments":[{"name":"Greeter","autoscaling_config":{"min_replicas":1,"max_replicas":2}}]}`
	if err := c.PutServeApplications(ctx, config(builder)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "greet redeployed", func() error {
		code, body, err := httpGet(ctx, fmt.Sprintf("http://%s:%d/greet/hello", head.ip, proxyPort))
		if err != nil || code != 200 || !strings.Contains(body, "hello world?") {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	dep = raw()["applications"].(map[string]any)["greet"].(map[string]any)["deployments"].(map[string]any)["Greeter"].(map[string]any)
	ac, _ := dep["deployment_config"].(map[string]any)["autoscaling_config"].(map[string]any)
	if _, has := dep["deployment_config"].(map[string]any)["num_replicas"]; has || ac["max_replicas"] != 2.0 || ac["upscale_delay_s"] != 30.0 {
		t.Errorf("autoscaled deployment_config = %v", dep["deployment_config"])
	}

	// The recorded request points working_dir at a remote zip: valid, but
	// the stand-in has no network, so its deploy fails and says why.
	put, err := os.ReadFile("testdata/serve-rest-put-request.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PutServeApplications(ctx, put); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "text_app DEPLOY_FAILED", func() error {
		d, err := c.ServeApplications(ctx)
		if a := d.Applications["text_app"]; err != nil || a.Status != raydash.AppDeployFailed || !strings.Contains(a.Message, "runtime_env.working_dir") {
			return fmt.Errorf("text_app: %+v %v", a, err)
		}
		if _, kept := d.Applications["greet"]; kept {
			return errors.New("greet is still there: the PUT is declarative")
		}
		return nil
	})
	if err := c.PutServeApplications(ctx, config(builder)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "greet back", func() error {
		d, err := c.ServeApplications(ctx)
		if a := d.Applications["greet"]; err != nil || a.Status != raydash.AppRunning {
			return fmt.Errorf("greet: %+v %v", a, err)
		}
		return nil
	})
	d, _ = c.ServeApplications(ctx)
	pids = map[float64]bool{}
	for _, r := range d.Applications["greet"].Deployments["Greeter"].Replicas {
		pids[float64(r.PID)] = true
	}
	if err := c.DeleteServeApplications(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := c.ServeApplications(ctx); err != nil || len(d.Applications) != 0 {
		t.Errorf("after delete: %+v, %v; want no applications", d.Applications, err)
	}
	for pid := range pids {
		if err := syscall.Kill(int(pid), 0); err == nil {
			t.Errorf("replica %v still runs after DELETE", pid)
		}
	}
}
