package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestFaults runs a few points of the fault suite on one shared 2-node
// cluster: two SIGKILLs of deploy-master at seeded progress lines (the seed
// is logged; RAYDEPLOY_FAULT_SEED replays one), two deployers at once, a
// node whose dockerd is killed (that node alone fails: the regression test
// of the version probe that failed every node), a changed host key and a
// read-only state directory. The documented command (doc.go) runs 50 kill
// points and every fault.
func TestFaults(t *testing.T) {
	env := testenv.NewCluster(t, 2)
	ctx := t.Context() // no bound of its own: a hang shows as the test's timeout
	root, err := moduleDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBench(ctx, env, BenchOptions{Root: root, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RAYDEPLOY_FAULT_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("RAYDEPLOY_FAULT_SEED: %v", err)
		}
	}
	points := killPoints(seed, 2, b.lines)
	t.Logf("kill points %v of %d progress lines (RAYDEPLOY_FAULT_SEED=%d replays them)", points, b.lines, seed)
	for i, k := range points {
		o, err := b.killAt(ctx, k, i == 1)
		if err != nil {
			t.Fatalf("kill after line %d: %v", k, err)
		}
		t.Logf("killed after line %d %q during %s; re-run %s", k, o.LastLine, o.Checkpoint, o.Recover.Round(100*time.Millisecond))
		if o.Locked != "" {
			t.Errorf("kill after line %d: the re-run did not take the dead holder's lock: %s", k, o.Locked)
		}
		if !o.Converged {
			t.Errorf("kill after line %d (%s): the resume did not converge: exit %d: %s; %s", k, o.Checkpoint, o.Rerun.Code, o.Rerun.errorText(), o.Verdict)
		}
	}

	t.Run("two deployers", func(t *testing.T) {
		o, err := b.twoDeployers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Named {
			t.Errorf("the second deployer: exit %d, %q; want refused as locked by the first's pid", o.Run.Code, o.Run.errorText())
		}
		if !o.Converged {
			t.Errorf("the first deployer: exit %d: %s; %s", o.Rerun.Code, o.Rerun.errorText(), o.Verdict)
		}
	})

	victim := env.Nodes[len(env.Nodes)-1]
	chosen, err := selectFaults("dockerd killed,host key changed,state dir read-only")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range chosen {
		t.Run(f.Name, func(t *testing.T) {
			o, err := b.inject(ctx, f, victim)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("the run ended %s after the fault: exit %d: %s", o.Ended.Round(100*time.Millisecond), o.Run.Code, o.Run.errorText())
			if !o.Named {
				t.Errorf("the faulted run's error does not name %s and what happened (%v): exit %d: %s", victim.Name, f.Names, o.Run.Code, o.Run.errorText())
			}
			if !f.StateFault && o.Run.Code != 0 && !slices.Equal(o.Failed, []string{victim.Name}) {
				t.Errorf("the ledger records %v as failed in %s, want %s alone: one node's fault must not fail the others", o.Failed, o.Checkpoint, victim.Name)
			}
			if o.Second != nil {
				text := o.Second.errorText()
				if o.Second.Code == 0 || !strings.Contains(text, "host key for "+victim.Address) || strings.Count(text, "SHA256:") < 2 || !strings.Contains(text, victim.Name) {
					t.Errorf("a run against the changed host key: exit %d: %s; want a mismatch naming %s, its address and both fingerprints", o.Second.Code, text, victim.Name)
				}
			}
			if !o.Converged {
				t.Errorf("after the repair, the resume: exit %d: %s; %s", o.Rerun.Code, o.Rerun.errorText(), o.Verdict)
			}
		})
	}
}
