package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3/docker"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestPrintedCommands runs, verbatim and each in a new shell with a clean
// environment (an empty HOME), the README's main job and every command the
// sandbox prints, then the README's commands for one's own machines against
// the sandbox's cluster file, and checks that each does what it says. The
// README's test command is the one .ci/run runs (it cannot run inside the
// suite it starts).
func TestPrintedCommands(t *testing.T) {
	testenv.RequireDocker(t)
	root := repoRoot(t)
	readme := readmeCommands(t, filepath.Join(root, "README.md"))
	if len(readme) < 6 {
		t.Fatalf("README has %d commands, want the 2 main ones and 4 for one's own machines: %q", len(readme), readme)
	}
	mainJob, testCmd, own := readme[0], readme[1], readme[2:]
	if !strings.Contains(mainJob, "go run ./examples/sandbox") {
		t.Fatalf("README's first command %q is not the sandbox", mainJob)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\n"+testCmd+"\n") {
		t.Errorf("README's test command %q is not what .ci/run runs:\n%s", testCmd, ci)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	env := cleanEnv(t)

	// The main job, as the README says, until it prints "Ctrl-C removes it."
	sb := exec.Command("/bin/bash", "-c", mainJob)
	sb.Dir, sb.Env = root, env
	sb.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := sb.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	sb.Stderr = &stderr
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sb.Wait() }()
	interrupt := func() { _ = syscall.Kill(-sb.Process.Pid, syscall.SIGINT) }
	t.Cleanup(func() {
		interrupt()
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			_ = syscall.Kill(-sb.Process.Pid, syscall.SIGKILL)
		}
	})
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if lines.Text() == "Ctrl-C removes it." {
			ready = true
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if !ready {
		t.Fatalf("the main job ended before it was ready:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	t.Logf("main job printed:\n%s", out.String())
	name := regexp.MustCompile(`(?m)^cluster (\S+): `).FindStringSubmatch(out.String())
	cfg := regexp.MustCompile(`(?m)^config: (.+)$`).FindStringSubmatch(out.String())
	if name == nil || cfg == nil {
		t.Fatalf("main job printed no cluster name or config path:\n%s", out.String())
	}

	// Every command it printed.
	printed := regexp.MustCompile(`(?m)^\s*(\S+)?\s*\$ (.+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(printed) < 8 {
		t.Errorf("main job printed %d commands, want a login per node, three forwards, deploy again and validate", len(printed))
	}
	for _, m := range printed {
		label, cmd := m[1], m[2]
		t.Run(firstWords(cmd), func(t *testing.T) {
			runPrinted(t, ctx, root, env, label, cmd)
		})
	}

	// The README's commands for one's own machines, with cluster.yaml the
	// sandbox's, from a copy of the repository root (links to it).
	own0 := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(own0, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(cfg[1], filepath.Join(own0, "cluster.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range own {
		t.Run(firstWords(cmd), func(t *testing.T) {
			res := shell(t, ctx, own0, env, cmd, "")
			if res.err != nil {
				t.Fatalf("%s: %v\n%s", cmd, res.err, res.out)
			}
			switch {
			case strings.Contains(cmd, "--dry-run"):
				for _, cp := range []string{"prerequisites-check", "docker-installation", "cleanup-existing", "ray-deployment", "monitoring-deployment", "final-validation"} {
					if !strings.Contains(res.out, cp) {
						t.Errorf("dry run does not mention %s:\n%s", cp, res.out)
					}
				}
			case strings.Contains(cmd, "--list-checkpoints"):
				if !strings.Contains(res.out, "final-validation") {
					t.Errorf("listing lacks final-validation:\n%s", res.out)
				}
			case strings.Contains(cmd, "--format json"):
				var v map[string]any
				if err := json.Unmarshal([]byte(res.out), &v); err != nil {
					t.Errorf("validate --format json printed no JSON document: %v\n%s", err, res.out)
				}
			}
		})
	}

	// Ctrl-C removes it all.
	interrupt()
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("the main job did not end after Ctrl-C")
	}
	pool, err := testenv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	ctrs, err := pool.Client.ListContainers(dockerLabelFilter(testenv.LabelTestenv + "=" + name[1]))
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Errorf("after Ctrl-C %d containers of %s remain", len(ctrs), name[1])
	}
}

// runPrinted runs one printed command and checks its effect.
func runPrinted(t *testing.T, ctx context.Context, root string, env []string, label, cmd string) {
	switch {
	case strings.Contains(cmd, " -N -L "):
		// A forward: while it runs, the local port answers HTTP.
		port := regexp.MustCompile(` -L (\d+):`).FindStringSubmatch(cmd)
		if port == nil {
			t.Fatalf("no local port in %q", cmd)
		}
		c := exec.CommandContext(ctx, "/bin/bash", "-c", cmd)
		c.Dir, c.Env = root, env
		var out lockedBuffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
		url := "http://127.0.0.1:" + port[1] + "/"
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Errorf("%s answered %s through %q", url, resp.Status, cmd)
				}
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never answered through %q: %v\n%s", url, cmd, err, out.String())
			case <-time.After(200 * time.Millisecond):
			}
		}
	case strings.HasPrefix(cmd, "ssh "):
		// A login: the shell it opens runs what we type, on that node.
		res := shell(t, ctx, root, env, cmd, "hostname\n")
		if res.err != nil || strings.TrimSpace(res.out) != label {
			t.Errorf("%q with hostname typed: %q, %v; want %s", cmd, res.out, res.err, label)
		}
	case strings.Contains(cmd, "go run ./examples/deploy-master") && strings.HasSuffix(cmd, "--deploy"):
		res := shell(t, ctx, root, env, cmd, "")
		if res.err != nil || !strings.Contains(res.out, "0 checkpoint(s) run") && !strings.Contains(res.out, "✓ deployed") {
			t.Errorf("%q: %v\n%s", cmd, res.err, res.out)
		}
	case strings.Contains(cmd, "go run ./examples/validate"):
		if res := shell(t, ctx, root, env, cmd, ""); res.err != nil {
			t.Errorf("%q: %v\n%s", cmd, res.err, res.out)
		}
	default:
		t.Errorf("the sandbox printed a command this test does not know how to check: %q", cmd)
	}
}

type shellResult struct {
	out string
	err error
}

// shell runs cmd with bash -c in dir with env, stdin as given.
func shell(t *testing.T, ctx context.Context, dir string, env []string, cmd, stdin string) shellResult {
	t.Helper()
	c := exec.CommandContext(ctx, "/bin/bash", "-c", cmd)
	c.Dir, c.Env = dir, env
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	return shellResult{string(out), err}
}

// cleanEnv is the environment of a new shell of a new user: PATH with go,
// an empty HOME, and Go's caches where this process has them (so nothing is
// downloaded or rebuilt again).
func cleanEnv(t *testing.T) []string {
	home := t.TempDir()
	env := []string{"HOME=" + home, "USER=root", "LANG=C.UTF-8",
		"PATH=" + filepath.Join(runtime.GOROOT(), "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "DOCKER_HOST", testenv.RequireEnv, testenv.ImageRepoEnv, testenv.StorageDriverEnv} {
		v := os.Getenv(k)
		if v == "" && strings.HasPrefix(k, "GO") {
			out, err := exec.Command("go", "env", k).Output()
			if err != nil {
				t.Fatalf("go env %s: %v", k, err)
			}
			v = strings.TrimSpace(string(out))
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// readmeCommands returns the command lines of the README's sh blocks, without
// comments.
func readmeCommands(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			if i := strings.Index(line, "  #"); i >= 0 {
				line = line[:i]
			}
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd)) // examples/sandbox
}

func firstWords(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, "_")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func dockerLabelFilter(label string) docker.ListContainersOptions {
	return docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {label}}}
}
