// Command sandbox is the SDK's main job on one machine: it starts a local test
// cluster of real sshd + dockerd nodes in Docker, deploys a Ray cluster into it
// with raydeploy (Ray itself is the test stand-in, the only image that cannot
// be had without a registry), prints the time each checkpoint took and the
// time of a no-op re-run, and how to reach everything. It keeps the cluster
// until interrupted (Ctrl-C) or for -hold, then removes every container and
// network it made, and the temporary directory of its files (a directory
// given with -dir is kept).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/progress"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	dir := flag.String("dir", "", "where to write the client key, known_hosts, cluster.yaml and the state (default: a new temp directory, removed on exit)")
	hold := flag.Duration("hold", 0, "remove the cluster after this long (0: keep it until interrupted)")
	deploy := flag.Bool("deploy", true, "deploy Ray into the nodes (false: only start the nodes)")
	verbose := flag.Bool("v", false, "debug logs")
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	// Progress of image builds and side-loads: one live line on a
	// terminal, a plain line every few seconds otherwise. Logs and the
	// report go through the same printer so they never tear the live line.
	width := progress.Terminal(os.Stderr)
	pr := progress.New(os.Stderr, width)
	var out io.Writer = os.Stdout
	if width > 0 && progress.Terminal(os.Stdout) > 0 {
		out = pr.Writer()
	}
	log := slog.New(slog.NewTextHandler(pr.Writer(), &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = testenv.WithProgress(ctx, func(p testenv.BuildProgress) {
		if p.Done {
			pr.Done("build "+p.Image, "")
			return
		}
		pr.Update("build "+p.Image, fmt.Sprintf("building %s: %s (%s)", p.Image, p.Step, p.Elapsed.Round(time.Second)))
	})
	// With -v the SDK's own logs go to the same place (its info lines
	// would only clutter the report otherwise).
	var sdkLog *slog.Logger
	if *verbose {
		sdkLog = log
	}
	if err := run(ctx, *nodes, *dir, *hold, *deploy, out, log, sdkLog, pr); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes int, dir string, hold time.Duration, deploy bool, out io.Writer, log, sdkLog *slog.Logger, pr *progress.Printer) error {
	start := time.Now()
	logf := func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }
	// The Ray and monitoring images derive from the same base as the node
	// image, not from it: build them while the node image is built and the
	// nodes start.
	built := make(chan builtImages, 1)
	if deploy {
		go func() {
			im, err := buildImages(ctx, logf)
			built <- builtImages{im, err}
		}()
	} else {
		built <- builtImages{}
	}
	// On exit the cluster goes first, then the files that reach it.
	var leave func(clusterErr error) string
	env, err := testenv.Start(ctx, testenv.Options{Nodes: nodes, Logf: logf, DeployPassword: "sandbox-" + randomWord()})
	if env != nil {
		defer func() {
			cerr := env.Close()
			if cerr != nil {
				log.Error("removing the cluster", "err", cerr)
			} else {
				log.Info("cluster removed", "name", env.Name)
			}
			if leave != nil {
				fmt.Fprintln(out, leave(cerr))
			}
		}()
	}
	if err != nil {
		return err
	}
	log.Info("nodes ready", "name", env.Name, "nodes", nodes, "took", time.Since(start).Round(time.Millisecond))

	if dir, leave, err = workDir(dir); err != nil {
		return err
	}
	b := <-built
	if b.err != nil {
		return b.err
	}
	im := b.images
	cfgPath, err := writeFiles(env, dir, im)
	if err != nil {
		return err
	}
	key := filepath.Join(dir, "id_ed25519")
	known := filepath.Join(dir, "known_hosts")
	ssh := fmt.Sprintf("ssh -F /dev/null -i %s -o UserKnownHostsFile=%s", shellQuote(key), shellQuote(known))
	fmt.Fprintf(out, "\ncluster %s: %d nodes (user %q: key login, password sudo); log in with\n", env.Name, nodes, testenv.DeployUser)
	for _, n := range env.Nodes {
		fmt.Fprintf(out, "  %-6s $ %s %s@%s\n", n.Name, ssh, testenv.DeployUser, n.Address)
	}
	fmt.Fprintf(out, "config: %s\n", cfgPath)

	if deploy {
		if err := deployInto(ctx, cfgPath, out, logf, sdkLog, pr); err != nil {
			return err
		}
		head := testenv.DeployUser + "@" + env.Nodes[0].Address
		fmt.Fprintln(out, "\nWhile it runs (commands from the repository root):")
		for _, fw := range []struct {
			what string
			port int
		}{
			{"Ray dashboard", 8265},
			{"Prometheus", 9090},
			{"Grafana (user admin, password in " + filepath.Join(filepath.Dir(cfgPath), "state", monitoring.AdminPasswordFile) + ")", 3000},
		} {
			local := freePort(fw.port)
			fmt.Fprintf(out, "  %s at http://127.0.0.1:%d/ through\n    $ %s -N -L %d:127.0.0.1:%d %s\n", fw.what, local, ssh, local, fw.port, head)
		}
		fmt.Fprintf(out, "  deploy again (a no-op now)\n    $ go run ./examples/deploy-master --config %s --deploy\n", shellQuote(cfgPath))
		fmt.Fprintf(out, "  validate\n    $ go run ./examples/validate --config %s\n", shellQuote(cfgPath))
	}

	if hold > 0 {
		fmt.Fprintf(out, "\nremoving it in %s (Ctrl-C removes it now)\n", hold)
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
		return nil
	}
	fmt.Fprintln(out, "\nCtrl-C removes it.")
	<-ctx.Done()
	return nil
}

// workDir returns dir (created 0700 if missing) or, when dir is empty, a
// new temporary directory, and what to do on exit once the cluster removal
// returned clusterErr: a directory workDir made is removed when the cluster
// is gone; one given with -dir, or one whose key still reaches nodes left
// behind, is kept. It returns the line that says which.
func workDir(dir string) (string, func(clusterErr error) string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, err
		}
		return dir, func(error) string {
			return "kept " + dir + " (given with -dir): the key, known_hosts, cluster.yaml and state"
		}, nil
	}
	made, err := os.MkdirTemp("", "raydeploy-sandbox-")
	if err != nil {
		return "", nil, err
	}
	return made, func(clusterErr error) string {
		if clusterErr != nil {
			return "kept " + made + ": its key and known_hosts reach the nodes that were not removed"
		}
		if err := os.RemoveAll(made); err != nil {
			return fmt.Sprintf("removing %s: %v", made, err)
		}
		return "removed " + made
	}, nil
}

// images are what the sandbox deploys: built locally (or named by the
// RAYDEPLOY_TEST_*_IMAGE variables), side-loaded into the nodes.
type images struct {
	ray string
	mon testenv.MonitoringImages
}

type builtImages struct {
	images
	err error
}

// buildImages compiles the stand-ins (one after the other: they share most
// of the work), then builds the Ray and monitoring images at once.
func buildImages(ctx context.Context, logf func(string, ...any)) (images, error) {
	pool, err := testenv.Connect()
	if err != nil {
		return images{}, err
	}
	if err := testenv.PrepareStandins(ctx); err != nil {
		return images{}, err
	}
	var im images
	var rayErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		im.ray, rayErr = testenv.TestRayImage(ctx, pool, logf)
	}()
	var monErr error
	im.mon, monErr = testenv.TestMonitoringImages(ctx, pool, logf)
	<-done
	return im, errors.Join(rayErr, monErr)
}

// writeFiles writes the client key, known_hosts, the sudo password (a 0600
// file) and a cluster.yaml that describes exactly what the sandbox deploys,
// images included, so that the printed commands work from any shell.
func writeFiles(env *testenv.Cluster, dir string, im images) (string, error) {
	key := filepath.Join(dir, "id_ed25519")
	known := filepath.Join(dir, "known_hosts")
	sudo := filepath.Join(dir, "sudo-password")
	if err := os.WriteFile(key, env.ClientKeyPEM, 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(known, env.KnownHosts(), 0o600); err != nil {
		return "", err
	}
	// Every node of the sandbox has the same sudo password.
	if err := os.WriteFile(sudo, []byte(env.Nodes[0].DeployPassword+"\n"), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster_name: sandbox\nstate_dir: %s\nssh:\n  user: %s\n  key_file: %s\n  known_hosts: %s\n  sudo_password_file: %s\n",
		yamlString(filepath.Join(dir, "state")), testenv.DeployUser, yamlString(key), yamlString(known), yamlString(sudo))
	for i, n := range env.Nodes {
		if i == 0 {
			fmt.Fprintf(&b, "head:\n  name: %s\n  address: %s\nworkers:\n", n.Name, n.Address)
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n", n.Name, n.Address)
	}
	if im.ray != "" {
		fmt.Fprintf(&b, "ray:\n  image: %s\nmonitoring:\n  images:\n    prometheus: %s\n    grafana: %s\n    node_exporter: %s\n    cadvisor: %s\n",
			yamlString(im.ray), yamlString(im.mon.Prometheus), yamlString(im.mon.Grafana), yamlString(im.mon.NodeExporter), yamlString(im.mon.CAdvisor))
	}
	path := filepath.Join(dir, "cluster.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// yamlString quotes s as a YAML double-quoted string.
func yamlString(s string) string { return strconv.Quote(s) }

// deployInto deploys the cluster file into the sandbox nodes twice, the
// second time a no-op, and prints how long each checkpoint took.
func deployInto(ctx context.Context, cfgPath string, out io.Writer, logf func(string, ...any), sdkLog *slog.Logger, pr *progress.Printer) error {
	cluster, warnings, err := raydeploy.Load(cfgPath)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		logf("config: %s", w)
	}
	if err := cluster.CheckLocal(); err != nil {
		return err
	}
	var loads sideLoads
	sideLoad := func(p raydeploy.TransferProgress) {
		label := fmt.Sprintf("side-load %s to %s", p.Image, p.Node)
		if p.Skipped > 0 {
			label += fmt.Sprintf(" (%s of layers it has left out)", progress.Bytes(p.Skipped))
		}
		pr.Transfer("side-load "+p.Node+" "+p.Image, label, p.Sent, p.Total, p.Elapsed, p.Done, p.Err)
		loads.add(p)
	}
	first, err := timedDeploy(ctx, cluster, out, "first deploy", sideLoad, &loads, sdkLog)
	if err != nil {
		return err
	}
	var noop []time.Duration
	for i := range 3 {
		took, err := timedDeploy(ctx, cluster, out, fmt.Sprintf("no-op re-run %d", i+1), sideLoad, &loads, sdkLog)
		if err != nil {
			return err
		}
		noop = append(noop, took)
	}
	slices.Sort(noop)
	fmt.Fprintf(out, "\nno-op re-run (median of 3): %s, %.1f%% of the first deploy's %s\n",
		noop[1].Round(time.Millisecond), 100*noop[1].Seconds()/first.Seconds(), first.Round(time.Millisecond))
	return nil
}

// sideLoads sums the finished side-loads of one deploy.
type sideLoads struct {
	mu            sync.Mutex
	sent, skipped int64
	n             int
}

func (s *sideLoads) add(p raydeploy.TransferProgress) {
	if !p.Done || p.Err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent, s.skipped, s.n = s.sent+p.Sent, s.skipped+p.Skipped, s.n+1
}

// take returns the sums so far and starts again from zero.
func (s *sideLoads) take() (sent, skipped int64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent, skipped, n = s.sent, s.skipped, s.n
	s.sent, s.skipped, s.n = 0, 0, 0
	return sent, skipped, n
}

// timedDeploy runs one Deploy and prints one line per checkpoint with its
// outcome and duration, and what was side-loaded.
func timedDeploy(ctx context.Context, cluster *raydeploy.Cluster, out io.Writer, title string, sideLoad func(raydeploy.TransferProgress), loads *sideLoads, sdkLog *slog.Logger) (time.Duration, error) {
	var mu sync.Mutex
	started := map[string]time.Time{}
	lines := []string{}
	sink := func(e checkpoint.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e := e.(type) {
		case checkpoint.CheckpointStarted:
			started[e.Checkpoint] = e.At
		case checkpoint.CheckpointFinished:
			lines = append(lines, fmt.Sprintf("  %-22s succeeded  %8s", e.Checkpoint, e.At.Sub(started[e.Checkpoint]).Round(time.Millisecond)))
		case checkpoint.CheckpointSkipped:
			lines = append(lines, fmt.Sprintf("  %-22s satisfied  %8s", e.Checkpoint, e.At.Sub(started[e.Checkpoint]).Round(time.Millisecond)))
		case checkpoint.CheckpointFailed:
			lines = append(lines, fmt.Sprintf("  %-22s FAILED     %8s  %v", e.Checkpoint, e.At.Sub(started[e.Checkpoint]).Round(time.Millisecond), e.Err))
		}
	}
	d, err := raydeploy.New(cluster, raydeploy.Options{
		Approver: approval.NewAuto("sandbox", true),
		Events:   sink,
		Progress: sideLoad,
		Logger:   sdkLog,
	})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	start := time.Now()
	_, err = d.Deploy(ctx, checkpoint.RunOptions{})
	took := time.Since(start)
	mu.Lock()
	fmt.Fprintf(out, "\n%s: %s\n%s\n", title, took.Round(time.Millisecond), strings.Join(lines, "\n"))
	mu.Unlock()
	if sent, skipped, n := loads.take(); n > 0 {
		fmt.Fprintf(out, "  side-loaded %s in %d transfer(s); %s of layers the nodes had were not sent\n", progress.Bytes(sent), n, progress.Bytes(skipped))
	}
	if err != nil {
		return took, errors.Join(fmt.Errorf("%s failed", title), err)
	}
	return took, nil
}

// freePort returns port when nothing on this machine listens on it, else a
// free port the system picks: the printed forwarding commands must work even
// while something else (another sandbox) holds the usual one.
func freePort(port int) int {
	for _, p := range []int{port, 0} {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			got := l.Addr().(*net.TCPAddr).Port
			l.Close()
			return got
		}
	}
	return port
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters, so printed commands paste as they are.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomWord() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
