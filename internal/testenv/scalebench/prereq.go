package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
	"github.com/raydeploy/sdk/raydeploy"
)

// sdkPrereqCommands returns the commands prerequisites-check sends to the
// head and to a worker, recorded by two hollow nodes, with the hollow head's
// address in the worker's probe replaced by head.
func sdkPrereqCommands(ctx context.Context, head *testenv.Node) (headCmds, workerCmds []string, err error) {
	hc, err := hollow.Start(ctx, hollow.Options{Nodes: 2})
	if err != nil {
		return nil, nil, err
	}
	defer hc.Close()
	dir, err := os.MkdirTemp("", "raydeploy-scalebench-record-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	key, known, err := hc.WriteSSHFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	c := &raydeploy.Cluster{
		Name: "record", StateDir: filepath.Join(dir, "state"),
		SSH:     raydeploy.SSHConfig{User: "root", KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key}},
		Head:    raydeploy.Node{Name: "head", Address: hc.Nodes[0].Address, Port: hc.Nodes[0].Port},
		Workers: []raydeploy.Node{{Name: "worker", Address: hc.Nodes[1].Address, Port: hc.Nodes[1].Port}},
	}
	d, err := raydeploy.New(c, raydeploy.Options{NoMonitoring: true})
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointPrerequisites}); err != nil {
		return nil, nil, err
	}
	hollowHead := hc.Nodes[0].Address + "/" + strconv.Itoa(hc.Nodes[0].Port)
	realHead := head.Address + "/" + strconv.Itoa(head.Port)
	for _, cmd := range hc.Nodes[1].Commands() {
		workerCmds = append(workerCmds, strings.ReplaceAll(cmd, hollowHead, realHead))
	}
	return hc.Nodes[0].Commands(), workerCmds, nil
}

// prereqBench compares prerequisites-check run by the deploy-master program
// (a whole process: start, load the config, connect, check, write the
// ledger) with plain OpenSSH clients running the same commands on every node
// in parallel, on n testenv nodes.
func prereqBench(ctx context.Context, root string, n int) error {
	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Nodes: n, NoDockerd: true, Logf: logf, ReadyTimeout: 10 * time.Minute})
	if err != nil {
		return fmt.Errorf("%d testenv nodes: %w", n, err)
	}
	defer env.Close()
	logf("  %d testenv nodes up in %s", n, time.Since(start).Round(time.Second))
	dir, err := os.MkdirTemp("", "raydeploy-scalebench-prereq-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, known, cfg := filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts"), filepath.Join(dir, "cluster.yaml")
	var y strings.Builder
	fmt.Fprintf(&y, "cluster_name: prereq\nstate_dir: %s\nssh:\n  user: root\n  key_file: %s\n  known_hosts: %s\n", filepath.Join(dir, "state"), key, known)
	for i, nd := range env.Nodes {
		if i == 0 {
			fmt.Fprintf(&y, "head:\n  name: %s\n  address: %s\n  port: %d\nworkers:\n", nd.Name, nd.Address, nd.Port)
		} else {
			fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    port: %d\n", nd.Name, nd.Address, nd.Port)
		}
	}
	for p, b := range map[string][]byte{key: env.ClientKeyPEM, known: env.KnownHosts(), cfg: []byte(y.String())} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	bin := filepath.Join(dir, "deploy-master")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/deploy-master")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build deploy-master: %w", err)
	}
	headCmds, workerCmds, err := sdkPrereqCommands(ctx, env.Nodes[0])
	if err != nil {
		return fmt.Errorf("record the SDK's commands: %w", err)
	}

	sdk := func() error {
		cmd := exec.CommandContext(ctx, bin, "--config", cfg, "--checkpoint", raydeploy.CheckpointPrerequisites)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("deploy-master: %w: %s", err, tailText(out))
		}
		return nil
	}
	openssh := func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(env.Nodes))
		for i, nd := range env.Nodes {
			cmds := workerCmds
			if i == 0 {
				cmds = headCmds
			}
			wg.Go(func() {
				for _, c := range cmds {
					out, err := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-i", key,
						"-o", "UserKnownHostsFile="+known, "-o", "GlobalKnownHostsFile=/dev/null",
						"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
						"-p", strconv.Itoa(nd.Port), "root@"+nd.Address, c).CombinedOutput()
					if err != nil {
						errs[i] = fmt.Errorf("ssh %s: %w: %s", nd.Name, err, tailText(out))
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	sessions := len(headCmds) + (n-1)*len(workerCmds)
	const runs = 5
	tSDK, err := medianOf(runs, sdk)
	if err != nil {
		return err
	}
	tSSH, err := medianOf(runs, openssh)
	if err != nil {
		return err
	}
	fmt.Printf("  %3d nodes: deploy-master --checkpoint prerequisites-check %6.3fs, OpenSSH (one cold ssh per command, all nodes in parallel) %6.3fs: ratio %.2f; SDK sessions per node: head %d, worker %d (%d in all)\n",
		n, tSDK.Seconds(), tSSH.Seconds(), tSDK.Seconds()/tSSH.Seconds(), len(headCmds), len(workerCmds), sessions)
	return nil
}

// medianOf runs f runs times, alternating nothing else, and returns the
// median wall time.
func medianOf(runs int, f func() error) (time.Duration, error) {
	var ts []time.Duration
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(start))
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

func tailText(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
