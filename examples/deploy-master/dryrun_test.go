package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestDryRunWithBrokenNodeShowsEveryCheckpoint plans a two-node cluster
// whose worker is down: text and JSON both show all six checkpoints, the
// worker's planning error in place, and the exit status is non-zero.
func TestDryRunWithBrokenNodeShowsEveryCheckpoint(t *testing.T) {
	env := testenv.NewCluster(t, 2)
	dir := t.TempDir()
	key, known := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "sudo")
	if err := os.WriteFile(pw, []byte(env.Nodes[0].DeployPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.yaml")
	yaml := fmt.Sprintf("cluster_name: t\nstate_dir: %s\nssh:\n  user: %s\n  key_file: %s\n  known_hosts: %s\n  sudo_password_file: %s\nhead:\n  name: head\n  address: %s\nworkers:\n  - name: broken\n    address: %s\n",
		filepath.Join(dir, "state"), testenv.DeployUser, key, known, pw, env.Nodes[0].Address, env.Nodes[1].Address)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.Nodes[1].Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	all := []string{"prerequisites-check", "docker-installation", "cleanup-existing", "ray-deployment", "monitoring-deployment", "final-validation"}

	code, out, errOut := cli(t, t.Context(), "--config", cfg, "--dry-run")
	if code == exitOK {
		t.Errorf("dry run with a node down exited 0")
	}
	for _, cp := range all {
		if !strings.Contains(out, cp) {
			t.Errorf("text dry run lacks %s:\n%s\nstderr:\n%s", cp, out, errOut)
		}
	}
	if !strings.Contains(out, "broken") || !strings.Contains(out, "ERROR") {
		t.Errorf("text dry run does not show the broken node's error in place:\n%s", out)
	}

	code, out, errOut = cli(t, t.Context(), "--config", cfg, "--dry-run", "--output", "json")
	if code == exitOK {
		t.Errorf("json dry run with a node down exited 0")
	}
	var doc planJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--output json: %v\n%s\nstderr:\n%s", err, out, errOut)
	}
	if doc.Schema != "raydeploy.plan/v1" || doc.OK || len(doc.Checkpoints) != len(all) {
		t.Fatalf("plan document: schema %q ok %v, %d checkpoints; want raydeploy.plan/v1, false, %d:\n%s", doc.Schema, doc.OK, len(doc.Checkpoints), len(all), out)
	}
	for i, c := range doc.Checkpoints {
		if c.Name != all[i] {
			t.Errorf("checkpoint %d is %s, want %s", i, c.Name, all[i])
		}
	}
	failedOnBroken := false
	for _, c := range doc.Checkpoints {
		for _, e := range c.Errors {
			failedOnBroken = failedOnBroken || e.Node == "broken" && c.Status == "failed"
			if e.Node == "head" {
				t.Errorf("%s: the healthy head failed to plan: %s", c.Name, e.Error)
			}
		}
	}
	if !failedOnBroken {
		t.Errorf("no checkpoint names the broken node's planning error:\n%s", out)
	}
}
