package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/fanout"
	"github.com/raydeploy/sdk/internal/sshx"
)

// dockerInstallation installs and starts Docker Engine where it is missing,
// from the OS package manager, and lets the login user use it. Nodes that
// have a running Engine the user may use are not in the plan.
type dockerInstallation struct {
	d       *Deployer
	planned typedPlan[[]checkpoint.PlanItem]
}

func (c *dockerInstallation) Name() string { return CheckpointDocker }
func (c *dockerInstallation) Description() string {
	return "Install and start Docker Engine where it is missing"
}
func (c *dockerInstallation) NeedsApproval() bool { return true }
func (c *dockerInstallation) Destructive() bool   { return false }

// Risks are shown to the approver.
func (c *dockerInstallation) Risks() []string {
	return []string{
		"installs the docker.io package with apt-get and its dependencies (containerd, runc, iptables rules)",
		"adds the login user to group docker, which is root-equivalent on that node",
	}
}

// Plan actions.
const (
	actionInstallDocker = "install"
	actionStartDocker   = "start"
	actionDockerGroup   = "grant"
)

func (c *dockerInstallation) Plan(ctx context.Context) (checkpoint.Plan, error) {
	d := c.d
	p := checkpoint.Plan{Checkpoint: c.Name()}
	items, err := fanMap(ctx, d, d.cluster.Nodes(), fanout.Options{Concurrency: d.opts.Concurrency, Op: c.Name() + " plan"}, func(ctx context.Context, n Node) ([]checkpoint.PlanItem, error) {
		f, err := d.nodeFacts(ctx, n)
		if err != nil {
			return nil, err
		}
		var items []checkpoint.PlanItem
		if !f.Docker {
			if !f.debianLike() {
				return nil, fmt.Errorf("docker is missing and %s has no apt: install Docker Engine by hand", f.OS)
			}
			items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionInstallDocker, Detail: "apt-get install docker.io",
				Target: &approval.Target{Kind: approval.TargetPackage, Name: "docker.io"}})
		}
		if !f.DockerRunning {
			items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionStartDocker, Detail: "start and enable the Docker Engine",
				Target: &approval.Target{Kind: approval.TargetService, Name: "docker"}})
		}
		if !f.Root && !f.DockerAccess {
			items = append(items, checkpoint.PlanItem{Node: n.ID(), Action: actionDockerGroup, Detail: "add user " + f.User + " to group docker",
				Target: &approval.Target{Kind: approval.TargetGroup, Name: "docker"}})
		}
		return items, nil
	})
	for _, n := range d.cluster.Nodes() {
		p.Items = append(p.Items, items[n.ID()]...)
	}
	c.planned.keep(p, items)
	return p, err // on failure, the nodes planned so far are in p
}

const installDockerScript = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq docker.io >/dev/null`

const startDockerScript = `set -e
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl enable --now docker
else
	service docker start
fi`

func (c *dockerInstallation) Run(ctx context.Context, p checkpoint.Plan) ([]checkpoint.NodeResult, error) {
	d := c.d
	planned, err := c.planned.take(p)
	if err != nil {
		return nil, err
	}
	nodes := d.nodesIn(p)
	err = d.fanout(ctx, nodes, c.Name(), func(ctx context.Context, n Node) error {
		conn, err := d.conn.ssh(ctx, n)
		if err != nil {
			return err
		}
		regrouped := false
		for _, it := range planned[n.ID()] {
			var script string
			switch it.Target.Kind {
			case approval.TargetPackage:
				script = installDockerScript
			case approval.TargetService:
				script = startDockerScript
			case approval.TargetGroup:
				script = "usermod -aG " + sshx.Quote(it.Target.Name) + " " + sshx.Quote(n.User)
				regrouped = true
			default:
				return fmt.Errorf("plan item %s: unknown target kind %q", it.Action, it.Target.Kind)
			}
			if _, err := conn.Sudo(ctx, script); err != nil {
				return fmt.Errorf("%s: %w", it.Detail, err)
			}
		}
		if regrouped {
			// Group membership applies to new logins only.
			d.conn.reconnect(ctx, n)
		}
		return d.waitDocker(ctx, n, time.Minute)
	})
	for _, n := range nodes {
		_, _ = d.refreshFacts(ctx, n)
	}
	return results(nodes, err, func(n Node) string { return "Docker Engine running" }), nil
}

// waitDocker polls the node's Engine until it answers a ping.
func (d *Deployer) waitDocker(ctx context.Context, n Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		e, err := d.conn.docker(ctx, n)
		if err == nil {
			if _, err = e.Ping(ctx); err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker engine did not answer within %s: %w", timeout, errors.Join(last, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
