package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

func main() {
	kills := flag.Int("kills", 50, "SIGKILL points")
	seed := flag.Uint64("seed", 0, "seed of the kill points (0: from the clock; printed)")
	nodes := flag.Int("nodes", 3, "testenv nodes")
	only := flag.String("faults", "all", "node and state faults to run: all, none, or names separated by commas (\"node frozen,two deployers\")")
	monitoring := flag.Bool("monitoring", true, "deploy the monitoring stack too (all six checkpoints)")
	maxTime := flag.Duration("max-time", 0, "start no kill point after this long (0: no limit); the points not run are listed")
	out := flag.String("out", "", "write the results table (Markdown) to this `FILE`, e.g. docs/RELIABILITY.md")
	flag.Parse()
	log.SetFlags(0)
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := make([]string, len(os.Args)-1)
	for i, a := range os.Args[1:] {
		args[i] = a
		if strings.ContainsAny(a, " '\"") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'" // as a shell reads it back
		}
	}
	cmdline := "go run ./internal/testenv/faultbench " + strings.Join(args, " ")
	rep, err := runBench(ctx, benchConfig{Kills: *kills, Seed: *seed, Nodes: *nodes, Faults: *only, Monitoring: *monitoring, Command: cmdline, MaxTime: *maxTime})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.write(&buf); err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		fmt.Print(buf.String())
		return
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s\n", *out)
}

// benchConfig is what one faultbench run covers.
type benchConfig struct {
	Kills      int
	Seed       uint64
	Nodes      int
	Faults     string // all, none, or comma-separated names
	Monitoring bool
	Command    string
	MaxTime    time.Duration // start no kill point after this long
}

// runBench starts a testenv cluster, runs the kill points and the faults on
// it, and returns what they gave. A point that cannot be run (the bench's
// own trouble, not the SDK's) is listed under Problems and the run goes on.
func runBench(ctx context.Context, cfg benchConfig) (*report, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	chosen, err := selectFaults(cfg.Faults)
	if err != nil {
		return nil, err
	}
	logf("faultbench: seed %d", cfg.Seed)
	rep := &report{Command: cfg.Command, Seed: cfg.Seed, Nodes: cfg.Nodes, Monitor: cfg.Monitoring, Started: time.Now()}
	env, err := testenv.Start(ctx, testenv.Options{Nodes: cfg.Nodes, Logf: logf})
	if env != nil {
		defer env.Close()
	}
	if err != nil {
		return nil, err
	}
	root, err := moduleDir(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "raydeploy-faultbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := NewBench(ctx, env, BenchOptions{Root: root, Dir: dir, Monitoring: cfg.Monitoring, Logf: logf})
	if err != nil {
		return nil, err
	}
	rep.Setup, rep.Lines = time.Since(rep.Started), b.lines
	victim := env.Nodes[len(env.Nodes)-1]
	for _, f := range chosen {
		var o faultOutcome
		if f.Name == "two deployers" {
			o, err = b.twoDeployers(ctx)
		} else {
			o, err = b.inject(ctx, f, victim)
		}
		if ctx.Err() != nil {
			return rep.interrupted(), nil
		}
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", f.Name, err))
			logf("faultbench: %s: not run: %v", f.Name, err)
			continue
		}
		rep.Faults = append(rep.Faults, o)
		logf("faultbench: %s on %s: ended after %s, named %v, converged %v; error: %s", f.Name, o.Node, endedText(o), o.Named, o.Converged, o.Run.errorText())
	}
	points := killPoints(cfg.Seed, cfg.Kills, b.lines)
	logf("faultbench: kill points (after progress line k of %d): %v", b.lines, points)
	for i, k := range points {
		if cfg.MaxTime > 0 && time.Since(rep.Started) > cfg.MaxTime {
			rep.Problems = append(rep.Problems, fmt.Sprintf("kill points %d to %d not run: -max-time %s reached", i+1, len(points), cfg.MaxTime))
			break
		}
		o, err := b.killAt(ctx, k, i%5 == 4)
		if ctx.Err() != nil {
			return rep.interrupted(), nil
		}
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("kill point %d (line %d): %v", i+1, k, err))
			logf("faultbench: kill %d/%d after line %d: not run: %v", i+1, len(points), k, err)
			continue
		}
		rep.Kills = append(rep.Kills, o)
		logf("faultbench: kill %d/%d after line %d (%s): converged %v in %s; %s", i+1, len(points), k, o.Checkpoint, o.Converged, o.Recover.Round(100*time.Millisecond), o.Verdict)
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

// interrupted ends a report cut short by a signal: what ran is kept.
func (r *report) interrupted() *report {
	r.Took = time.Since(r.Started)
	r.Problems = append(r.Problems, fmt.Sprintf("interrupted after %s: the rows above are what ran", r.Took.Round(time.Second)))
	return r
}

// selectFaults returns the faults named by spec (all, none, or a list),
// two deployers included under its name; an unknown name is an error.
func selectFaults(spec string) ([]fault, error) {
	all := append(faults(), fault{Name: "two deployers"})
	switch spec {
	case "all":
		return all, nil
	case "none", "":
		return nil, nil
	}
	var out []fault
	for _, name := range strings.Split(spec, ",") {
		i := slices.IndexFunc(all, func(f fault) bool { return f.Name == strings.TrimSpace(name) })
		if i < 0 {
			var valid []string
			for _, f := range all {
				valid = append(valid, f.Name)
			}
			return nil, fmt.Errorf("-faults: unknown fault %q; valid: %s", name, strings.Join(valid, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// moduleDir is the SDK module's directory, where deploy-master is built.
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", fmt.Errorf("run faultbench inside the SDK's module (go list -m: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "examples", "deploy-master")); err != nil {
		return "", err
	}
	return dir, nil
}
