package raydeploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestOutsideModule proves the public API is enough: a program in a module
// of its own (testdata/outside, go.mod with a replace to this checkout, no
// internal import) is built with go build and deploys prerequisites-check and
// cleanup-existing into a testenv cluster (head + worker) with its own
// approver and event sink. A leftover ray_worker container on the worker
// makes cleanup-existing ask the program's approver; the test checks from
// outside that the approver saw a plan and its digest, that the sink saw the
// checkpoint and node events, and that the leftover is gone afterwards.
func TestOutsideModule(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "outside", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}

	// Build first: it fails fast, without a cluster.
	mod := t.TempDir()
	goMod := fmt.Sprintf("module example.com/outside\n\ngo 1.26\n\nrequire github.com/raydeploy/sdk v0.0.0\n\nreplace github.com/raydeploy/sdk => %s\n", root)
	for name, data := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": goSum, "main.go": src} {
		if err := os.WriteFile(filepath.Join(mod, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "outside")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	build.Dir = mod
	// -mod=mod: the go.mod names only the SDK; go build adds its
	// requirements from the replaced module, checked against the checkout's
	// go.sum. The module proxy stays as configured: a module depending on
	// the SDK loads go.mod files of pruned-away versions that the SDK's own
	// build never reads, so a module cache filled by building the SDK does
	// not hold them (with GOPROXY=off, CI from an empty cache failed here).
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in a module of its own: %v\n%s", err, out)
	}

	env := testenv.NewCluster(t, 2)
	ctx := t.Context()
	worker := env.Nodes[1]
	tiny, err := testenv.TinyImage(ctx, env.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.LoadImage(ctx, tiny, tiny); err != nil {
		t.Fatal(err)
	}
	leftover, err := worker.Run(ctx, "root", "docker run -d --name ray_worker "+tiny+" /tinyd")
	if err != nil {
		t.Fatal(err)
	}
	leftover = strings.TrimSpace(leftover)

	dir := t.TempDir()
	key, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	head := env.Nodes[0]
	cfg := fmt.Sprintf(`cluster_name: outside
state_dir: %q
ssh:
  user: %q
  key_file: %q
  known_hosts: %q
head:
  name: %q
  address: %q
  sudo_password: %q
workers:
  - name: %q
    address: %q
    sudo_password: %q
`, filepath.Join(dir, "state"), testenv.DeployUser, key, known,
		head.Name, head.Address, head.DeployPassword, worker.Name, worker.Address, worker.DeployPassword)
	cfgPath := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	run := exec.CommandContext(ctx, bin, "-config", cfgPath, "-only", "prerequisites-check,cleanup-existing", "-no-monitoring")
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("program: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}

	type line struct {
		Approve, Digest, Event, Checkpoint, Node, Status string
		Items                                            int
	}
	var approvals, events []line
	var report []string
	out := stdout.String() + stderr.String()
	t.Logf("program output:\n%s", out)
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		text := sc.Text()
		if !strings.HasPrefix(text, "{") {
			report = append(report, text)
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("program printed %q: %v", text, err)
		}
		if l.Approve != "" {
			approvals = append(approvals, l)
		} else {
			events = append(events, l)
		}
	}

	asked := false
	for _, a := range approvals {
		if a.Approve == "cleanup-existing" {
			asked = true
			if a.Items == 0 || a.Digest == "" {
				t.Errorf("approver of cleanup-existing got %d items, digest %q; want a plan and its digest", a.Items, a.Digest)
			}
		}
	}
	if !asked {
		t.Errorf("the program's approver was not asked for cleanup-existing: %+v\n%s", approvals, out)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Event+" "+e.Checkpoint+" "+e.Node] = true
	}
	for _, want := range []string{
		"started prerequisites-check ", "finished prerequisites-check ",
		"started cleanup-existing ", "node cleanup-existing " + worker.Name, "finished cleanup-existing ",
	} {
		if !seen[want] {
			t.Errorf("the program's event sink did not see %q; saw %v", want, seen)
		}
	}
	for _, want := range []string{"prerequisites-check succeeded", "cleanup-existing succeeded"} {
		if !strings.Contains(strings.Join(report, "\n"), want) {
			t.Errorf("report lines %q lack %q", report, want)
		}
	}

	// From the node: the leftover is gone.
	if ids, err := worker.Run(ctx, "root", "docker ps -aq --no-trunc --filter name=^ray_worker$"); err != nil || strings.TrimSpace(ids) != "" {
		t.Errorf("after cleanup-existing the worker still has ray_worker: %q, %v (leftover %s)", ids, err, leftover)
	}
}

// TestOutsideModuleREADME: README's "Using it from Go" is the program's
// core, verbatim (the part between its README markers).
func TestOutsideModuleREADME(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "outside", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	begin, end := strings.Index(s, "\t// README:begin\n"), strings.Index(s, "\t// README:end\n")
	if begin < 0 || end < begin {
		t.Fatal("testdata/outside/main.go lacks its README markers")
	}
	var core strings.Builder
	for _, l := range strings.SplitAfter(s[begin+len("\t// README:begin\n"):end], "\n") {
		core.WriteString(strings.TrimPrefix(l, "\t"))
	}
	if !strings.Contains(string(readme), core.String()) {
		t.Errorf("README.md does not quote testdata/outside/main.go's core verbatim; want:\n%s", core.String())
	}
}
