package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

func TestParseStart(t *testing.T) {
	head, err := parseStart([]string{"--head", "--port=6379", "--dashboard-host=0.0.0.0", "--dashboard-port", "8265",
		"--metrics-export-port=8080", "--node-ip-address=10.0.0.1", "--num-cpus=4", "--num-gpus=1",
		`--resources={"x": 1}`, "--min-worker-port=10002", "--max-worker-port=19999",
		"--disable-usage-stats", "--dashboard-agent-listen-port=52365", "--block"})
	if err != nil {
		t.Fatal(err)
	}
	if !head.Head || head.Port != 6379 || head.DashboardHost != "0.0.0.0" || head.DashboardPort != 8265 ||
		head.MetricsExportPort != 8080 || head.NodeIP != "10.0.0.1" || head.NumCPUs != 4 || !head.NumCPUsSet ||
		head.NumGPUs != 1 || head.Resources["x"] != 1 || !head.Block || head.TempDir != "/tmp/ray" {
		t.Errorf("head options = %+v", head)
	}
	worker, err := parseStart([]string{"--address=10.0.0.1:6379", "--node-ip-address=10.0.0.2", "--num-cpus=2", "--metrics-export-port=8080", "--block"})
	if err != nil {
		t.Fatal(err)
	}
	if worker.Head || worker.Address != "10.0.0.1:6379" || worker.DashboardAgentListenPort != 52365 || worker.MinWorkerPort != 10002 {
		t.Errorf("worker options = %+v (want Ray's defaults where not given)", worker)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--head", "--block", "--foo=1"}, "No such option: --foo"},
		{[]string{"--head"}, "--block"},
		{[]string{"--block", "--node-ip-address=10.0.0.2"}, "needs --address"},
		{[]string{"--head", "--address=1.2.3.4:6379", "--block"}, "not allowed with --head"},
		{[]string{"--head", "--block", `--resources={"CPU": 2}`}, "--num-cpus"},
		{[]string{"--head", "--block", "--resources=x"}, "JSON object"},
		{[]string{"--head", "--block", "--port=70000"}, "not a valid port"},
		{[]string{"--head", "--block", "--num-cpus=two"}, "not a valid integer"},
		{[]string{"--head", "--block", "--node-ip-address=host"}, "not an IP address"},
		{[]string{"--head", "--block", "--min-worker-port=20000", "--max-worker-port=10000"}, "must not be greater"},
		{[]string{"--head", "--block=true"}, "does not take a value"},
		{[]string{"--head", "--block", "--port"}, "requires an argument"},
	} {
		_, err := parseStart(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseStart(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		env      string
		args     []string
		code     int
		out, err string
	}{
		{args: []string{"--version"}, out: "ray, version 2.58.0\n"},
		{env: "RAY_STANDIN_VERSION=2.57.0", args: []string{"--version"}, out: "ray, version 2.57.0\n"},
		{args: []string{"start", "--head"}, code: 2, err: "Error: this Ray stand-in only runs with --block"},
		{args: []string{"start", "--head", "--block", "--bogus"}, code: 2, err: "Error: No such option: --bogus"},
		{args: []string{"launch"}, code: 2, err: "Error: No such command 'launch'."},
		{args: []string{"stop", "--nope"}, code: 2, err: "Error: No such option: --nope"},
	} {
		cmd := exec.Command(rayBin, tc.args...)
		if tc.env != "" {
			cmd.Env = append(cmd.Environ(), tc.env)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || (tc.out != "" && stdout.String() != tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("ray %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.err)
		}
	}
}

// TestWorkerWaitsForHead starts a worker before its head: the worker keeps
// retrying and joins once the head is up.
func TestWorkerWaitsForHead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, w := newNodeAddr(t, "127.0.0.1"), newNodeAddr(t, "127.0.0.2")
	gcsPort, dashPort := freePort(t, h.ip), freePort(t, h.ip)
	worker := startRay(t, "worker", nil, "start", "--address="+net.JoinHostPort(h.ip, strconv.Itoa(gcsPort)),
		"--node-ip-address="+w.ip, "--num-cpus=1", "--metrics-export-port="+strconv.Itoa(w.metricsPort),
		"--dashboard-agent-listen-port="+strconv.Itoa(w.agentPort), "--block")
	eventually(t, 10*time.Second, "worker retrying", func() error {
		if !strings.Contains(worker.out.String(), "waiting for the head") {
			return fmt.Errorf("no retry logged yet")
		}
		return nil
	})
	startRay(t, "head", nil, headArgs(t, h, gcsPort, dashPort, 1)...)
	c, _ := raydash.New(raydash.Config{BaseURL: fmt.Sprintf("http://%s:%d", h.ip, dashPort)})
	eventually(t, 30*time.Second, "worker joined", func() error {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 2 || !nodes[1].Alive() || nodes[1].IP != w.ip {
			return fmt.Errorf("nodes %+v", nodes)
		}
		return nil
	})
}
