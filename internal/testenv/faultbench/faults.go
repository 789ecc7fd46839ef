package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ory/dockertest/v3/docker"
	"golang.org/x/sys/unix"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
)

// fault is a node or state fault injected while a deploy runs.
type fault struct {
	// Name is the fault's row in the table.
	Name string
	// What says what is done, in the table's words.
	What string
	// Trigger is the progress line after which the fault is injected.
	Trigger string
	// Inject breaks something; Repair puts it right before the next run.
	Inject, Repair func(ctx context.Context, b *Bench, victim *testenv.Node) error
	// Names are what the failed run's error must say besides the node's name
	// (any one of them).
	Names []string
	// MayConverge: the faulted run may also succeed (it rides out the fault).
	MayConverge bool
	// StateFault: the error names the state file, not a node.
	StateFault bool
	// Before, if set, runs before the deploy starts (a mount for the state).
	Before, After func(ctx context.Context, b *Bench) error
	// Timeouts, if set, are the ssh.timeouts of the faulted run: the run
	// must end within their DeadNodeBound.
	Timeouts *raydeploy.SSHTimeouts
}

// shortTimeouts are the ssh.timeouts the frozen and cut-off node faults
// run with: a bound of 2s + 2s + 6s + 3s = 13s instead of the defaults' 70s.
var shortTimeouts = raydeploy.SSHTimeouts{
	KeepaliveInterval: raydeploy.Duration(2 * time.Second),
	KeepaliveTimeout:  raydeploy.Duration(2 * time.Second),
	Connect:           raydeploy.Duration(3 * time.Second),
	ConnectTotal:      raydeploy.Duration(6 * time.Second),
}

// faultOutcome is what one fault gave.
type faultOutcome struct {
	Fault      string
	Node       string
	Checkpoint string        // the checkpoint under way at the injection
	Run        result        // the faulted run
	Ended      time.Duration // from the injection to the end of the faulted run
	// Timeouts are the faulted run's ssh.timeouts when the fault sets them;
	// Bound is their DeadNodeBound (0: the defaults, no bound checked).
	Timeouts *raydeploy.SSHTimeouts
	Bound    time.Duration
	Named    bool // the error names the node (or state file) and what happened
	// Second is an extra run before the repair, where the fault persists
	// (host key: the refusal).
	Second *result
	// Failed are the nodes the ledger records as failed in the checkpoint
	// under way after the faulted run: the victim alone, or nothing else
	// was touched.
	Failed    []string
	Rerun     result
	Verdict   verdict
	Converged bool
}

// faults are the node and state faults, in table order.
func faults() []fault {
	rayStart := "▶ " + raydeploy.CheckpointRay
	return []fault{
		{Name: "node killed", What: "docker kill of the node container (power loss)", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error { return n.Stop(ctx) },
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error { return n.Start(ctx) },
			Names:  []string{"lost the SSH connection", "ssh connection closed", "connect: ssh"}},
		{Name: "node frozen", What: "docker pause of the node container", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				return b.env.Pool().Client.PauseContainer(n.ContainerID)
			},
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				return b.env.Pool().Client.UnpauseContainer(n.ContainerID)
			},
			Timeouts: &shortTimeouts,
			Names:    []string{"lost the SSH connection", "ssh connection closed", "connect: ssh"}},
		{Name: "network cut", What: "docker network disconnect of the node", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				return b.env.Pool().Client.DisconnectNetwork(b.env.Name, docker.NetworkConnectionOptions{Container: n.ContainerID, Force: true, Context: ctx})
			},
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				return b.env.Pool().Client.ConnectNetwork(b.env.Name, docker.NetworkConnectionOptions{Container: n.ContainerID, Context: ctx,
					EndpointConfig: &docker.EndpointConfig{IPAMConfig: &docker.EndpointIPAMConfig{IPv4Address: n.Address}, Aliases: []string{n.Name}}})
			},
			Timeouts: &shortTimeouts,
			Names:    []string{"lost the SSH connection", "ssh connection closed", "connect: ssh"}},
		{Name: "dockerd killed", What: "kill -9 of the node's dockerd", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				_, err := b.exec(ctx, n, "pkill -KILL -x dockerd")
				return err
			},
			Repair: restartDockerd,
			Names:  []string{"Docker Engine does not answer"}},
		{Name: "sshd restarted", What: "sshd re-executed (SIGHUP) and every SSH session killed", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				_, err := b.exec(ctx, n, killSessions)
				return err
			},
			Repair:      func(ctx context.Context, b *Bench, n *testenv.Node) error { return waitSSH(ctx, n) },
			Names:       []string{"lost the SSH connection", "ssh connection closed"},
			MayConverge: true},
		{Name: "host key changed", What: "the node's sshd gets a new host key and drops its sessions", Trigger: rayStart,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				_, err := b.exec(ctx, n, "cp -p /etc/ssh/ssh_host_ed25519_key /root/hostkey.orig && rm -f /etc/ssh/ssh_host_ed25519_key* && "+
					"ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && "+killSessions)
				return err
			},
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				if _, err := b.exec(ctx, n, "cp -p /root/hostkey.orig /etc/ssh/ssh_host_ed25519_key && "+killSessions); err != nil {
					return err
				}
				return waitSSH(ctx, n)
			},
			Names: []string{"host key for", "lost the SSH connection", "ssh connection closed"}},
		{Name: "state dir full", What: "the state directory (a 2 MiB tmpfs) filled up", Trigger: rayStart, StateFault: true,
			Before: func(ctx context.Context, b *Bench) error { return b.mountState(ctx, "size=2m") },
			After:  func(ctx context.Context, b *Bench) error { return b.unmountState(ctx) },
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				// Fill it: dd stops at ENOSPC, which is the point.
				_ = exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+filepath.Join(b.stateDir, "filler"), "bs=64k").Run()
				return nil
			},
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				return os.Remove(filepath.Join(b.stateDir, "filler"))
			},
			Names: []string{"no space left"}},
		{Name: "state dir read-only", What: "a read-only bind mount put over the state directory", Trigger: rayStart, StateFault: true,
			Inject: func(ctx context.Context, b *Bench, n *testenv.Node) error {
				// Files the deployer holds open stay writable; every new
				// file (the ledger's next version, the failure record) is
				// refused.
				return readOnlyBind(b.stateDir)
			},
			Repair: func(ctx context.Context, b *Bench, n *testenv.Node) error { return command(ctx, "umount", b.stateDir) },
			Names:  []string{"read-only file system"}},
	}
}

// killSessions re-executes sshd (PID 1 of a node, which keeps listening)
// and kills every session's sshd: every SSH connection to the node drops.
const killSessions = "kill -HUP 1 && sleep 0.2; pkill -KILL -x sshd-session; pkill -KILL -f '^sshd: '; true"

// restartDockerd starts the node's dockerd again, as its init does, and
// waits until it answers.
func restartDockerd(ctx context.Context, b *Bench, n *testenv.Node) error {
	if _, err := b.exec(ctx, n, "pkill -KILL -x containerd; rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid; "+
		"setsid dockerd --host=unix:///var/run/docker.sock --storage-driver=\"${TESTENV_STORAGE_DRIVER:-overlay2}\" >>/var/log/dockerd.log 2>&1 </dev/null & true"); err != nil {
		return err
	}
	return poll(ctx, func() error {
		out, err := n.Run(ctx, "root", "curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://docker/_ping")
		if err == nil && strings.TrimSpace(out) != "OK" {
			err = fmt.Errorf("_ping: %q", out)
		}
		return err
	})
}

// waitSSH polls until the node's sshd answers a command.
func waitSSH(ctx context.Context, n *testenv.Node) error {
	return poll(ctx, func() error {
		_, err := n.Run(ctx, "root", "true")
		return err
	})
}

// poll calls f until it succeeds or ctx ends.
func poll(ctx context.Context, f func() error) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// exec runs a shell command in the node's container from the test
// machine's Engine (not over SSH: the fault may be what SSH breaks).
func (b *Bench) exec(ctx context.Context, n *testenv.Node, cmd string) (string, error) {
	c := b.env.Pool().Client
	ex, err := c.CreateExec(docker.CreateExecOptions{Container: n.ContainerID, Cmd: []string{"sh", "-c", cmd},
		AttachStdout: true, AttachStderr: true, Context: ctx})
	if err != nil {
		return "", fmt.Errorf("exec on %s: %w", n.Name, err)
	}
	var out testenv.SyncBuffer
	if err := c.StartExec(ex.ID, docker.StartExecOptions{OutputStream: &out, ErrorStream: &out, Context: ctx}); err != nil {
		return out.String(), fmt.Errorf("exec on %s: %w", n.Name, err)
	}
	in, err := c.InspectExec(ex.ID)
	if err != nil {
		return out.String(), err
	}
	if in.ExitCode != 0 {
		return out.String(), fmt.Errorf("exec on %s: %q: exit %d: %s", n.Name, cmd, in.ExitCode, out.String())
	}
	return out.String(), nil
}

func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// readOnlyBind puts a read-only bind mount of dir over dir in one step:
// the clone is made read-only before it is attached (open_tree,
// mount_setattr, move_mount). "mount --bind" then "mount -o remount,ro"
// fails with EBUSY whenever the deployer opens a file for writing through
// the new mount between the two commands, which it does several times a
// second.
func readOnlyBind(dir string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("mount_setattr %s read-only: %w", dir, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", dir, err)
	}
	return nil
}

// mountState puts the (emptied) state directory on a tmpfs of its own.
func (b *Bench) mountState(ctx context.Context, size string) error {
	if err := os.RemoveAll(b.stateDir); err != nil {
		return err
	}
	if err := os.Mkdir(b.stateDir, 0o700); err != nil {
		return err
	}
	return command(ctx, "mount", "-t", "tmpfs", "-o", size+",mode=0700", "faultbench-state", b.stateDir)
}

// unmountState takes the state's tmpfs away again (its contents with it).
func (b *Bench) unmountState(ctx context.Context) error {
	if err := command(ctx, "umount", b.stateDir); err != nil {
		return err
	}
	return os.MkdirAll(b.stateDir, 0o700)
}

// inject runs fault f on victim: a deploy from scratch, the fault after its
// trigger line, the run's end (no deadline but ctx: a hang shows as the
// context's error), an extra run for faults that persist, the repair, and
// a re-run that must converge.
func (b *Bench) inject(ctx context.Context, f fault, victim *testenv.Node) (o faultOutcome, err error) {
	o = faultOutcome{Fault: f.Name, Node: victim.Name}
	if err := b.reset(ctx); err != nil {
		return o, err
	}
	if f.Before != nil {
		if err := f.Before(ctx, b); err != nil {
			return o, err
		}
		defer func() {
			if aerr := f.After(context.WithoutCancel(ctx), b); aerr != nil && err == nil {
				err = aerr
			}
		}()
	}
	config := b.config
	if f.Timeouts != nil {
		o.Timeouts, o.Bound = f.Timeouts, f.Timeouts.DeadNodeBound()
		if config, err = b.configWithTimeouts(*f.Timeouts); err != nil {
			return o, err
		}
	}
	p, err := b.startWith(ctx, config, "--deploy", "--auto-approve")
	if err != nil {
		return o, err
	}
	hit, err := p.waitLine(ctx, func(_ int, line string) bool {
		if cp, ok := strings.CutPrefix(line, "▶ "); ok {
			o.Checkpoint = cp
		}
		return line == f.Trigger
	})
	if err != nil || !hit {
		_ = p.kill()
		r := p.wait()
		return o, errors.Join(err, fmt.Errorf("%s: the deploy ended before %q: exit %d: %s", f.Name, f.Trigger, r.Code, r.errorText()))
	}
	injected := time.Now()
	if err := f.Inject(ctx, b, victim); err != nil {
		_ = p.kill()
		p.wait()
		return o, fmt.Errorf("%s: inject: %w", f.Name, err)
	}
	o.Run = p.wait()
	o.Ended = time.Since(injected)
	if ctx.Err() != nil {
		return o, fmt.Errorf("%s: the faulted run did not end: %w", f.Name, ctx.Err())
	}
	o.Named = named(o.Run, f, victim)
	o.Failed = b.failedNodes(o.Checkpoint)
	if f.Name == "host key changed" {
		// The fault persists: a new run must refuse the node as a mismatch,
		// naming both fingerprints.
		r, err := b.run(ctx, "--deploy", "--resume", "--auto-approve")
		if err != nil {
			return o, err
		}
		o.Second = &r
	}
	if err := f.Repair(ctx, b, victim); err != nil {
		return o, fmt.Errorf("%s: repair: %w", f.Name, err)
	}
	r, v, err := b.converge(ctx, b.auditRecords())
	if err != nil {
		return o, err
	}
	o.Rerun, o.Verdict = r, v
	o.Converged = r.Code == 0 && v.ok()
	return o, nil
}

// named reports whether a failed run's error names the node (or, for a
// state fault, the state directory) and one of the fault's words.
func named(r result, f fault, victim *testenv.Node) bool {
	if r.Code == 0 {
		return f.MayConverge
	}
	text := r.errorText()
	who := victim.Name
	if f.StateFault {
		who = "state"
	}
	if !strings.Contains(text, who) {
		return false
	}
	for _, w := range f.Names {
		if strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// twoDeployers starts a second deploy-master while the first holds the
// lock: the second must be refused with the lock error, the first must
// converge.
func (b *Bench) twoDeployers(ctx context.Context) (faultOutcome, error) {
	o := faultOutcome{Fault: "two deployers", Node: "-"}
	if err := b.reset(ctx); err != nil {
		return o, err
	}
	first, err := b.start(ctx, "--deploy", "--auto-approve")
	if err != nil {
		return o, err
	}
	if _, err := first.waitLine(ctx, func(int, string) bool { return true }); err != nil {
		_ = first.kill()
		first.wait()
		return o, err
	}
	o.Checkpoint = raydeploy.CheckpointPrerequisites
	started := time.Now()
	second, err := b.run(ctx, "--deploy", "--auto-approve")
	if err != nil {
		_ = first.kill()
		first.wait()
		return o, err
	}
	o.Run, o.Ended = second, time.Since(started)
	o.Named = second.Code != 0 && strings.Contains(second.Stderr, "locked by") && strings.Contains(second.Stderr, "pid "+itoa(first.cmd.Process.Pid))
	o.Rerun = first.wait()
	v, err := b.verify(ctx, 0)
	if err != nil {
		return o, err
	}
	o.Verdict = v
	o.Converged = o.Rerun.Code == 0 && v.ok()
	return o, nil
}

// failedNodes lists the nodes the ledger records as failed in checkpoint cp.
func (b *Bench) failedNodes(cp string) []string {
	st, err := checkpoint.OpenStore(b.stateDir)
	if err != nil {
		return []string{"(ledger: " + err.Error() + ")"}
	}
	l, err := st.Load()
	if err != nil {
		return []string{"(ledger: " + err.Error() + ")"}
	}
	var out []string
	if rec := l.Checkpoints[cp]; rec != nil {
		for _, n := range b.env.Nodes {
			if nr := rec.Nodes[n.Name]; nr != nil && nr.Status == checkpoint.StatusFailed {
				out = append(out, n.Name)
			}
		}
	}
	return out
}
