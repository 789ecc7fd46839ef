package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
	"github.com/raydeploy/sdk/raydeploy"
)

// farmSpec is what a farm process tells the measuring process: where its
// hollow nodes listen and how to log in.
type farmSpec struct {
	KeyFile    string     `json:"key_file"`
	KnownHosts string     `json:"known_hosts"`
	Nodes      []farmNode `json:"nodes"`
}

type farmNode struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
}

// runFarm starts n hollow nodes, writes their spec to dir/farm.json, prints
// "ready" and serves until stdin closes. It runs in its own process so that
// the measured process holds only the SDK's side of each connection.
func runFarm(n int, dir string) error {
	ctx := context.Background()
	c, err := hollow.Start(ctx, hollow.Options{Nodes: n})
	if err != nil {
		return err
	}
	defer c.Close()
	key, known, err := c.WriteSSHFiles(dir)
	if err != nil {
		return err
	}
	spec := farmSpec{KeyFile: key, KnownHosts: known}
	for _, hn := range c.Nodes {
		spec.Nodes = append(spec.Nodes, farmNode{Name: hn.Name, Address: hn.Address, Port: hn.Port})
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "farm.json"), b, 0o600); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// phaseResult is one measured phase at one cluster size.
type phaseResult struct {
	Phase          string  `json:"phase"`
	Nodes          int     `json:"nodes"`
	WallSeconds    float64 `json:"wall_s"`
	PeakRSSKB      int64   `json:"peak_rss_kb"`
	BaseRSSKB      int64   `json:"base_rss_kb"`
	PeakGoroutines int     `json:"peak_goroutines"`
	LedgerBytes    int64   `json:"ledger_bytes"`
	LedgerSaveMS   float64 `json:"ledger_save_ms"`
	LiveKB         int64   `json:"live_kb"`    // heap in use + stacks, connected, after the run
	CPUSeconds     float64 `json:"cpu_s"`      // the SDK process
	FarmCPUSeconds float64 `json:"farm_cpu_s"` // the hollow nodes' process
	// Checkpoints are the seconds from each checkpoint's start to its end.
	Checkpoints map[string]float64 `json:"checkpoints"`
	Err         string             `json:"error,omitempty"`
}

// cpuSeconds returns the user+system CPU time of process pid (0: this one).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name: utime and stime are the 14th and 15th.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func maxRSSKB() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}

// goroutineWatch samples the goroutine count until stop is called and
// returns the peak.
func goroutineWatch() (stop func() int) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int { close(done); <-finished; return int(peak.Load()) }
}

// runMeasure is the measuring process: against the farm in dir, it plans,
// deploys and re-runs (each with a fresh Deployer, as a new run of a
// program would) and prints one JSON line per phase.
//
// With profile set, each phase writes its CPU profile to
// profile.<phase>.cpu and, connected after the run, its heap and goroutine
// profiles to profile.<phase>.heap and .goroutines.
func runMeasure(dir, image string, farmPID int, profile string) error {
	b, err := os.ReadFile(filepath.Join(dir, "farm.json"))
	if err != nil {
		return err
	}
	var spec farmSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	c := &raydeploy.Cluster{
		Name:     "scale",
		SSH:      raydeploy.SSHConfig{User: "root", KnownHostsFile: spec.KnownHosts, Auth: raydeploy.Auth{KeyFile: spec.KeyFile}},
		StateDir: filepath.Join(dir, "state"),
		Ray:      raydeploy.RayConfig{Image: imageRef},
	}
	for i, n := range spec.Nodes {
		node := raydeploy.Node{Name: n.Name, Address: n.Address, Port: n.Port}
		if i == 0 {
			c.Head = node
		} else {
			c.Workers = append(c.Workers, node)
		}
	}
	runtime.GC()
	base := maxRSSKB()
	enc := json.NewEncoder(os.Stdout)
	ctx := context.Background()
	for _, phase := range []string{"plan", "deploy", "no-op"} {
		res := phaseResult{Phase: phase, Nodes: len(spec.Nodes), BaseRSSKB: base}
		stop := goroutineWatch()
		cpu0, farm0 := cpuSeconds(0), cpuSeconds(farmPID)
		stopProfile, err := startCPUProfile(profile, phase)
		if err != nil {
			return err
		}
		start := time.Now()
		cps, live, err := runPhase(ctx, c, image, phase, profile)
		stopProfile()
		res.LiveKB = live
		res.WallSeconds = time.Since(start).Seconds()
		res.CPUSeconds, res.FarmCPUSeconds = cpuSeconds(0)-cpu0, cpuSeconds(farmPID)-farm0
		res.Checkpoints = cps
		res.PeakGoroutines = stop()
		res.PeakRSSKB = maxRSSKB()
		if err != nil {
			res.Err = err.Error()
			if len(res.Err) > 500 {
				res.Err = res.Err[:500] + "..."
			}
		}
		res.LedgerBytes, res.LedgerSaveMS = ledgerCost(c.StateDir)
		if err := enc.Encode(res); err != nil {
			return err
		}
		if err != nil {
			return nil
		}
	}
	return nil
}

// imageRef is the Ray image the benchmark side-loads (a small archive built
// by hollow.ImageArchive).
const imageRef = "raydeploy-scale/ray:bench"

// startCPUProfile starts profiling the phase when profile is set.
func startCPUProfile(profile, phase string) (stop func(), err error) {
	if profile == "" {
		return func() {}, nil
	}
	f, err := os.Create(profile + "." + phase + ".cpu")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runPhase(ctx context.Context, c *raydeploy.Cluster, image, phase, profile string) (cps map[string]float64, liveKB int64, err error) {
	var mu sync.Mutex
	started, took := map[string]time.Time{}, map[string]float64{}
	last := time.Now()
	events := func(e checkpoint.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := e.(type) {
		case checkpoint.CheckpointStarted:
			started[ev.Checkpoint] = ev.At
		case checkpoint.CheckpointPlanned:
			if _, ok := started[ev.Checkpoint]; !ok { // a dry run: plans one after the other
				took[ev.Checkpoint] = ev.At.Sub(last).Seconds()
				last = ev.At
			}
		case checkpoint.CheckpointFinished:
			took[ev.Checkpoint] = ev.At.Sub(started[ev.Checkpoint]).Seconds()
		case checkpoint.CheckpointSkipped:
			took[ev.Checkpoint] = ev.At.Sub(started[ev.Checkpoint]).Seconds()
		}
	}
	d, err := raydeploy.New(c, raydeploy.Options{
		Approver: approval.NewAuto("scalebench", true), NoMonitoring: true, Events: events,
		Images: raydeploy.ImageSideLoad, ImageFile: image, ReadyTimeout: 5 * time.Minute,
	})
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	// What the SDK holds while every node is connected, garbage collected.
	defer func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		liveKB = int64(ms.HeapInuse+ms.StackInuse) >> 10
	}()
	// final-validation runs a Ray job, which hollow nodes cannot run.
	if err := d.Checkpoints().Remove(raydeploy.CheckpointValidation); err != nil {
		return nil, 0, err
	}
	result := func() map[string]float64 {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(took)
	}
	if phase == "plan" {
		_, err := d.Plan(ctx, checkpoint.RunOptions{})
		return result(), 0, err
	}
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		return result(), 0, err
	}
	if profile != "" {
		// What the SDK holds per node while connected (before Close).
		runtime.GC()
		for name, file := range map[string]string{"heap": profile + "." + phase + ".heap", "goroutine": profile + "." + phase + ".goroutines"} {
			if f, err := os.Create(file); err == nil {
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
	}
	if phase == "no-op" {
		for _, cp := range rep.Checkpoints {
			if cp.Name != raydeploy.CheckpointPrerequisites && cp.Status != checkpoint.StatusSkippedSatisfied {
				return result(), 0, fmt.Errorf("no-op re-run: %s was %s, not satisfied", cp.Name, cp.Status)
			}
		}
	}
	return result(), 0, nil
}

// ledgerCost returns the ledger's size and the median time of saving it
// (checkpoint.Store.Save: encode, write to a temp file, fsync, rename).
func ledgerCost(dir string) (int64, float64) {
	st, err := checkpoint.OpenStore(dir)
	if err != nil {
		return 0, 0
	}
	fi, err := os.Stat(st.Path())
	if err != nil {
		return 0, 0
	}
	l, err := st.Load()
	if err != nil {
		return fi.Size(), 0
	}
	var times []float64
	for range 5 {
		start := time.Now()
		if err := st.Save(l); err != nil {
			return fi.Size(), 0
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(times)
	return fi.Size(), times[len(times)/2]
}

// measureSize runs one farm and one measuring process for n nodes.
func measureSize(ctx context.Context, self string, n int, image, profile string, logf func(string, ...any)) ([]phaseResult, error) {
	dir, err := os.MkdirTemp("", "raydeploy-scalebench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	farm := exec.CommandContext(ctx, self, "-farm", fmt.Sprint(n), "-dir", dir)
	farm.Stderr = os.Stderr
	stdin, err := farm.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := farm.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := farm.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = stdin.Close(); _ = farm.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return nil, fmt.Errorf("hollow farm of %d nodes did not start: %q %v", n, line, err)
	}
	logf("  %d hollow nodes up", n)
	args := []string{"-measure", dir, "-image", image, "-farm-pid", fmt.Sprint(farm.Process.Pid)}
	if profile != "" {
		args = append(args, "-cpuprofile", fmt.Sprintf("%s.%d", profile, n))
	}
	m := exec.CommandContext(ctx, self, args...)
	m.Stderr = os.Stderr
	mout, err := m.Output()
	if err != nil {
		return nil, fmt.Errorf("measure %d nodes: %w", n, err)
	}
	var res []phaseResult
	dec := json.NewDecoder(bytesReader(mout))
	for {
		var r phaseResult
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return res, err
		}
		res = append(res, r)
	}
	return res, nil
}
