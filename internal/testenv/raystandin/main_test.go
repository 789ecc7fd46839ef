package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
	"github.com/raydeploy/sdk/internal/testenv"
)

// rayBin is the stand-in built by TestMain, named "ray" like in the image;
// pyBin is a directory whose python and python3 are Debian's /usr/bin/python3
// (what the node image has), put first on the PATH of every started node so
// that jobs and tasks never run another interpreter found on the machine.
var rayBin, pyBin string

// systemPython is the interpreter the node image has (package python3).
const systemPython = "/usr/bin/python3"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raystandin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rayBin = filepath.Join(dir, "ray")
	pyBin = filepath.Join(dir, "bin")
	if err := os.Mkdir(pyBin, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, name := range []string{"python", "python3"} {
		if err := os.Symlink(systemPython, filepath.Join(pyBin, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	args := []string{"build", "-o", rayBin}
	if os.Getenv("RAYSTANDIN_RACE") == "1" { // build the stand-in with the race detector
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build stand-in: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port free on ip at the time of the call.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one `ray start --block` process of a test.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stop terminates the process (SIGTERM, then SIGKILL) and waits for it.
func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startRay runs the stand-in with args and env; the process is stopped at cleanup.
func startRay(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(rayBin, args...)
	pyPath, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pyPath, "PATH="+pyBin+":"+os.Getenv("PATH"), "RAY_STANDIN_PYTHON="+systemPython)
	cmd.Env = append(cmd.Env, env...)
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race", name)
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// eventually polls cond every 100 ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// httpGet returns the status and body of a GET.
func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), err
}

// nodeAddr is what a test knows about one started node.
type nodeAddr struct {
	ip                     string
	agentPort, metricsPort int
	tempDir                string
	proc                   *proc
}

// headArgs returns the flags the SDK passes to a head, on loopback ports.
func headArgs(t *testing.T, n *nodeAddr, gcsPort, dashPort int, cpus int) []string {
	return []string{"start", "--head", "--port=" + strconv.Itoa(gcsPort),
		"--dashboard-host=" + n.ip, "--dashboard-port=" + strconv.Itoa(dashPort),
		"--metrics-export-port=" + strconv.Itoa(n.metricsPort),
		"--node-ip-address=" + n.ip, "--num-cpus=" + strconv.Itoa(cpus), "--num-gpus=0",
		`--resources={"head_slot": 1}`, "--min-worker-port=10002", "--max-worker-port=19999",
		"--disable-usage-stats", "--dashboard-agent-listen-port=" + strconv.Itoa(n.agentPort),
		"--temp-dir=" + n.tempDir, "--block"}
}

func newNodeAddr(t *testing.T, ip string) *nodeAddr {
	return &nodeAddr{ip: ip, agentPort: freePort(t, ip), metricsPort: freePort(t, ip), tempDir: t.TempDir()}
}

// requirePython fails (RAYDEPLOY_REQUIRE_DOCKER=1) or skips the test when
// the node image's interpreter is missing: jobs and tasks run on it.
func requirePython(t *testing.T) {
	t.Helper()
	testenv.RequireBinary(t, systemPython, "python3")
}

// sdkValidationJob is the path of the SDK's own validation job, the file
// final-validation embeds and submits.
func sdkValidationJob(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "raydeploy", "validate_job.py"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the SDK's validation job: %v", err)
	}
	return p
}

// errorsIsUnauthorized is a helper for readability in assertions.
func errorsIsUnauthorized(err error) bool { return errors.Is(err, raydash.ErrUnauthorized) }
