package hollow_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
	"github.com/raydeploy/sdk/raydeploy"
)

const testImage = "raydeploy-hollow/ray:test"

// hollowCluster starts n hollow nodes and describes them as a raydeploy
// Cluster logging in as root with verified host keys.
func hollowCluster(t *testing.T, n int) (*hollow.Cluster, *raydeploy.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hc, err := hollow.Start(ctx, hollow.Options{Nodes: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Close() })
	dir := t.TempDir()
	key, known, err := hc.WriteSSHFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{
		Name:     "hollowtest",
		SSH:      raydeploy.SSHConfig{User: "root", KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key}},
		StateDir: filepath.Join(dir, "state"),
		Ray:      raydeploy.RayConfig{Image: testImage},
	}
	for i, hn := range hc.Nodes {
		node := raydeploy.Node{Name: hn.Name, Address: hn.Address, Port: hn.Port}
		if i == 0 {
			c.Head = node
		} else {
			c.Workers = append(c.Workers, node)
		}
	}
	return hc, c
}

// imageFile writes a small Ray image archive the hollow nodes load.
func imageFile(t *testing.T) (string, string) {
	t.Helper()
	b, id, err := hollow.ImageArchive(testImage, "2.40.0", "3.11.2", 4096)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ray.tar")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, id
}

func newDeployer(t *testing.T, c *raydeploy.Cluster, file string) *raydeploy.Deployer {
	t.Helper()
	d, err := raydeploy.New(c, raydeploy.Options{
		Approver: approval.NewAuto("hollow-test", true), NoMonitoring: true,
		Images: raydeploy.ImageSideLoad, ImageFile: file, ReadyTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// Validation's Ray job needs a Ray that runs Python: hollow nodes have none.
	if err := d.Checkpoints().Remove(raydeploy.CheckpointValidation); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDeployOnHollowNodes deploys Ray onto three hollow nodes (side-loaded
// image, head, workers, every node ALIVE in the dashboard), then re-runs:
// every checkpoint but the read-only check is satisfied and changes nothing.
func TestDeployOnHollowNodes(t *testing.T) {
	_, c := hollowCluster(t, 3)
	file, _ := imageFile(t)
	d := newDeployer(t, c, file)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	for _, cp := range rep.Checkpoints {
		if !cp.Status.Done() {
			t.Errorf("%s: %s", cp.Name, cp.Status)
		}
		if cp.Name == raydeploy.CheckpointRay {
			if cp.Status != checkpoint.StatusSucceeded || len(cp.Nodes) != 3 {
				t.Errorf("ray-deployment: %s on %d nodes, want succeeded on 3", cp.Status, len(cp.Nodes))
			}
			for _, nr := range cp.Nodes {
				if nr.Err != nil {
					t.Errorf("ray-deployment on %s: %v", nr.Node, nr.Err)
				}
			}
		}
	}
	rep, err = d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	for _, cp := range rep.Checkpoints {
		want := checkpoint.StatusSkippedSatisfied
		if cp.Name == raydeploy.CheckpointPrerequisites {
			want = checkpoint.StatusSucceeded
		}
		if cp.Status != want {
			t.Errorf("re-run %s: %s, want %s (plan: %s)", cp.Name, cp.Status, want, cp.Plan)
		}
	}
}

// TestHollowRefusesUnknownCommands: a command a hollow node does not
// simulate fails instead of pretending.
func TestHollowRefusesUnknownCommands(t *testing.T) {
	hc, _ := hollowCluster(t, 1)
	cl, err := ssh.Dial("tcp", hc.Nodes[0].SSHAddress(), hc.ClientConfig(hc.Nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stderr bytes.Buffer
	s.Stderr = &stderr
	err = s.Run("apt-get install -y ray")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 127 {
		t.Fatalf("unknown command: got %v, want exit status 127", err)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("command not understood")) {
		t.Errorf("stderr %q does not say the command is not understood", stderr.String())
	}
}

// TestHollowHostKeyVerified: a known_hosts file with another key refuses the
// node, as it would a real one.
func TestHollowHostKeyVerified(t *testing.T) {
	_, c := hollowCluster(t, 2)
	other, _ := hollowCluster(t, 2) // other host keys, same kind of addresses
	dir := t.TempDir()
	_, known, err := other.WriteSSHFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.SSH.KnownHostsFile = known
	file, _ := imageFile(t)
	d := newDeployer(t, c, file)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointPrerequisites}); err == nil {
		t.Fatal("deploy against nodes with unknown host keys succeeded")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPrerequisitesHeadUnreachable: a worker that cannot reach the head
// fails prerequisites-check saying so; the head itself passes.
func TestPrerequisitesHeadUnreachable(t *testing.T) {
	hc, c := hollowCluster(t, 2)
	hc.Nodes[0].Isolate(true)
	d := newDeployer(t, c, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointPrerequisites})
	if err == nil {
		t.Fatal("prerequisites-check passed with the head unreachable from the worker")
	}
	for _, nr := range rep.Checkpoints[0].Nodes {
		switch nr.Node {
		case hc.Nodes[0].Name:
			if nr.Err != nil {
				t.Errorf("head: %v", nr.Err)
			}
		default:
			if nr.Err == nil || !strings.Contains(nr.Err.Error(), "cannot reach the head "+hc.Nodes[0].Address) {
				t.Errorf("worker: got %v, want cannot reach the head", nr.Err)
			}
		}
	}
}

// TestImageRelayFallsBackToSideLoad: where the nodes cannot relay (hollow
// nodes run no OpenSSH client), ray-deployment with Options.ImageRelay
// still gets the image to every node, by direct side-load.
func TestImageRelayFallsBackToSideLoad(t *testing.T) {
	hc, c := hollowCluster(t, 3)
	file, _ := imageFile(t)
	d, err := raydeploy.New(c, raydeploy.Options{
		Approver: approval.NewAuto("hollow-test", true), NoMonitoring: true, ImageRelay: true,
		Images: raydeploy.ImageSideLoad, ImageFile: file, ReadyTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Checkpoints().Remove(raydeploy.CheckpointValidation); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{}); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	for _, n := range hc.Nodes {
		tried := false
		for _, cmd := range n.Commands() {
			tried = tried || strings.Contains(cmd, ".raydeploy-relay.")
		}
		if !tried {
			t.Errorf("%s: no relay was attempted", n.Name)
		}
	}
}
