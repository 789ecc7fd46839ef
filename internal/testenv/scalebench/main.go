// Command scalebench measures how the SDK's cost grows with the cluster: plan,
// first deploy and a no-op re-run against 10 to 1000 hollow nodes
// (internal/testenv/hollow), printing wall time, peak RSS, goroutines, ledger
// size and ledger write time per size and the fitted per-node cost.
//
//	go run ./internal/testenv/scalebench                 # hollow nodes, default sizes
//	go run ./internal/testenv/scalebench -sizes 10,100   # a quick run
//
// It is a test-environment program: nothing in the library imports it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raydeploy/sdk/internal/testenv/hollow"
)

func main() {
	sizes := flag.String("sizes", "10,100,500,1000", "hollow cluster sizes, comma-separated")
	parts := flag.String("parts", "hollow,relay,prereq", "what to measure: hollow (scale curve), relay (image relay vs direct side-load on real nodes), prereq (deploy-master vs OpenSSH on real nodes)")
	relayNodes := flag.String("relay-nodes", "4,8", "testenv node counts for the relay measurement, comma-separated (one cluster of the largest)")
	relayMiB := flag.Int("relay-mib", 64, "size of the relayed image's layer in MiB")
	prereqNodes := flag.String("prereq-nodes", "10,50", "testenv node counts for the prerequisites measurement")
	farm := flag.Int("farm", 0, "internal: run a farm of this many hollow nodes")
	measure := flag.String("measure", "", "internal: measure against the farm in this directory")
	dir := flag.String("dir", "", "internal: the farm's directory")
	image := flag.String("image", "", "internal: the image archive to side-load")
	farmPID := flag.Int("farm-pid", 0, "internal: the farm's process id (for its CPU time)")
	profile := flag.String("cpuprofile", "", "profile the SDK's side of the hollow part: `PREFIX`.<nodes>.<phase>.cpu (go tool pprof), .heap and .goroutines (connected, after the phase)")
	flag.Parse()
	log.SetFlags(0)

	switch {
	case *farm > 0:
		if err := runFarm(*farm, *dir); err != nil {
			log.Fatalf("farm: %v", err)
		}
		return
	case *measure != "":
		if err := runMeasure(*measure, *image, *farmPID, *profile); err != nil {
			log.Fatalf("measure: %v", err)
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ns, err := counts("-sizes", *sizes)
	if err != nil {
		log.Fatal(err)
	}
	rns, err := counts("-relay-nodes", *relayNodes)
	if err != nil {
		log.Fatal(err)
	}
	pns, err := counts("-prereq-nodes", *prereqNodes)
	if err != nil {
		log.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	want := map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		want[strings.TrimSpace(p)] = true
	}
	if want["hollow"] {
		if err := hollowBench(ctx, self, ns, *profile); err != nil {
			log.Fatal(err)
		}
	}
	if want["relay"] {
		fmt.Printf("\nimage relay vs direct side-load on %s testenv nodes (real sshd, dockerd, OpenSSH client)\n", *relayNodes)
		if err := relayBench(ctx, rns, *relayMiB); err != nil {
			log.Fatal(err)
		}
	}
	if want["prereq"] {
		root, err := moduleRoot(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("\nprerequisites-check as a whole process vs plain OpenSSH (median of 5 runs each)\n")
		for _, n := range pns {
			if err := prereqBench(ctx, root, n); err != nil {
				// Too many nodes for the machine: say so, go on.
				fmt.Printf("  %3d nodes: FAILED: %s\n", n, firstLines(err.Error(), 4))
			}
		}
	}
	fmt.Printf("\ntotal benchmark time %s\n", time.Since(start).Round(time.Second))
}

// counts parses a comma-separated list of node counts.
func counts(flagName, s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a node count", flagName, f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// moduleRoot is the directory of the SDK's go.mod (deploy-master is built
// from it).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("run scalebench from the SDK's module (go env GOMOD: %q %v)", out, err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func hollowBench(ctx context.Context, self string, ns []int, profile string) error {
	tmp, err := os.MkdirTemp("", "raydeploy-scalebench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	archive, _, err := hollow.ImageArchive(imageRef, "2.40.0", "3.11.2", 64<<10)
	if err != nil {
		return err
	}
	image := filepath.Join(tmp, "ray.tar")
	if err := os.WriteFile(image, archive, 0o600); err != nil {
		return err
	}
	fmt.Printf("hollow nodes: plan, first deploy (side-loading a %d KiB image) and a no-op re-run, each a fresh Deployer\n", len(archive)>>10)
	fmt.Printf("(checkpoints prerequisites-check .. ray-deployment; no monitoring, no validation job)\n\n")
	var all []phaseResult
	for _, n := range ns {
		logf("measuring %d nodes", n)
		res, err := measureSize(ctx, self, n, image, profile, logf)
		if err != nil {
			return err
		}
		all = append(all, res...)
	}
	fmt.Printf("%-7s %6s %9s %8s %8s %9s %9s %9s %10s %10s %11s\n", "phase", "nodes", "wall", "SDK cpu", "farm cpu", "peak RSS", "RSS/node", "live/node", "goroutines", "ledger", "ledger save")
	for _, r := range all {
		perNode := float64(r.PeakRSSKB-r.BaseRSSKB) / float64(r.Nodes)
		fmt.Printf("%-7s %6d %8.2fs %7.2fs %7.2fs %6d MB %6.0f KB %6.0f KB %10d %8d B %9.2fms", r.Phase, r.Nodes, r.WallSeconds,
			r.CPUSeconds, r.FarmCPUSeconds, r.PeakRSSKB>>10, perNode, float64(r.LiveKB)/float64(r.Nodes), r.PeakGoroutines, r.LedgerBytes, r.LedgerSaveMS)
		var cps []string
		for _, name := range slices.Sorted(maps.Keys(r.Checkpoints)) {
			cps = append(cps, fmt.Sprintf("%s %.2fs", name, r.Checkpoints[name]))
		}
		fmt.Printf("  [%s]", strings.Join(cps, ", "))
		if r.Err != "" {
			fmt.Printf("  ERROR %s", r.Err)
		}
		fmt.Println()
	}
	fmt.Println("\nfitted cost (least squares over the sizes: wall = fixed + per-node * nodes)")
	for _, phase := range []string{"plan", "deploy", "no-op"} {
		var xs, ys, rs []float64
		for _, r := range all {
			if r.Phase == phase && r.Err == "" {
				xs = append(xs, float64(r.Nodes))
				ys = append(ys, r.WallSeconds)
				rs = append(rs, float64(r.PeakRSSKB))
			}
		}
		if len(xs) < 2 {
			continue
		}
		a, b := fit(xs, ys)
		_, rb := fit(xs, rs)
		fmt.Printf("  %-7s %7.2f ms/node + %5.2f s fixed; peak RSS %6.1f KB/node", phase, b*1000, a, rb)
		if len(xs) >= 2 {
			first, last := 0, len(xs)-1
			ratio := (ys[last] / xs[last]) / (ys[first] / xs[first])
			fmt.Printf("; time per node at %g vs %g nodes: x%.2f", xs[last], xs[first], ratio)
		}
		fmt.Println()
	}
	return nil
}

// fit returns a, b of the least-squares line y = a + b*x.
func fit(xs, ys []float64) (a, b float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(xs))
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a = (sy - b*sx) / n
	return a, b
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n    ")
}
