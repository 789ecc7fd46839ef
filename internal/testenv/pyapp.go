package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// PythonApp is a Python web application a test runs on this machine, such
// as the TTS app under Debian's python3-fastapi and python3-uvicorn.
type PythonApp struct {
	// Python is the interpreter (default /usr/bin/python3: Debian's, which
	// has Debian's packages; `python3` on PATH may be another one).
	Python string
	// Write writes the app's Python packages under dir, which goes on
	// PYTHONPATH.
	Write func(dir string) error
	// Module is run with `python -m Module --host 127.0.0.1 --port PORT`,
	// then Args.
	Module string
	Args   []string
	// Health is the path that answers 200 once the app serves (default /health).
	Health string
}

// RunningApp is a PythonApp that answers on URL.
type RunningApp struct {
	// URL is the app's base URL, http://127.0.0.1:PORT.
	URL string
	// Output is what the app wrote to stdout and stderr.
	Output *SyncBuffer
}

// StartPythonApp runs app on a free local port and returns once its health
// path answers 200. The process is killed by t.Cleanup, which logs its
// output when the test failed; a process that exits before it is healthy
// fails the test with its output.
func StartPythonApp(t testing.TB, app PythonApp) *RunningApp {
	t.Helper()
	if app.Python == "" {
		app.Python = "/usr/bin/python3"
	}
	if app.Health == "" {
		app.Health = "/health"
	}
	dir := t.TempDir()
	if err := app.Write(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := append([]string{"-m", app.Module, "--host", "127.0.0.1", "--port", fmt.Sprint(port)}, app.Args...)
	cmd := exec.Command(app.Python, args...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", app.Module, out.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if healthy(ctx, url+app.Health) {
			return &RunningApp{URL: url, Output: out}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was healthy: %v\n%s", app.Module, waitErr, out.String())
		case <-ctx.Done():
			t.Fatalf("%s not healthy at %s: %v\n%s", app.Module, url+app.Health, ctx.Err(), out.String())
		case <-tick.C:
		}
	}
}

// healthy reports whether GET url answers 200.
func healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
