package raydeploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
)

// TestStalePlanIsRefused: cleanup-existing is approved for a plan that
// removes ray_head by its container ID; while the approver decides, ray_head
// is replaced by another container. Run refuses the node, naming node and
// container, removes nothing (not the new ray_head, not ray_worker beside
// it), and the ledger and the audit log record the refusal. The next run
// plans anew (the new ID) and asks again.
func TestStalePlanIsRefused(t *testing.T) {
	env := testenv.NewCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tiny, err := testenv.TinyImage(ctx, env.Pool())
	if err != nil {
		t.Fatal(err)
	}
	n := env.Nodes[0]
	if err := n.LoadImage(ctx, tiny, tiny); err != nil {
		t.Fatal(err)
	}
	start := func(name string) string {
		id, err := n.Run(ctx, "root", "docker run -d --name "+name+" "+tiny+" /tinyd")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(id)
	}
	planned := start("ray_head")
	worker := start("ray_worker")

	dir := t.TempDir()
	key, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{
		Name:     "stale",
		SSH:      raydeploy.SSHConfig{User: testenv.DeployUser, KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key}},
		Head:     raydeploy.Node{Name: n.Name, Address: n.Address, Auth: raydeploy.Auth{SudoPassword: raydeploy.NewSecret(n.DeployPassword)}},
		StateDir: filepath.Join(dir, "state"),
	}

	// The approver replaces ray_head while "deciding", then approves: it
	// sets no digest, no ID, no time (New's wiring completes the decision).
	var replacement string
	var seen []approval.PlanItem
	d, err := raydeploy.New(c, raydeploy.Options{NoMonitoring: true, Approver: approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
		seen = r.Plan
		if replacement == "" {
			if _, err := n.Run(ctx, "root", "docker rm -f ray_head"); err != nil {
				return approval.Decision{}, err
			}
			replacement = start("ray_head")
		}
		return approval.Decision{Approved: true, RisksAcknowledged: true, By: "tester", Reason: "test"}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	_, err = d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointCleanup})
	var se *checkpoint.StaleError
	if !errors.As(err, &se) || !errors.Is(err, checkpoint.ErrStale) {
		t.Fatalf("Deploy = %v, want a *checkpoint.StaleError", err)
	}
	if se.Node != n.Name || se.Item.Target == nil || se.Item.Target.ID != planned {
		t.Errorf("stale error names node %s, target %+v; want node %s, container %s", se.Node, se.Item.Target, n.Name, planned)
	}
	for _, want := range []string{"node " + n.Name, "ray_head", planned[:12], replacement[:12]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	found := false
	for _, it := range seen {
		found = found || (it.Target != nil && it.Target.Kind == approval.TargetContainer && it.Target.ID == planned)
	}
	if !found {
		t.Errorf("the approver was not shown ray_head's container ID in the plan: %+v", seen)
	}

	// Nothing removed: the new ray_head and ray_worker are still there.
	for _, id := range []string{replacement, worker} {
		if out, err := n.Run(ctx, "root", "docker inspect -f '{{.Id}}' "+id); err != nil || strings.TrimSpace(out) != id {
			t.Errorf("container %s removed by a refused run: %q, %v", id[:12], out, err)
		}
	}

	// The ledger records the refusal for the node.
	st, err := checkpoint.OpenStore(c.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	rec := l.Record(raydeploy.CheckpointCleanup)
	if nr := rec.Nodes[n.Name]; rec.Status != checkpoint.StatusFailed || nr == nil || !strings.Contains(nr.Error, "plan is stale") || !strings.Contains(nr.Error, "ray_head") {
		t.Errorf("ledger: %+v, node %+v; want failed with the stale plan named", rec, nr)
	}

	// The audit log: request, decision (completed with the request's digest)
	// and the refused outcome, chain intact.
	path := filepath.Join(c.StateDir, raydeploy.AuditFile)
	if _, err := approval.Verify(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var digest string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r approval.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, r.Kind)
		switch r.Kind {
		case approval.AuditRequest:
			digest = r.Request.PlanDigest
		case approval.AuditDecision:
			if r.Decision == nil || r.Decision.PlanDigest != digest || r.Decision.By != "tester" {
				t.Errorf("decision %+v, want by tester for digest %s", r.Decision, digest)
			}
		case approval.AuditOutcome:
			if r.Outcome != string(checkpoint.StatusFailed) || !strings.Contains(r.Error, "plan is stale") || !strings.Contains(r.Error, planned[:12]) {
				t.Errorf("outcome %q, error %q; want failed, naming the stale container", r.Outcome, r.Error)
			}
		}
	}
	if strings.Join(kinds, ",") != "request,decision,outcome" {
		t.Errorf("audit kinds %v, want request, decision, outcome", kinds)
	}

	// The next run plans again, with the new container, asks, and removes both.
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointCleanup}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	found = false
	for _, it := range seen {
		found = found || (it.Target != nil && it.Target.ID == replacement)
	}
	if !found {
		t.Errorf("the second plan does not target the new ray_head %s: %+v", replacement[:12], seen)
	}
	if out, err := n.Run(ctx, "root", "docker ps -aq --filter name=ray_"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("after the approved re-run, ray containers left: %q, %v", out, err)
	}
}
