package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// cli runs the command in-process and returns its exit status and output.
func cli(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeCluster writes a two-node cluster whose nodes are host:port and whose
// state lives in a new temporary directory; it returns the file and the state
// directory. No SSH authentication is configured, so any attempt to reach a
// node fails at once without touching the network.
func writeCluster(t *testing.T, host string, port int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	yaml := fmt.Sprintf(`cluster_name: t
ssh:
  user: ray
  port: %d
  known_hosts: %s
head:
  name: head
  address: %s
workers:
  - name: worker-1
    address: 127.0.0.2
state_dir: %s
`, port, filepath.Join(dir, "known_hosts"), host, state)
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, state
}

// listener counts the connections made to it, to prove nothing dials a node.
func listener(t *testing.T) (string, int, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port, &n
}

func TestFlagErrors(t *testing.T) {
	cfg, _ := writeCluster(t, "127.0.0.1", 22)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--config", cfg, "--deploy", "--bogus"}, "flag provided but not defined: -bogus"},
		{"positional", []string{"--config", cfg, "--deploy", "extra"}, `unexpected argument "extra"`},
		{"missing config", []string{"--deploy"}, "missing --config"},
		{"nothing to do", []string{"--config", cfg}, "nothing to do"},
		{"only and start-from", []string{"--config", cfg, "--checkpoint", "a", "--start-from", "b"}, "not both"},
		{"list with action", []string{"--config", cfg, "--list-checkpoints", "--deploy"}, "--list-checkpoints takes no other action"},
		{"down with checkpoint", []string{"--config", cfg, "--down", "--checkpoint", "ray-deployment"}, "--down takes no other action"},
		{"down dry-run", []string{"--config", cfg, "--down", "--dry-run"}, "--down takes no other action"},
		{"bad approval", []string{"--config", cfg, "--deploy", "--approval", "email"}, `--approval "email"`},
		{"auto-approve and approval", []string{"--config", cfg, "--deploy", "--auto-approve", "--approval", "file"}, "--auto-approve or --approval"},
		{"bad images", []string{"--config", cfg, "--deploy", "--images", "scp"}, `--images "scp"`},
		{"image file with pull", []string{"--config", cfg, "--deploy", "--images", "pull", "--image-file", "ray.tar"}, "--image-file needs"},
		{"image relay with pull", []string{"--config", cfg, "--deploy", "--images", "pull", "--image-relay"}, "--image-relay needs"},
		{"missing file", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml"), "--deploy"}, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, t.Context(), tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, _, errOut := cli(t, t.Context(), "-h")
	if code != exitOK || !strings.Contains(errOut, "-list-checkpoints") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestConfigErrorsNameFields(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	yaml := `cluster_name: t
head:
  adress: 192.0.2.1
workers:
  - name: w
    address: 192.0.2.2
  - name: w
    address: 192.0.2.3
state_dir: ` + filepath.Join(dir, "state") + "\n"
	if err := os.WriteFile(bad, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(t, t.Context(), "--config", bad, "--list-checkpoints")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut, `bad.yaml:3: head: unknown key "adress"`) {
		t.Errorf("stderr lacks the parse error with its line:\n%s", errOut)
	}

	// Parsed fine, invalid: every problem on its own line, by field path.
	yaml = strings.Replace(yaml, "adress: 192.0.2.1", `address: ""`, 1)
	if err := os.WriteFile(bad, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, t.Context(), "--config", bad, "--deploy")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"2 problem(s)", "\n  head.address: must not be empty\n", "\n  workers[1].name: duplicate of workers[0].name"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("state directory created for an invalid config: %v", err)
	}
}

func TestListCheckpointsConnectsNowhere(t *testing.T) {
	host, port, dials := listener(t)
	cfg, state := writeCluster(t, host, port)
	store, err := checkpoint.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	l := checkpoint.NewLedger()
	l.Record(raydeploy.CheckpointPrerequisites).Status = checkpoint.StatusSucceeded
	l.Record(raydeploy.CheckpointDocker).Status = checkpoint.StatusFailed
	if err := store.Save(l); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cli(t, t.Context(), "--config", cfg, "--list-checkpoints")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	// name, approval, destructive, status
	want := [][4]string{
		{"prerequisites-check", "no", "no", "succeeded"},
		{"docker-installation", "yes", "no", "failed"},
		{"cleanup-existing", "yes", "yes", "pending"},
		{"ray-deployment", "no", "no", "pending"},
		{"monitoring-deployment", "no", "no", "pending"},
		{"final-validation", "no", "no", "pending"},
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("got %d lines, want a header and %d checkpoints:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		f := strings.Fields(lines[i+1])
		if len(f) < 5 || f[0] != fmt.Sprint(i+1) || [4]string(f[1:5]) != w {
			t.Errorf("line %d = %q, want %v", i+1, lines[i+1], w)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("--list-checkpoints made %d connection(s)", n)
	}
	if _, err := os.Stat(filepath.Join(state, "audit.log")); !os.IsNotExist(err) {
		t.Errorf("--list-checkpoints opened the audit log: %v", err)
	}
}

func TestListShowsLastFailure(t *testing.T) {
	cfg, state := writeCluster(t, "127.0.0.1", 22)
	rec := `{"version": 1, "checkpoint": "ray-deployment", "failed_nodes": ["worker-1"], "error": "boom",
 "timestamp": "2026-01-02T03:04:05Z", "resume_command": "deploy-master --deploy --resume --config c.yaml"}`
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, checkpoint.FailureFile), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, t.Context(), "--config", cfg, "--list-checkpoints")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"last failure: ray-deployment at ", " on worker-1\n", "resume with: deploy-master --deploy --resume --config c.yaml\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownCheckpointListsValidOnes(t *testing.T) {
	cfg, state := writeCluster(t, "127.0.0.1", 22)
	for _, flag := range []string{"--checkpoint", "--start-from"} {
		code, _, errOut := cli(t, t.Context(), "--config", cfg, flag, "ray-deploy")
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d", flag, code, exitUsage)
		}
		if !strings.Contains(errOut, `unknown checkpoint "ray-deploy"`) {
			t.Errorf("%s: stderr:\n%s", flag, errOut)
		}
		for _, name := range []string{"prerequisites-check", "docker-installation", "cleanup-existing", "ray-deployment", "monitoring-deployment", "final-validation"} {
			if !strings.Contains(errOut, "\n  "+name+"\n") {
				t.Errorf("%s: stderr lacks the valid name %s:\n%s", flag, name, errOut)
			}
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a refused command created the state directory: %v", err)
	}
}

func TestStateDirOverride(t *testing.T) {
	cfg, state := writeCluster(t, "127.0.0.1", 22)
	other := filepath.Join(t.TempDir(), "other")
	st, err := checkpoint.OpenStore(other)
	if err != nil {
		t.Fatal(err)
	}
	l := checkpoint.NewLedger()
	l.Checkpoints["prerequisites-check"] = &checkpoint.Record{Status: checkpoint.StatusSucceeded, Nodes: map[string]*checkpoint.NodeRecord{}}
	if err := st.Save(l); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, t.Context(), "--config", cfg, "--state-dir", other, "--list-checkpoints")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "succeeded") {
		t.Errorf("--state-dir not used: the listing does not show its ledger:\n%s", out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the config's state_dir was used despite --state-dir: %v", err)
	}
}

func TestInventoryWarningsOnStderr(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.ini")
	ini := `[head_nodes]
head ansible_host=192.0.2.10 ansible_user=ray ansible_password=hunter2

[worker_nodes]
w1 ansible_host=192.0.2.11 ansible_user=ray
`
	if err := os.WriteFile(inv, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, t.Context(), "--config", inv, "--state-dir", filepath.Join(dir, "state"), "--list-checkpoints")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	if !strings.HasPrefix(errOut, "warning: ") || !strings.Contains(errOut, "inventory.ini:2: host head: ansible_password") {
		t.Errorf("no warning about the plaintext password:\n%s", errOut)
	}
	if strings.Contains(errOut+out, "hunter2") {
		t.Errorf("the password was printed")
	}
}

// A deployment that fails at its first checkpoint prints the checkpoint, the
// nodes with their errors and the resume command, and records them. The
// nodes have no SSH authentication, so nothing is dialed.
func TestDeployFailurePrintsResume(t *testing.T) {
	cfg, state := writeCluster(t, "127.0.0.1", 1)
	code, out, errOut := cli(t, t.Context(), "--config", cfg, "--deploy", "--approval", "file")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, errOut)
	}
	for _, want := range []string{"▶ prerequisites-check\n", "  ✗ head      ssh 127.0.0.1:1: ", "  ✗ worker-1  ssh 127.0.0.2:1: ", "✗ prerequisites-check ("} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	resume := selfCommand() + " --deploy --resume --config " + cfg + " --approval file"
	for _, want := range []string{"failed at checkpoint prerequisites-check", "\n  head: ssh 127.0.0.1:1: ", "\n  worker-1: ssh 127.0.0.2:1: ", "\n  " + resume + "\n"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	rec, err := checkpoint.ReadFailure(state)
	if err != nil || rec == nil {
		t.Fatalf("failure record: %v, %v", rec, err)
	}
	if rec.Checkpoint != raydeploy.CheckpointPrerequisites || rec.ResumeCommand != resume {
		t.Errorf("failure record: checkpoint %q, resume %q", rec.Checkpoint, rec.ResumeCommand)
	}
	if _, err := os.Stat(filepath.Join(state, "audit.log")); err != nil {
		t.Errorf("audit log: %v", err)
	}

	// --checkpoint: the resume command re-runs that checkpoint.
	code, _, errOut = cli(t, t.Context(), "--config", cfg, "--checkpoint", "prerequisites-check")
	if code != exitFailed || !strings.Contains(errOut, "\n  "+selfCommand()+" --checkpoint prerequisites-check --config "+cfg+"\n") {
		t.Errorf("exit %d; stderr:\n%s", code, errOut)
	}
}

func TestInterrupted(t *testing.T) {
	cfg, _ := writeCluster(t, "127.0.0.1", 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	code, _, errOut := cli(t, ctx, "--config", cfg, "--deploy", "--approval", "file")
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, errOut)
	}
}

func TestResumeCommand(t *testing.T) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	tests := []struct {
		o    options
		want string
	}{
		{options{deploy: true, config: "c.yaml", approval: approvalDefault, images: "auto"},
			"deploy-master --deploy --resume --config " + abs("c.yaml")},
		{options{deploy: true, autoApprove: true, config: "c.yaml", approval: approvalDefault, images: "auto"},
			"deploy-master --deploy --resume --config " + abs("c.yaml")},
		{options{only: "ray-deployment", config: "/x/my cluster.yaml", stateDir: "/s", approval: "file", approvalSet: true, images: "side-load", imageFile: "/i/ray.tar"},
			"deploy-master --checkpoint {checkpoint} --config '/x/my cluster.yaml' --state-dir /s --approval file --images side-load --image-file /i/ray.tar"},
		{options{down: true, config: "/c.yaml", approval: approvalDefault, images: "auto"},
			"deploy-master --down --config /c.yaml"},
		{options{deploy: true, config: "/c.yaml", approval: approvalDefault, images: "side-load", imageRelay: true},
			"deploy-master --deploy --resume --config /c.yaml --images side-load --image-relay"},
	}
	for _, tt := range tests {
		if got := resumeCommand(&tt.o); got != tt.want {
			t.Errorf("resumeCommand(%+v)\n got %s\nwant %s", tt.o, got, tt.want)
		}
	}
}

func TestNodeCause(t *testing.T) {
	inner := fmt.Errorf("ssh 10.0.0.1:22: refused")
	err := &checkpoint.NodeError{Checkpoint: "x", Node: "w1", Err: &checkpoint.NodeError{Node: "w1", Op: "x",
		Err: &checkpoint.NodeError{Node: "w1", Op: "connect", Err: inner}}}
	if got := nodeCause("w1", err); got != "connect: ssh 10.0.0.1:22: refused" {
		t.Errorf("nodeCause = %q", got)
	}
	if got := nodeCause("w1", inner); got != inner.Error() {
		t.Errorf("nodeCause of a plain error = %q", got)
	}
}

// TestPrintedApproveCommand runs the approval command deploy-master prints
// while it waits, verbatim in a shell, and checks that the file channel then
// approves exactly that plan, risks acknowledged.
func TestPrintedApproveCommand(t *testing.T) {
	state := t.TempDir()
	f := approval.NewFile(state)
	f.PollInterval = 10 * time.Millisecond
	req := approval.Request{ID: "r1", Checkpoint: "cleanup-existing", Destructive: true,
		Risks: []string{"containers go"}, PlanDigest: "sha256:0123abcd", RequestedAt: time.Now()}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := approveCommand(f.Path(req.Checkpoint), req)
	sh := exec.Command("/bin/sh", "-c", cmd)
	sh.Env = []string{"PATH=/usr/bin:/bin", "USER=alice"}
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	d, err := f.Approve(ctx, req)
	if err != nil {
		t.Fatalf("file channel after the printed command: %v", err)
	}
	if !d.Approved || d.By != "alice" || !d.RisksAcknowledged || d.PlanDigest != req.PlanDigest {
		t.Fatalf("decision %+v, want approved by alice for %s with risks acknowledged", d, req.PlanDigest)
	}
}
