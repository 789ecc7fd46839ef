package hollow_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
	"github.com/raydeploy/sdk/raydeploy"
)

// seed puts a node into the state both kinds of node are compared in: the
// Ray image of an earlier install loaded, a container of the launcher's name
// ray_container left behind (created, never started) and Ray's temp dir.
func seed(t *testing.T, ctx context.Context, cl *ssh.Client, archive []byte) {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput("mkdir -p /tmp/ray")
	s.Close()
	if err != nil {
		t.Fatalf("mkdir: %v: %s", err, out)
	}
	dc, err := client.NewClientWithOpts(client.WithHost("unix:///var/run/docker.sock"),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return cl.DialContext(ctx, "unix", "/var/run/docker.sock")
		}), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	resp, err := dc.ImageLoad(ctx, bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	loadOut, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(loadOut, []byte("Loaded image")) {
		t.Fatalf("image load: %s", loadOut)
	}
	if _, err := dc.ContainerCreate(ctx, &container.Config{Image: "rayproject/ray:2.40.0", Cmd: []string{"/bin/sh"}},
		&container.HostConfig{}, nil, nil, "ray_container"); err != nil {
		t.Fatal(err)
	}
}

var (
	containerIDs = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	freeOnRoot   = regexp.MustCompile(`[0-9.]+ [KMGT]iB free on /`)
)

// planText is what Plan shows, with what differs between any two machines
// (container IDs) masked.
func planText(t *testing.T, ctx context.Context, d *raydeploy.Deployer) string {
	t.Helper()
	plans, err := d.Plan(ctx, checkpoint.RunOptions{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var b strings.Builder
	for _, p := range plans {
		b.WriteString(p.String())
	}
	return containerIDs.ReplaceAllString(b.String(), "<id>")
}

// prereqSummaries runs prerequisites-check and returns its per-node
// summaries and errors, free disk space masked.
func prereqSummaries(t *testing.T, ctx context.Context, d *raydeploy.Deployer) string {
	t.Helper()
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointPrerequisites})
	if err != nil {
		t.Fatalf("prerequisites-check: %v", err)
	}
	var b strings.Builder
	for _, cp := range rep.Checkpoints {
		for _, nr := range cp.Nodes {
			b.WriteString(nr.Node + ": " + freeOnRoot.ReplaceAllString(nr.Summary, "<n> free on /"))
			if nr.Err != nil {
				b.WriteString(" ERROR " + nr.Err.Error())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// TestPlanMatchesRealNodes: the SDK plans the same for two hollow nodes as
// for two real testenv nodes (sshd + dockerd) in the same state, and its
// prerequisites check reports the same.
func TestPlanMatchesRealNodes(t *testing.T) {
	archive, _, err := hollow.ImageArchive("rayproject/ray:2.40.0", "2.40.0", "3.11.2", 1024)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Real nodes.
	env := testenv.NewCluster(t, 2)
	for _, n := range env.Nodes {
		cl, err := n.Dial(ctx, "root")
		if err != nil {
			t.Fatal(err)
		}
		seed(t, ctx, cl, archive)
		cl.Close()
	}
	dir := t.TempDir()
	key, known := filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts")
	writeFile(t, key, env.ClientKeyPEM)
	writeFile(t, known, env.KnownHosts())
	real := &raydeploy.Cluster{
		Name:     "hollowtest",
		SSH:      raydeploy.SSHConfig{User: "root", KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key}},
		StateDir: filepath.Join(dir, "state"),
		Ray:      raydeploy.RayConfig{Image: testImage},
	}
	names := []string{"head", "worker"}
	for i, n := range env.Nodes {
		node := raydeploy.Node{Name: names[i], Address: n.Address, Port: n.Port}
		if i == 0 {
			real.Head = node
		} else {
			real.Workers = append(real.Workers, node)
		}
	}
	// The hollow nodes get the real nodes' OS, CPUs and memory.
	facts := hollow.DefaultFacts()
	out, err := env.Nodes[0].Run(ctx, "root", `. /etc/os-release; echo "$PRETTY_NAME"; echo "$ID"; nproc; awk '/^MemTotal:/{print $2} /^MemAvailable:/{print $2}' /proc/meminfo`)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(out), "\n")
	if len(f) != 5 {
		t.Fatalf("node facts: %q", out)
	}
	facts.OS, facts.OSID = f[0], f[1]
	facts.CPUs, _ = strconv.Atoi(f[2])
	facts.MemTotalKB, _ = strconv.ParseInt(f[3], 10, 64)
	facts.MemAvailableKB, _ = strconv.ParseInt(f[4], 10, 64)

	hc, err := hollow.Start(ctx, hollow.Options{Nodes: 2, Facts: facts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Close() })
	for _, n := range hc.Nodes {
		cl, err := ssh.Dial("tcp", n.SSHAddress(), hc.ClientConfig(n))
		if err != nil {
			t.Fatal(err)
		}
		seed(t, ctx, cl, archive)
		cl.Close()
	}
	hdir := t.TempDir()
	hkey, hknown, err := hc.WriteSSHFiles(hdir)
	if err != nil {
		t.Fatal(err)
	}
	hol := *real
	hol.SSH.KnownHostsFile, hol.SSH.Auth.KeyFile, hol.StateDir = hknown, hkey, filepath.Join(hdir, "state")
	hol.Head = raydeploy.Node{Name: names[0], Address: hc.Nodes[0].Address, Port: hc.Nodes[0].Port}
	hol.Workers = []raydeploy.Node{{Name: names[1], Address: hc.Nodes[1].Address, Port: hc.Nodes[1].Port}}

	newD := func(c *raydeploy.Cluster) *raydeploy.Deployer {
		d, err := raydeploy.New(c, raydeploy.Options{NoMonitoring: true, ReadyTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	realD, holD := newD(real), newD(&hol)
	realPlan, holPlan := planText(t, ctx, realD), planText(t, ctx, holD)
	t.Logf("plan against the real nodes:\n%s", realPlan)
	if realPlan != holPlan {
		t.Errorf("plans differ\nreal nodes:\n%s\nhollow nodes:\n%s", realPlan, holPlan)
	}
	if !strings.Contains(realPlan, "ray_container <id>") {
		t.Errorf("the plan does not list the leftover ray_container:\n%s", realPlan)
	}
	realSum, holSum := prereqSummaries(t, ctx, realD), prereqSummaries(t, ctx, holD)
	t.Logf("prerequisites on the real nodes:\n%s", realSum)
	if realSum != holSum {
		t.Errorf("prerequisites differ\nreal nodes:\n%s\nhollow nodes:\n%s", realSum, holSum)
	}
}
