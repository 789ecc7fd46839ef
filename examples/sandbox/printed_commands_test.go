package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3/docker"

	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/tts"
)

// TestPrintedCommands runs, verbatim in a fresh shell (bash -c from the
// repository root, an environment of PATH, the Go caches and a new empty
// HOME, nothing else of this machine's), every command a new user is given:
// the README's (its ```sh blocks, parsed from the file), the sandbox's (from
// the output of the README's main job, run as written) and deploy-master's
// (the approval and resume commands it prints), and checks that each does
// what its text says. A README command that the table below does not
// classify fails the test, so a command added to the README is run here or
// excluded with its reason.
func TestPrintedCommands(t *testing.T) {
	pool := testenv.RequireDocker(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Leave two minutes of the test's time to stop the sandbox, which
	// removes its cluster.
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-2*time.Minute))
		defer cancel()
	}
	sh := newShell(t, root)
	cmds := readmeCommands(t, filepath.Join(root, "README.md"))
	var plan []readmeStep
	for _, c := range cmds {
		r, ok := classify(c)
		if !ok {
			t.Errorf("README command not classified (add it to readmeRules in %s: run it, or exclude it with the reason):\n  %s", "examples/sandbox/printed_commands_test.go", c)
			continue
		}
		plan = append(plan, readmeStep{cmd: c, rule: r})
		if r.excluded != "" {
			t.Logf("README command excluded from the suite (%s):\n  %s", r.excluded, c)
		}
	}
	mainJob := findKind(t, plan, kindMainJob)
	if t.Failed() || len(mainJob) != 1 {
		t.Fatalf("want exactly one README main job, found %d", len(mainJob))
	}

	// The main job, as the README writes it. It prints its commands and
	// holds the cluster until Ctrl-C. Should it have to be killed, the
	// sweep removes what it left (its pid is gone by then).
	t.Cleanup(func() { testenv.Sweep(pool) })
	sb := sh.start(t, mainJob[0].cmd)
	if err := sb.waitFor(ctx, "\nCtrl-C removes it.\n"); err != nil {
		t.Fatalf("main job %q: %v\nstdout:\n%s\nstderr (last lines):\n%s", mainJob[0].cmd, err, sb.stdout.String(), lastLines(sb.stderr.String(), 30))
	}
	out := sb.stdout.String()
	t.Logf("main job printed:\n%s", out)
	sandbox := parseSandbox(t, out)
	// The sandbox's own temp directory: it removes it on exit (checked
	// below); this is for a sandbox that had to be killed.
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(sandbox.config)) })

	runSandboxCommands(t, sh, sandbox)
	s := &suiteState{sh: sh, sandbox: sandbox, root: root, tmp: t.TempDir(), whileServe: findKind(t, plan, kindWhileServe)}
	for _, phase := range []kind{kindRun, kindServe, kindTTS, kindBench} {
		for _, st := range findKind(t, plan, phase) {
			t.Run(shortName(st.cmd), func(t *testing.T) { st.rule.check(t, s, st.cmd) })
		}
	}
	deployMasterPrintedCommands(t, sh, sandbox)

	// Ctrl-C removes it all.
	sb.interrupt()
	if err := sb.wait(ctx); err != nil {
		// Its exit status after Ctrl-C is not what the README promises;
		// what it removes is, below.
		t.Logf("main job after Ctrl-C: %v\nstderr:\n%s", err, lastLines(sb.stderr.String(), 20))
	}
	ctrs, err := pool.Client.ListContainers(docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {testenv.LabelTestenv + "=" + sandbox.cluster}}})
	if err != nil || len(ctrs) != 0 {
		t.Errorf("after Ctrl-C the sandbox left %d container(s) of %s (%v)", len(ctrs), sandbox.cluster, err)
	}
	dir := filepath.Dir(sandbox.config)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Ctrl-C the sandbox's temporary directory %s is still there (%v)", dir, err)
	}
	if !strings.Contains(sb.stdout.String(), "removed "+dir+"\n") {
		t.Errorf("after Ctrl-C the sandbox does not say it removed %s:\n%s", dir, lastLines(sb.stdout.String(), 5))
	}
}

// TestReadmeCommandsClassified needs no Docker: every command of the
// README's sh blocks is run by TestPrintedCommands or excluded with its
// reason, and the patterns for the long commands other parts document
// (fuzzers, the fault suite, soaks) exclude them.
func TestReadmeCommandsClassified(t *testing.T) {
	for _, c := range readmeCommands(t, "../../README.md") {
		if _, ok := classify(c); !ok {
			t.Errorf("README command not classified (add it to readmeRules: run it, or exclude it with the reason):\n  %s", c)
		}
	}
	for _, c := range []string{"./scripts/fuzz", "./scripts/fuzz -execs 1000000 FuzzDecodeFileApproval",
		"go test -run TestFaultSuite -count=1 ./internal/testenv/faults", "RAYDEPLOY_FAULTS=50 go test ./raydeploy -run Fault",
		"go test -fuzz FuzzLedger ./checkpoint", "go run ./internal/testenv/soak -hours 8"} {
		if r, ok := classify(c); !ok || r.kind != kindExcluded || r.excluded != longCommand {
			t.Errorf("%q: classified %+v, %v; want excluded as a %s", c, r, ok, longCommand)
		}
	}
	for _, c := range []string{"go run ./examples/deploy-master --config cluster.yaml --destroy-everything", "rm -rf /"} {
		if _, ok := classify(c); ok {
			t.Errorf("%q is classified: an unknown command must fail the test", c)
		}
	}
}

// TestCIRunsReadmeTestCommand needs no Docker: .ci/run ends with exactly
// the README's command for all tests, so CI runs what a reader runs.
func TestCIRunsReadmeTestCommand(t *testing.T) {
	data, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, line := range strings.Split(string(data), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			last = l
		}
	}
	var suite []string
	for _, c := range readmeCommands(t, "../../README.md") {
		if r, ok := classify(c); ok && r.kind == kindExcluded && strings.HasPrefix(r.excluded, "the whole suite") {
			suite = append(suite, c)
		}
	}
	if len(suite) != 1 || suite[0] != last {
		t.Errorf(".ci/run runs %q; the README's test command(s): %q", last, suite)
	}
}

// kind is what the test does with a README command.
type kind int

const (
	kindExcluded   kind = iota // not run, for the reason given
	kindMainJob                // the README's main job: runs until Ctrl-C
	kindRun                    // runs to completion against the sandbox's cluster
	kindServe                  // serves until stopped; kindWhileServe commands run meanwhile
	kindWhileServe             // runs while the kindServe command serves
	kindTTS                    // runs against the TTS app
	kindBench                  // a measurement, in its cheapest mode
)

// readmeRule classifies README commands that match pattern.
type readmeRule struct {
	pattern  *regexp.Regexp
	kind     kind
	excluded string // the reason, for kindExcluded
	check    func(t *testing.T, s *suiteState, cmd string)
}

type readmeStep struct {
	cmd  string
	rule readmeRule
}

// suiteState is what the README's commands run against.
type suiteState struct {
	sh      *shell
	sandbox sandboxOutput
	root    string
	tmp     string
	token   string // of "api-server tokens create"
	// whileServe are the README commands to run while the API serves.
	whileServe []readmeStep
}

// placeholders are the README's stand-ins for the reader's own files and
// hosts, replaced by the sandbox's (as a reader would type them).
func (s *suiteState) fill(cmd string, more ...string) string {
	r := strings.NewReplacer(append([]string{
		" cluster.yaml", " " + shellQuote(s.sandbox.config),
		" tokens.json", " " + shellQuote(filepath.Join(s.tmp, "tokens.json")),
		" hello.wav", " " + shellQuote(filepath.Join(s.tmp, "hello.wav")),
	}, more...)...)
	return r.Replace(cmd)
}

// longCommand is a documented long command: fuzzing, fault injection, soaks.
const longCommand = "documented long command, excluded from the suite"

var readmeRules = []readmeRule{
	{pattern: regexp.MustCompile(`^\./scripts/setup && go run \./examples/sandbox$`), kind: kindMainJob},
	{pattern: regexp.MustCompile(`^\./scripts/setup --tests && RAYDEPLOY_REQUIRE_DOCKER=1 go test .*\./\.\.\.$`), kind: kindExcluded,
		excluded: "the whole suite: this test is one of its tests"},
	{pattern: regexp.MustCompile(`(?i)scripts/fuzz|\bfuzz|\bfault|\bsoak`), kind: kindExcluded, excluded: longCommand},
	{pattern: regexp.MustCompile(`^go run \./examples/deploy-master --config cluster\.yaml --dry-run$`), kind: kindRun,
		check: func(t *testing.T, s *suiteState, cmd string) {
			// "what would change, per node": every checkpoint, nothing to do.
			out := s.mustRun(t, s.fill(cmd))
			for _, cp := range checkpoints {
				if !strings.Contains(out, cp) {
					t.Errorf("the dry run does not show %s:\n%s", cp, out)
				}
			}
		}},
	{pattern: regexp.MustCompile(`^go run \./examples/deploy-master --config cluster\.yaml --deploy$`), kind: kindRun,
		check: func(t *testing.T, s *suiteState, cmd string) {
			// The sandbox deployed it all: nothing risky is left to ask about.
			checkNoop(t, s.mustRun(t, s.fill(cmd)))
		}},
	{pattern: regexp.MustCompile(`^go run \./examples/deploy-master --config cluster\.yaml --list-checkpoints$`), kind: kindRun,
		check: func(t *testing.T, s *suiteState, cmd string) {
			out := s.mustRun(t, s.fill(cmd))
			for _, cp := range checkpoints {
				if !regexp.MustCompile(`(?m)^\d\s+` + cp + `\s.*\s(succeeded|skipped-satisfied)\s`).MatchString(out) {
					t.Errorf("the listing does not show %s done:\n%s", cp, out)
				}
			}
		}},
	{pattern: regexp.MustCompile(`^go run \./examples/validate --config cluster\.yaml --format json$`), kind: kindRun,
		check: func(t *testing.T, s *suiteState, cmd string) {
			out := s.mustRun(t, s.fill(cmd))
			var doc map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Errorf("not one JSON document: %v\n%s", err, out)
			}
		}},
	{pattern: regexp.MustCompile(`^go run \./examples/api-server tokens create --tokens tokens\.json --name alice --role approver$`), kind: kindRun,
		check: func(t *testing.T, s *suiteState, cmd string) {
			// "prints the token once": one line, which the server accepts below.
			out := s.mustRun(t, s.fill(cmd))
			s.token = strings.TrimSpace(out)
			if s.token == "" || strings.Contains(s.token, "\n") {
				t.Errorf("stdout is not one token line: %q", out)
			}
		}},
	{pattern: regexp.MustCompile(`^go run \./examples/api-server --config cluster\.yaml --tokens tokens\.json$`), kind: kindServe,
		check: func(t *testing.T, s *suiteState, cmd string) { s.serveAPI(t, cmd) }},
	{pattern: regexp.MustCompile(`^curl -H "Authorization: Bearer \$TOKEN" http://127\.0\.0\.1:8000/api/v1/cluster/status$`), kind: kindWhileServe},
	{pattern: regexp.MustCompile(`^go run \./examples/tts-client --url http://HEAD:8000 `), kind: kindTTS,
		check: func(t *testing.T, s *suiteState, cmd string) { s.runTTS(t, cmd) }},
	{pattern: regexp.MustCompile(`^go test -run '\^\$' -bench BenchmarkTTS -benchtime 1x \./tts/$`), kind: kindExcluded,
		excluded: "a benchmark already in its cheapest mode (-benchtime 1x) that deploys a cluster and builds the TTS image: minutes"},
	{pattern: regexp.MustCompile(`^go run \./internal/testenv/scalebench -parts hollow -sizes 10,100$`), kind: kindBench,
		check: func(t *testing.T, s *suiteState, cmd string) {
			// "the quick curve": it measures and reports every size.
			out := s.mustRun(t, cmd)
			for _, size := range []string{"10", "100"} {
				if !regexp.MustCompile(`(?m)\b` + size + `\b`).MatchString(out) {
					t.Errorf("the quick curve does not report size %s:\n%s", size, out)
				}
			}
		}},
	{pattern: regexp.MustCompile(`^go run \./internal/testenv/scalebench\s*$`), kind: kindExcluded,
		excluded: "the whole scale measurement: about 15 minutes (its quick curve runs here)"},
	{pattern: regexp.MustCompile(`^go run \./internal/testenv/scalebench -parts prereq `), kind: kindExcluded,
		excluded: "prerequisites-check on up to 50 testenv nodes: minutes"},
	{pattern: regexp.MustCompile(`^go run \./internal/testenv/scalebench -parts hollow -sizes 1000 -cpuprofile `), kind: kindExcluded,
		excluded: "1,000 hollow nodes with CPU profiles: a minute or more (its quick curve runs here)"},
	{pattern: regexp.MustCompile(`^go run \./internal/testenv/scalebench -parts relay\s*$`), kind: kindExcluded,
		excluded: "the image relay against direct side-load on 4 and 8 testenv nodes: minutes"},
}

// checkNoop checks deploy-master's output of a deploy that changed
// nothing: the checks ran and passed, every checkpoint that changes a node
// was already satisfied.
func checkNoop(t *testing.T, out string) {
	t.Helper()
	for _, cp := range checkpoints[1:5] {
		if !strings.Contains(out, "= "+cp+": already satisfied\n") {
			t.Errorf("a deploy of the deployed cluster ran %s:\n%s", cp, out)
		}
	}
	if !regexp.MustCompile(`(?m)^✓ deployed sandbox: 2 checkpoint\(s\) run, 4 already done `).MatchString(out) {
		t.Errorf("a deploy of the deployed cluster did more than its two checks:\n%s", out)
	}
}

var checkpoints = []string{"prerequisites-check", "docker-installation", "cleanup-existing", "ray-deployment", "monitoring-deployment", "final-validation"}

func classify(cmd string) (readmeRule, bool) {
	for _, r := range readmeRules {
		if r.pattern.MatchString(cmd) {
			return r, true
		}
	}
	return readmeRule{}, false
}

func findKind(t *testing.T, plan []readmeStep, k kind) []readmeStep {
	var out []readmeStep
	for _, st := range plan {
		if st.rule.kind == k {
			out = append(out, st)
		}
	}
	return out
}

// readmeCommands returns the commands of the README's ```sh blocks: one per
// line (a trailing backslash continues it), without comments.
func readmeCommands(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	in, cont := false, ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && (trimmed == "```sh" || trimmed == "```bash" || trimmed == "```shell"):
			in = true
			continue
		case in && strings.HasPrefix(trimmed, "```"):
			in = false
			continue
		case !in:
			continue
		}
		if i := commentStart(trimmed); i >= 0 {
			trimmed = strings.TrimSpace(trimmed[:i])
		}
		if strings.HasSuffix(trimmed, `\`) {
			cont += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		if c := strings.TrimSpace(cont + trimmed); c != "" {
			cmds = append(cmds, strings.Join(strings.Fields(c), " "))
		}
		cont = ""
	}
	if len(cmds) < 8 {
		t.Fatalf("found only %d commands in the README's sh blocks: %q", len(cmds), cmds)
	}
	return cmds
}

// commentStart is where a shell comment begins in line (a # at the start or
// after a blank, outside quotes), or -1.
func commentStart(line string) int {
	var quote rune
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
	}
	return -1
}

// sandboxOutput is what the main job printed.
type sandboxOutput struct {
	cluster string
	nodes   int
	config  string
	cmds    []printedCommand
}

// printedCommand is a "$ command" line and the text that says what it does:
// the words before it on its line, else the line above.
type printedCommand struct {
	label, cmd string
}

var (
	clusterLine = regexp.MustCompile(`(?m)^cluster (\S+): (\d+) nodes `)
	configLine  = regexp.MustCompile(`(?m)^config: (.+)$`)
	dollarLine  = regexp.MustCompile(`^\s+(?:(\S+)\s+)?\$ (.+)$`)
)

func parseSandbox(t *testing.T, out string) sandboxOutput {
	var s sandboxOutput
	m := clusterLine.FindStringSubmatch(out)
	c := configLine.FindStringSubmatch(out)
	if m == nil || c == nil {
		t.Fatalf("the main job did not print its cluster and config lines:\n%s", out)
	}
	s.cluster, s.config = m[1], c[1]
	fmt.Sscan(m[2], &s.nodes)
	prev := ""
	for _, line := range strings.Split(out, "\n") {
		if d := dollarLine.FindStringSubmatch(line); d != nil {
			label := d[1]
			if label == "" {
				label = strings.TrimSpace(prev)
			}
			s.cmds = append(s.cmds, printedCommand{label: label, cmd: d[2]})
		}
		prev = line
	}
	return s
}

var (
	loginCmd    = regexp.MustCompile(`^ssh -F /dev/null -i \S+ -o UserKnownHostsFile=\S+ deploy@[0-9.]+$`)
	forwardCmd  = regexp.MustCompile(`^ssh -F /dev/null -i \S+ -o UserKnownHostsFile=\S+ -N -L (\d+):127\.0\.0\.1:(\d+) deploy@[0-9.]+$`)
	forwardURL  = regexp.MustCompile(`^(.+) at (http://127\.0\.0\.1:(\d+)/) through$`)
	grafanaPass = regexp.MustCompile(`password in (\S+)\)`)
	againCmd    = regexp.MustCompile(`^go run \./examples/deploy-master --config \S+ --deploy$`)
	validateCmd = regexp.MustCompile(`^go run \./examples/validate --config \S+$`)
)

// runSandboxCommands runs every command the main job printed and checks it
// does what its label says.
func runSandboxCommands(t *testing.T, sh *shell, s sandboxOutput) {
	counts := map[string]int{}
	for _, pc := range s.cmds {
		switch {
		case loginCmd.MatchString(pc.cmd):
			counts["login"]++
			// A login, checked with a trivial remote command: it reaches
			// the node it is printed for.
			out, errOut, err := sh.run(t.Context(), pc.cmd+" hostname")
			if err != nil || out != pc.label+"\n" {
				t.Errorf("login %q: stdout %q (want %q), %v\nstderr: %s", pc.cmd, out, pc.label+"\n", err, errOut)
			}
		case forwardCmd.MatchString(pc.cmd):
			counts["forward"]++
			checkForward(t, sh, pc)
		case againCmd.MatchString(pc.cmd):
			counts["deploy again"]++
			out, errOut, err := sh.run(t.Context(), pc.cmd)
			if err != nil {
				t.Errorf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", pc.label, pc.cmd, err, out, errOut)
			}
			checkNoop(t, out)
		case validateCmd.MatchString(pc.cmd):
			counts["validate"]++
			if out, errOut, err := sh.run(t.Context(), pc.cmd); err != nil {
				t.Errorf("validate %q: %v\nstdout:\n%s\nstderr:\n%s", pc.cmd, err, out, errOut)
			}
		default:
			t.Errorf("the main job printed a command this test does not know (add a check for it): %q (%s)", pc.cmd, pc.label)
		}
	}
	want := map[string]int{"login": s.nodes, "forward": 3, "deploy again": 1, "validate": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("the main job printed %d %s command(s), want %d", counts[k], k, n)
		}
	}
}

// checkForward starts a printed port forward and checks the service its
// label names answers at the printed address.
func checkForward(t *testing.T, sh *shell, pc printedCommand) {
	m := forwardURL.FindStringSubmatch(pc.label)
	f := forwardCmd.FindStringSubmatch(pc.cmd)
	if m == nil || f[1] != m[3] {
		t.Errorf("forward %q: its label %q does not name the local address it forwards", pc.cmd, pc.label)
		return
	}
	what, url := m[1], m[2]
	var path, user, pass string
	switch {
	case strings.HasPrefix(what, "Ray dashboard"):
		path = "api/version"
	case strings.HasPrefix(what, "Prometheus"):
		path = "-/ready"
	case strings.HasPrefix(what, "Grafana"):
		p := grafanaPass.FindStringSubmatch(what)
		if p == nil {
			t.Errorf("the Grafana line does not say where its password is: %q", what)
			return
		}
		data, err := os.ReadFile(p[1])
		if err != nil {
			t.Errorf("Grafana password file: %v", err)
			return
		}
		path, user, pass = "api/user", "admin", strings.TrimSpace(string(data))
	default:
		t.Errorf("forward to an unknown service: %q", pc.label)
		return
	}
	// The printed local port is fixed when printed: two copies of the
	// suite hold it in turn.
	unlock, err := testenv.Lock(t.Context(), "printed-commands-ports.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	fw := sh.start(t, pc.cmd)
	defer fw.stop()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		status, err := get(ctx, url+path, user, pass, "")
		if err == nil && status == http.StatusOK {
			if user != "" { // the password is the one that works, not any
				if st, _ := get(ctx, url+path, user, pass+"x", ""); st != http.StatusUnauthorized {
					t.Errorf("Grafana accepted a wrong password (status %d)", st)
				}
			}
			return
		}
		last = fmt.Sprintf("status %d, %v", status, err)
		if fw.exited() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("%s: %s%s does not answer through %q: %s\nssh stderr: %s", what, url, path, pc.cmd, last, fw.stderr.String())
}

// get returns the status of a GET of url (basic auth when user is set, a
// bearer token when token is).
func get(ctx context.Context, url, user, pass, token string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, err
}

func (s *suiteState) mustRun(t *testing.T, cmd string, env ...string) string {
	t.Helper()
	out, errOut, err := s.sh.run(t.Context(), cmd, env...)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", cmd, err, out, errOut)
	}
	return out
}

// serveAPI starts the README's api-server command, checks it answers the
// token made before, runs the README's commands meant for while it serves,
// and stops it.
func (s *suiteState) serveAPI(t *testing.T, cmd string) {
	if s.token == "" {
		t.Fatal("no token: the README's tokens create command did not run first")
	}
	// Its address is fixed (127.0.0.1:8000): two copies of the suite take turns.
	unlock, err := testenv.Lock(t.Context(), "printed-commands-ports.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	srv := s.sh.start(t, s.fill(cmd))
	defer srv.stop()
	if err := srv.waitFor(t.Context(), "serving cluster sandbox at http://127.0.0.1:8000/"); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", cmd, err, srv.stderr.String())
	}
	if st, err := get(t.Context(), "http://127.0.0.1:8000/api/v1/cluster/status", "", "", s.token); err != nil || st != http.StatusOK {
		t.Fatalf("the server does not answer the token: status %d, %v", st, err)
	}
	if st, _ := get(t.Context(), "http://127.0.0.1:8000/api/v1/cluster/status", "", "", s.token+"x"); st != http.StatusUnauthorized {
		t.Errorf("a wrong token got status %d, want 401", st)
	}
	for _, st := range s.whileServe {
		c := st.cmd
		out := s.mustRun(t, c, "TOKEN="+s.token)
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc) == 0 || doc["error"] != nil {
			t.Errorf("%s: not the cluster's status as JSON: %v\n%s", c, err, out)
		}
	}
	// Stopped with Ctrl-C. (go run exits 1 when interrupted, whatever the
	// program's own status: the server's is checked by its own tests.)
	srv.interrupt()
	_ = srv.wait(t.Context())
	if _, err := get(t.Context(), "http://127.0.0.1:8000/api/v1/cluster/status", "", "", s.token); err == nil {
		t.Errorf("the api-server still answers after Ctrl-C")
	}
}

// runTTS runs a README tts-client command against the TTS app served by
// Debian's python3 on this machine, standing in for the head's Serve route
// (HEAD:8000 in the README).
func (s *suiteState) runTTS(t *testing.T, cmd string) {
	testenv.RequireBinary(t, "/usr/bin/python3", "python3")
	testenv.RequireBinary(t, "/usr/bin/flite", "flite")
	url := testenv.StartPythonApp(t, testenv.PythonApp{Write: tts.WriteApp, Module: tts.PythonPackage}).URL
	filled := s.fill(cmd, "http://HEAD:8000", url)
	out := s.mustRun(t, filled)
	switch {
	case strings.HasSuffix(cmd, " models"):
		if !strings.Contains(out, "default voice:") {
			t.Errorf("models does not list the voices:\n%s", out)
		}
	case strings.Contains(cmd, " say "):
		wav := filepath.Join(s.tmp, "hello.wav")
		data, err := os.ReadFile(wav)
		if err != nil || len(data) < 44 || string(data[:4]) != "RIFF" {
			t.Errorf("say did not write a WAV file (%d bytes, %v):\n%s", len(data), err, out)
		}
	default:
		t.Errorf("a tts-client command this test does not check: %s", cmd)
	}
}

// deployMasterPrintedCommands runs what deploy-master prints while it waits
// for an approval and after a failure: --down waits for its approval; a
// person refuses (the run fails and prints how to resume); the printed resume
// command waits again; the printed approval command approves it; the
// cluster's containers are gone.
func deployMasterPrintedCommands(t *testing.T, sh *shell, s sandboxOutput) {
	ctx := t.Context()
	down := sh.start(t, "go run ./examples/deploy-master --config "+shellQuote(s.config)+" --down --approval file")
	defer down.stop()
	if err := down.waitFor(ctx, "\n    $ printf "); err != nil {
		t.Fatalf("--down: %v\nstdout:\n%s\nstderr:\n%s", err, down.stdout.String(), down.stderr.String())
	}
	file := regexp.MustCompile(`write (\S+) containing\n    (\{.*\})\n`).FindStringSubmatch(down.stdout.String())
	if file == nil {
		t.Fatalf("--down does not say which file to write and what:\n%s", down.stdout.String())
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(file[2]), &shown); err != nil || shown["acknowledge_risks"] != true || shown["plan_digest"] == "" {
		t.Errorf("the JSON shown for the destructive --down is not an approval with its risks acknowledged: %s (%v)", file[2], err)
	}
	// A person reads the message, by then the channel waits for the file
	// (it has written its request beside it).
	waitFile(t, ctx, strings.TrimSuffix(file[1], ".json")+".request.json")
	refusal := `{"approved": false, "approved_at": "` + time.Now().UTC().Format(time.RFC3339) + `", "approved_by": "printed-commands-test", "reason": "checking the resume command"}`
	if err := os.WriteFile(file[1]+".part", []byte(refusal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file[1]+".part", file[1]); err != nil {
		t.Fatal(err)
	}
	if err := down.wait(ctx); err == nil {
		t.Fatalf("--down went on after a refusal:\n%s", down.stdout.String())
	}
	resume := regexp.MustCompile(`fix the cause, then resume with:\n  (.+)\n`).FindStringSubmatch(down.stderr.String())
	if resume == nil {
		t.Fatalf("the refused --down prints no resume command:\n%s", down.stderr.String())
	}

	again := sh.start(t, resume[1])
	defer again.stop()
	if err := again.waitFor(ctx, "\n    $ printf "); err != nil {
		t.Fatalf("resume command %q: %v\nstdout:\n%s\nstderr:\n%s", resume[1], err, again.stdout.String(), again.stderr.String())
	}
	approve := regexp.MustCompile(`\n    \$ (printf .+)\n`).FindStringSubmatch(again.stdout.String())
	if approve == nil {
		t.Fatalf("no approval command:\n%s", again.stdout.String())
	}
	waitFile(t, ctx, strings.TrimSuffix(file[1], ".json")+".request.json")
	if out, errOut, err := sh.run(ctx, approve[1]); err != nil {
		t.Fatalf("approval command %q: %v\n%s%s", approve[1], err, out, errOut)
	}
	if err := again.wait(ctx); err != nil {
		t.Fatalf("resume after the printed approval: %v\nstdout:\n%s\nstderr:\n%s", err, again.stdout.String(), again.stderr.String())
	}
	if !strings.Contains(again.stdout.String(), "approved by ") || !strings.Contains(again.stdout.String(), "✓ removed sandbox") {
		t.Errorf("the resumed --down did not remove the cluster:\n%s", again.stdout.String())
	}
	for _, pc := range s.cmds {
		if loginCmd.MatchString(pc.cmd) {
			out, errOut, err := sh.run(ctx, pc.cmd+" docker ps -q")
			if err != nil || out != "" {
				t.Errorf("%s still runs containers after --down: %q, %v %s", pc.label, out, err, errOut)
			}
		}
	}
}

// waitFile polls until path exists.
func waitFile(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never appeared: %v", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// shell runs commands as a new user's shell would: bash -c from the
// repository root with nothing of this process's environment but PATH, the
// Go caches and settings, the Docker Engine's address and the testenv knobs,
// and a new empty HOME.
type shell struct {
	root string
	env  []string
}

func newShell(t *testing.T, root string) *shell {
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	out, err := exec.Command("go", "env", "GOPATH", "GOCACHE", "GOMODCACHE", "GOTOOLCHAIN", "GOPROXY", "GOSUMDB", "GOFLAGS").Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if v != "" {
			env = append(env, []string{"GOPATH", "GOCACHE", "GOMODCACHE", "GOTOOLCHAIN", "GOPROXY", "GOSUMDB", "GOFLAGS"}[i]+"="+v)
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_HOST=") || strings.HasPrefix(kv, "RAYDEPLOY_TEST") {
			env = append(env, kv)
		}
	}
	return &shell{root: root, env: env}
}

func (s *shell) command(cmd string, extra ...string) *exec.Cmd {
	c := exec.Command("bash", "-c", cmd)
	c.Dir, c.Env = s.root, append(append([]string{}, s.env...), extra...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C goes to the whole job
	return c
}

// run runs cmd to completion and returns its stdout and stderr.
func (s *shell) run(ctx context.Context, cmd string, extra ...string) (string, string, error) {
	p := s.command(cmd, extra...)
	var out, errOut strings.Builder
	p.Stdout, p.Stderr = &out, &errOut
	if err := p.Start(); err != nil {
		return "", "", err
	}
	stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL) })
	defer stop()
	err := p.Wait()
	return out.String(), errOut.String(), err
}

// proc is a command that runs in the background.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr testenv.SyncBuffer
	done           chan struct{}
	err            error
}

// start starts cmd; t.Cleanup stops it if the test did not.
func (s *shell) start(t *testing.T, cmd string) *proc {
	p := &proc{cmd: s.command(cmd), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls until stdout holds s, the process ends or ctx ends.
func (p *proc) waitFor(ctx context.Context, s string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.stdout.String(), s) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.stdout.String(), s) {
				return nil
			}
			return fmt.Errorf("exited (%v) before printing %q", p.err, s)
		case <-ctx.Done():
			return fmt.Errorf("%q not printed: %w", s, ctx.Err())
		case <-tick.C:
		}
	}
}

// interrupt sends Ctrl-C to the process group.
func (p *proc) interrupt() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT) }

// wait waits for the end and returns its error (nil for exit status 0).
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop interrupts the process group, gives it a minute to clean up (the
// sandbox removes its cluster), then kills it.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.interrupt()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// shortName names a subtest after the command without "go run ./".
func shortName(cmd string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(cmd, "go run "), "./")
	if len(name) > 70 {
		name = name[:70]
	}
	return name
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
