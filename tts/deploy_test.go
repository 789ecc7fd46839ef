package tts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// standinHead runs the Ray stand-in's head as a local process with the app
// and a small other application on PYTHONPATH, and returns its dashboard.
func standinHead(t testing.TB) Dashboard {
	t.Helper()
	requireAppRuntime(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "ray")
	if out, err := exec.Command("go", "build", "-o", bin, "../internal/testenv/raystandin").CombinedOutput(); err != nil {
		t.Fatalf("build the Ray stand-in: %v\n%s", err, out)
	}
	app := filepath.Join(dir, "app")
	if err := WriteApp(app); err != nil {
		t.Fatal(err)
	}
	shim, _ := filepath.Abs("../internal/testenv/raystandin/python")
	other, _ := filepath.Abs("../internal/testenv/raystandin/testdata/serveapp")
	dash := freePort(t)
	cmd := exec.Command(bin, "start", "--head", fmt.Sprintf("--port=%d", freePort(t)),
		"--dashboard-host=127.0.0.1", fmt.Sprintf("--dashboard-port=%d", dash),
		fmt.Sprintf("--metrics-export-port=%d", freePort(t)), "--node-ip-address=127.0.0.1", "--num-cpus=2",
		fmt.Sprintf("--dashboard-agent-listen-port=%d", freePort(t)), "--temp-dir="+filepath.Join(dir, "ray-tmp"),
		"--disable-usage-stats", "--block")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+strings.Join([]string{shim, app, other}, ":"),
		"RAY_STANDIN_PYTHON="+debianPython, "PYTHONDONTWRITEBYTECODE=1")
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("stand-in output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(dir, "ray-tmp", "session_*", "logs", "serve", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s ---\n%s", filepath.Base(l), b)
			}
		}
	})
	d := Dashboard{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", dash)}
	c, _ := d.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := c.ServeApplications(ctx); err == nil {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the stand-in's dashboard did not answer:\n%s", out.String())
		case <-time.After(100 * time.Millisecond): // poll until the dashboard listens
		}
	}
}

func TestDeployOnServeStandin(t *testing.T) {
	d := standinHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	port := freePort(t)
	c, _ := d.client()

	// Another team's application, deployed before ours, must survive.
	greet := fmt.Sprintf(`{"http_options":{"host":"0.0.0.0","port":%d},"applications":[{"name":"greet","route_prefix":"/greet","import_path":"greet:app"}]}`, port)
	if err := c.PutServeApplications(ctx, []byte(greet)); err != nil {
		t.Fatal(err)
	}

	svc := Service{HTTPPort: port, RoutePrefix: "/tts", Autoscaling: Autoscaling{MinReplicas: 1, MaxReplicas: 2}}
	p, err := svc.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != ActionCreate || len(p.Others) != 1 || p.Others[0] != "greet" {
		t.Fatalf("plan = %s", p)
	}
	if err := svc.Deploy(ctx, d, p); err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(ClientConfig{BaseURL: fmt.Sprintf("http://127.0.0.1:%d/tts", port)})
	if err != nil {
		t.Fatal(err)
	}
	a, res, err := client.SynthesizeAudio(ctx, Request{Text: "Deployed on Serve and speaking."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSpeech(a, 5); err != nil || res.VoiceID != "slt" {
		t.Errorf("through Serve's proxy: %v, %+v", err, res)
	}
	if rep, err := Gate(ctx, client, GateOptions{Emotions: []string{"neutral", "sad"}, NeutralVoices: []string{"espeak-en-us"}}); err != nil {
		t.Errorf("gate through Serve: %v\n%s", err, rep)
	}
	// Streaming and the WebSocket go through the proxy too.
	ws, err := client.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := ws.Synthesize(ctx, Request{Text: "One. Two. Three."}, func(b []byte) error { n += len(b); return nil }); err != nil || n == 0 {
		t.Errorf("websocket through the proxy: %d bytes, %v", n, err)
	}
	ws.Close()

	// Planning again changes nothing; a new maximum is an update.
	if p, err := svc.Plan(ctx, d); err != nil || !p.Empty() {
		t.Errorf("re-plan = %s, %v; want none", p, err)
	}
	svc.Autoscaling.MaxReplicas = 3
	p, err = svc.Plan(ctx, d)
	if err != nil || p.Action != ActionUpdate || !strings.Contains(strings.Join(p.Changes, "\n"), "max_replicas: 2 -> 3") {
		t.Fatalf("update plan = %s, %v", p, err)
	}
	// A plan made before Serve changed is refused.
	svc2 := svc
	svc2.MaxTextChars = 500
	stale, err := svc2.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Deploy(ctx, d, p); err != nil {
		t.Fatal(err)
	}
	if err := svc2.Deploy(ctx, d, stale); !errors.Is(err, ErrStalePlan) {
		t.Errorf("stale plan: err = %v, want ErrStalePlan", err)
	}

	// Code that fails in the replica surfaces Serve's DEPLOY_FAILED message.
	bad := svc
	bad.Voices, bad.DefaultVoice = []string{"nosuchvoice"}, "nosuchvoice"
	p, err = bad.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Deploy(ctx, d, p)
	var de *DeployError
	if !errors.As(err, &de) || de.Status != "DEPLOY_FAILED" || !strings.Contains(de.Message, "configured voices not available") {
		t.Fatalf("broken deploy: err = %v, want a DeployError with the replica's error", err)
	}

	// Remove takes only ours away.
	if err := svc.Remove(ctx, d); err != nil {
		t.Fatal(err)
	}
	st, err := c.ServeApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, still := st.Applications[svc.WithDefaults().Name]; still || st.Applications["greet"].Status != "RUNNING" {
		t.Errorf("after Remove: %+v; want greet RUNNING and no tts", st.Applications)
	}
}
