package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeCluster writes a two-node cluster with no SSH authentication (nothing
// can be dialed) and its state in a new temporary directory.
func writeCluster(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	yaml := fmt.Sprintf(`cluster_name: t
ssh:
  user: ray
  port: 1
  known_hosts: %s
head:
  name: head
  address: 127.0.0.1
workers:
  - name: worker-1
    address: 127.0.0.2
state_dir: %s
`, filepath.Join(dir, "known_hosts"), state)
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, state
}

func TestFlagErrors(t *testing.T) {
	cfg, _ := writeCluster(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--config", cfg, "--bogus"}, "flag provided but not defined: -bogus"},
		{"positional", []string{"--config", cfg, "extra"}, `unexpected argument "extra"`},
		{"missing config", []string{"--format", "text"}, "missing --config"},
		{"bad format", []string{"--config", cfg, "--format", "yaml"}, `--format "yaml"`},
		{"two modes", []string{"--config", cfg, "--health-only", "--checkpoint", "ray-deployment"}, "at most one of"},
		{"unknown checkpoint", []string{"--config", cfg, "--checkpoint", "ray"}, "valid checkpoints:\n  prerequisites-check\n  docker-installation\n  cleanup-existing\n  ray-deployment\n  monitoring-deployment\n  final-validation\n"},
		{"unknown approval-check", []string{"--config", cfg, "--approval-check", "ray"}, `unknown checkpoint "ray"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, tt.args...)
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

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("cluster_name: t\nhead:\n  address: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(t, "--config", bad)
	if code != exitUsage || !strings.Contains(errOut, "\n  head.address: must not be empty\n") {
		t.Errorf("exit %d; stderr:\n%s", code, errOut)
	}
}

func TestCheckpointRecordMissingState(t *testing.T) {
	cfg, state := writeCluster(t)
	code, out, _ := cli(t, "--config", cfg, "--checkpoint", "ray-deployment")
	if code != exitFailed || out != "ray-deployment: pending\n" {
		t.Errorf("exit %d; stdout:\n%s", code, out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("reading a record created the state directory: %v", err)
	}
}

func TestCheckpointRecord(t *testing.T) {
	cfg, state := writeCluster(t)
	store, err := checkpoint.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := checkpoint.NewLedger()
	ref := &checkpoint.ApprovalRef{DecisionID: "d1", By: "alice", Channel: "file", PlanDigest: "sha256:ab"}
	r := l.Record(raydeploy.CheckpointDocker)
	r.Status, r.StartedAt, r.EndedAt, r.Approval = checkpoint.StatusSucceeded, t0, t0.Add(90*time.Second), ref
	*l.Node(raydeploy.CheckpointDocker, "head") = checkpoint.NodeRecord{Status: checkpoint.StatusSucceeded, Summary: "Docker 28.5.2 installed", Approval: ref}
	*l.Node(raydeploy.CheckpointDocker, "worker-1") = checkpoint.NodeRecord{Status: checkpoint.StatusSkippedSatisfied, Summary: "already satisfied"}
	*l.Node(raydeploy.CheckpointDocker, "old-node") = checkpoint.NodeRecord{Status: checkpoint.StatusFailed, Error: "gone"}
	f := l.Record(raydeploy.CheckpointRay)
	f.Status, f.Error = checkpoint.StatusFailed, "1 node(s) failed"
	if err := store.Save(l); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cli(t, "--config", cfg, "--checkpoint", raydeploy.CheckpointDocker)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "docker-installation: succeeded" {
		t.Errorf("first line %q", lines[0])
	}
	for _, want := range []string{"(1m30s)", "approval  d1 by alice via file (plan sha256:ab)",
		"  head      succeeded          Docker 28.5.2 installed\n",
		"  worker-1  skipped-satisfied  already satisfied\n  old-node  failed             gone\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = cli(t, "--config", cfg, "--checkpoint", raydeploy.CheckpointDocker, "--format", "json")
	var got struct {
		Checkpoint string
		Status     checkpoint.Status
		Nodes      map[string]checkpoint.NodeRecord
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if got.Checkpoint != raydeploy.CheckpointDocker || got.Status != checkpoint.StatusSucceeded || got.Nodes["head"].Summary != "Docker 28.5.2 installed" {
		t.Errorf("json: %+v", got)
	}

	code, out, _ = cli(t, "--config", cfg, "--checkpoint", raydeploy.CheckpointRay)
	if code != exitFailed || !strings.Contains(out, "error     1 node(s) failed") {
		t.Errorf("failed record: exit %d:\n%s", code, out)
	}
}

func TestApprovalCheck(t *testing.T) {
	cfg, state := writeCluster(t)
	code, out, errOut := cli(t, "--config", cfg, "--approval-check", "prerequisites-check")
	if code != exitOK || !strings.Contains(out, "needs approval  no\n") || !strings.Contains(out, "destructive     no\n") {
		t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out, "approval file") {
		t.Errorf("an approval file shown for a checkpoint without approval:\n%s", out)
	}

	code, out, _ = cli(t, "--config", cfg, "--approval-check", "cleanup-existing")
	file := filepath.Join(state, "approvals", "cleanup-existing.json")
	for _, want := range []string{"needs approval  yes\n", "destructive     yes\n", "risk ", "approval file   " + file + " (absent)\n", "no run is waiting"} {
		if !strings.Contains(out, want) || code != exitOK {
			t.Errorf("exit %d; stdout lacks %q:\n%s", code, want, out)
		}
	}

	archived := filepath.Join(state, "approvals", "archive", "cleanup-existing-d1.json")
	for _, p := range []string{file, filepath.Join(state, "approvals", "cleanup-existing.request.json"), archived,
		filepath.Join(state, "approvals", "archive", "docker-installation-d2.json")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = cli(t, "--config", cfg, "--approval-check", "cleanup-existing", "--format", "json")
	var got struct {
		NeedsApproval bool     `json:"needs_approval"`
		Destructive   bool     `json:"destructive"`
		Risks         []string `json:"risks"`
		Pending       bool     `json:"approval_pending"`
		Requested     bool     `json:"request_waiting"`
		Archived      []string `json:"archived"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if !got.NeedsApproval || !got.Destructive || len(got.Risks) == 0 || !got.Pending || !got.Requested ||
		len(got.Archived) != 1 || got.Archived[0] != archived {
		t.Errorf("json: %+v", got)
	}
}

// Validate cannot reach the nodes (no SSH authentication): the report fails
// and so does the command, in both formats.
func TestValidateFailsWhenNodesUnreachable(t *testing.T) {
	cfg, _ := writeCluster(t)
	code, out, errOut := cli(t, "--config", cfg, "--health-only")
	if code != exitFailed || !strings.HasPrefix(out, "validation of t: FAILED") {
		t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = cli(t, "--config", cfg, "--health-only", "--format", "json")
	var rep raydeploy.ValidationReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailed || rep.OK || len(rep.Checks) == 0 {
		t.Errorf("exit %d, %v: %+v", code, err, rep)
	}
}
