package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

// TestScheduling starts the seed's layout (a head with --num-cpus=0, so that
// work stays off it), a 1-CPU worker and a GPU-only worker with a custom
// resource, and checks that tasks get what Ray would give them.
func TestScheduling(t *testing.T) {
	requirePython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	headN := newNodeAddr(t, "127.0.0.1")
	cpuN := newNodeAddr(t, "127.0.0.2")
	gpuN := newNodeAddr(t, "127.0.0.3")
	gcsPort, dashPort := freePort(t, headN.ip), freePort(t, headN.ip)
	headN.proc = startRay(t, "head", nil, headArgs(t, headN, gcsPort, dashPort, 0)...)
	gcsAddr := net.JoinHostPort(headN.ip, strconv.Itoa(gcsPort))
	worker := func(n *nodeAddr, extra ...string) {
		args := append([]string{"start", "--address=" + gcsAddr, "--node-ip-address=" + n.ip,
			"--metrics-export-port=" + strconv.Itoa(n.metricsPort),
			"--dashboard-agent-listen-port=" + strconv.Itoa(n.agentPort),
			"--temp-dir=" + n.tempDir, "--block"}, extra...)
		n.proc = startRay(t, "worker-"+n.ip, nil, args...)
	}
	worker(cpuN, "--num-cpus=1")
	worker(gpuN, "--num-cpus=0", "--num-gpus=1", `--resources={"tts": 2}`)

	c, err := raydash.New(raydash.Config{BaseURL: fmt.Sprintf("http://%s:%d", headN.ip, dashPort)})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // ip -> node id
	eventually(t, 30*time.Second, "3 nodes ALIVE", func() error {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Alive() {
				ids[n.IP] = n.ID
			}
		}
		if len(ids) != 3 {
			return fmt.Errorf("%d of 3 nodes alive", len(ids))
		}
		return nil
	})

	// job runs a Python script as a job and returns its final details and logs.
	job := func(t *testing.T, script string) (raydash.JobInfo, string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "job.py")
		if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		sub, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "python " + path})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.WaitJob(ctx, sub.SubmissionID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		logs, err := c.JobLogs(ctx, sub.SubmissionID)
		if err != nil {
			t.Fatal(err)
		}
		return info, logs
	}
	const prelude = `import json, os, socket, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="auto")
def pin(node_id):
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
`

	t.Run("SDK validation job on every node", func(t *testing.T) {
		sub, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "python " + sdkValidationJob(t)})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.WaitJob(ctx, sub.SubmissionID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := c.JobLogs(ctx, sub.SubmissionID)
		if info.Status != raydash.JobSucceeded {
			t.Fatalf("the SDK's validation job on a 0-CPU head: %s: %s\n%s", info.Status, info.Message, logs)
		}
		var ips []string
		for _, r := range parseValidation(t, logs) {
			if ids[r.IP] != r.NodeID {
				t.Errorf("task result %+v: want node id %s", r, ids[r.IP])
			}
			ips = append(ips, r.IP)
		}
		sort.Strings(ips)
		if got := strings.Join(ips, ","); got != "127.0.0.1,127.0.0.2,127.0.0.3" {
			t.Errorf("validation tasks ran on %s, want every node", got)
		}
	})

	t.Run("1 CPU pinned to the 0-CPU head fails as in Ray", func(t *testing.T) {
		info, logs := job(t, prelude+fmt.Sprintf(`
@ray.remote
def f():
    return 1
print(ray.get(f.options(scheduling_strategy=pin(%q)).remote()))
`, ids[headN.ip]))
		const want = "ray.exceptions.TaskUnschedulableError: The task is not schedulable: The node specified via NodeAffinitySchedulingStrategy doesn't exist any more or is infeasible, and soft=False was specified."
		if info.Status != raydash.JobFailed || !strings.Contains(info.Message, want) || !strings.Contains(logs, want) {
			t.Errorf("job %s: %s\nlogs:\n%s\nwant FAILED with %q", info.Status, info.Message, logs, want)
		}
	})

	t.Run("GPU and custom resources", func(t *testing.T) {
		info, logs := job(t, prelude+fmt.Sprintf(`
@ray.remote(num_cpus=0, num_gpus=1)
def gpu():
    return ray.util.get_node_ip_address()
@ray.remote(num_cpus=0, resources={"tts": 1})
def tts():
    return ray.util.get_node_ip_address()
print("GPU " + ray.get(gpu.remote()))
print("TTS " + ",".join(sorted(set(ray.get([tts.remote() for _ in range(4)])))))
try:
    ray.get(gpu.options(scheduling_strategy=pin(%q)).remote())
    print("PINNED ran")
except ray.exceptions.TaskUnschedulableError as e:
    print("PINNED " + type(e).__name__)
try:
    ray.remote(resources={"CPU": 1})(lambda: 1)
except ValueError as e:
    print("BADOPT " + str(e))
`, ids[cpuN.ip]))
		if info.Status != raydash.JobSucceeded {
			t.Fatalf("job %s: %s\n%s", info.Status, info.Message, logs)
		}
		for _, want := range []string{"GPU 127.0.0.3\n", "TTS 127.0.0.3\n", "PINNED TaskUnschedulableError\n",
			"BADOPT Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword\n"} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
	})

	t.Run("a busy CPU makes tasks wait their turn", func(t *testing.T) {
		// Three 1-CPU tasks without affinity: only the 1-CPU worker fits
		// them, one at a time. Each records how many were running at its start.
		dir := t.TempDir()
		info, logs := job(t, prelude+fmt.Sprintf(`
@ray.remote
def one(i, dir):
    mine = os.path.join(dir, "running-%%d" %% i)
    open(mine, "w").close()
    others = [n for n in os.listdir(dir) if n.startswith("running-")]
    time.sleep(0.3)  # the task's work: a window for an overlap to show
    used = ray.available_resources().get("CPU", 0)
    os.remove(mine)
    return {"ip": ray.util.get_node_ip_address(), "running": len(others), "cpu_free": used}
print("RESULTS " + json.dumps(ray.get([one.remote(i, %q) for i in range(3)])))
`, dir))
		if info.Status != raydash.JobSucceeded {
			t.Fatalf("job %s: %s\n%s", info.Status, info.Message, logs)
		}
		var res []struct {
			IP      string  `json:"ip"`
			Running int     `json:"running"`
			CPUFree float64 `json:"cpu_free"`
		}
		for _, line := range strings.Split(logs, "\n") {
			if rest, ok := strings.CutPrefix(line, "RESULTS "); ok {
				if err := json.Unmarshal([]byte(rest), &res); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(res) != 3 {
			t.Fatalf("results %+v, want 3:\n%s", res, logs)
		}
		for _, r := range res {
			if r.IP != cpuN.ip || r.Running != 1 || r.CPUFree != 0 {
				t.Errorf("task %+v: want it alone on %s, holding the only CPU", r, cpuN.ip)
			}
		}
		// Once the tasks are done their CPU is free again.
		raw, err := c.ClusterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var cs struct {
			LoadMetricsReport struct {
				Usage map[string][2]float64 `json:"usage"`
			} `json:"loadMetricsReport"`
		}
		if err := json.Unmarshal(raw, &cs); err != nil {
			t.Fatal(err)
		}
		if got := cs.LoadMetricsReport.Usage["CPU"]; got != [2]float64{0, 1} || cs.LoadMetricsReport.Usage["GPU"] != [2]float64{0, 1} {
			t.Errorf("cluster status usage %v, want CPU [0 1] and GPU [0 1]", cs.LoadMetricsReport.Usage)
		}
	})
}
