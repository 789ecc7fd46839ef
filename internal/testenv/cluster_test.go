package testenv

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/dockertest/v3/docker"
	"golang.org/x/crypto/ssh"
)

func TestClusterOfThree(t *testing.T) {
	c := NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if len(c.Nodes) != 3 {
		t.Fatalf("got %d nodes, want 3", len(c.Nodes))
	}
	for _, n := range c.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			// The recorded host key is the one the node presents.
			out, err := n.Run(ctx, DeployUser, "id -un; hostname")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Fields(out); len(got) != 2 || got[0] != DeployUser || got[1] != n.Name {
				t.Errorf("id/hostname = %q, want %s %s", out, DeployUser, n.Name)
			}

			// Another key for the same address is refused by verification.
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			otherSigner, _ := ssh.NewSignerFromKey(other)
			cfg := n.SSHClientConfig("root")
			cfg.HostKeyCallback = ssh.FixedHostKey(otherSigner.PublicKey())
			if cl, err := ssh.Dial("tcp", n.SSHAddress(), cfg); err == nil {
				cl.Close()
				t.Error("handshake with a wrong expected host key succeeded")
			}

			// The node's own dockerd answers, through the deploy user (group docker).
			ver, err := n.Run(ctx, DeployUser, "docker version --format '{{.Server.Version}}'")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(ver) == "" {
				t.Error("docker version printed nothing")
			}
			// It stores layers the way a real node does: overlay2, no full
			// copy per layer.
			want := os.Getenv(StorageDriverEnv)
			if want == "" {
				want = "overlay2"
			}
			if drv, err := n.Run(ctx, "root", "docker info --format '{{.Driver}}'"); err != nil || strings.TrimSpace(drv) != want {
				t.Errorf("storage driver = %q, %v; want %s", drv, err, want)
			}

			// sudo takes the deploy password on stdin.
			who, err := n.Run(ctx, DeployUser, fmt.Sprintf("echo %s | sudo -S -p '' id -u", n.DeployPassword))
			if err != nil || strings.TrimSpace(who) != "0" {
				t.Errorf("sudo id -u = %q, %v; want 0", who, err)
			}

			// Every other node's sshd is reachable from this node by address.
			for _, peer := range c.Nodes {
				if peer == n {
					continue
				}
				probe := fmt.Sprintf(`python3 -c 'import socket; s=socket.create_connection(("%s", 22), 3); print(s.recv(7).decode())'`, peer.Address)
				out, err := n.Run(ctx, "root", probe)
				if err != nil || !strings.HasPrefix(out, "SSH-2.0") {
					t.Errorf("%s -> %s:22: %q, %v", n.Name, peer.Address, out, err)
				}
			}
		})
	}

	// Close leaves nothing labelled behind, and no volume of a node.
	var volumes []string
	for _, n := range c.Nodes {
		ct, err := c.Pool().Client.InspectContainer(n.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ct.Mounts {
			if m.Destination == "/var/lib/docker" && m.Name != "" {
				volumes = append(volumes, m.Name)
			}
		}
	}
	if len(volumes) != len(c.Nodes) {
		t.Errorf("nodes have volumes %v, want one each for /var/lib/docker", volumes)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ctrs, nets, err := c.ListLabelled()
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 || len(nets) != 0 {
		t.Errorf("after Close: %d containers, %d networks still labelled %s", len(ctrs), len(nets), c.Name)
	}
	for _, v := range volumes {
		if _, err := c.Pool().Client.InspectVolume(v); err == nil {
			t.Errorf("after Close: volume %s still exists", v)
		}
	}
}

func TestNodeRestartKeepsAddressAndKey(t *testing.T) {
	c := NewCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := c.Nodes[0]
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "root", "true"); err == nil {
		t.Fatal("a stopped node still answers SSH")
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "root", "docker info --format '{{.Driver}}'"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestSweepRemovesWhatDeadProcessesLeft(t *testing.T) {
	pool := RequireDocker(t)
	host, _ := os.Hostname()
	name := "rdtest-sweep-" + randomHex(3)
	// A pid that cannot be alive: above the kernel's pid_max.
	nw, err := pool.Client.CreateNetwork(docker.CreateNetworkOptions{
		Name:   name,
		Labels: map[string]string{LabelTestenv: name, LabelPID: strconv.Itoa(1 << 30), LabelHost: host},
	})
	if err != nil {
		t.Fatal(err)
	}
	live, err := pool.Client.CreateNetwork(docker.CreateNetworkOptions{
		Name:   name + "-live",
		Labels: map[string]string{LabelTestenv: name + "-live", LabelPID: strconv.Itoa(os.Getpid()), LabelHost: host},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Client.RemoveNetwork(live.ID) })

	Sweep(pool)

	if _, err := pool.Client.NetworkInfo(nw.ID); err == nil {
		_ = pool.Client.RemoveNetwork(nw.ID)
		t.Error("the dead process's network survived the sweep")
	}
	if _, err := pool.Client.NetworkInfo(live.ID); err != nil {
		var nf *docker.NoSuchNetwork
		if errors.As(err, &nf) {
			t.Error("the sweep removed a live process's network")
		}
	}
}

func TestAptSourcesFiltersBySuite(t *testing.T) {
	deb822 := []byte(`Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://vendor.example/apt
Suites: nodistro
Components: main
`)
	var b strings.Builder
	var buf = new(bytesBuffer)
	writeDeb822(&buf.Buffer, deb822, "bookworm")
	b.WriteString(buf.String())
	got := b.String()
	if !strings.Contains(got, "Suites: bookworm bookworm-updates\n") || strings.Contains(got, "trixie") || strings.Contains(got, "vendor.example") {
		t.Errorf("deb822 filter:\n%s", got)
	}

	buf.Reset()
	writeOneLine(&buf.Buffer, []byte("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm-security main contrib\ndeb http://x.example/ stable main\n# deb http://y/ bookworm main\n"), "bookworm")
	want := "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm-security\nComponents: main contrib\nSigned-By: /k.gpg\n\n"
	if buf.String() != want {
		t.Errorf("one-line filter = %q, want %q", buf.String(), want)
	}
}

func TestRecipeTagChangesWithInputs(t *testing.T) {
	a := ImageRecipe{Name: "x", Packages: []string{"b", "a"}}
	b := ImageRecipe{Name: "x", Packages: []string{"a", "b"}}
	if a.Tag("bookworm") != b.Tag("bookworm") {
		t.Error("package order changed the tag")
	}
	c := ImageRecipe{Name: "x", Packages: []string{"a", "b"}, Files: []ImageFile{{Path: "/f", Mode: 0o644, Data: []byte("1")}}}
	if c.Tag("bookworm") == b.Tag("bookworm") || a.Tag("trixie") == a.Tag("bookworm") {
		t.Error("a changed input kept the tag")
	}
}

// BenchmarkStartCluster3 measures starting a 3-node cluster with the node image
// cached (the cold figure is the image build, logged by DebianImage).
func BenchmarkStartCluster3(b *testing.B) {
	pool := RequireDocker(b)
	ctx := context.Background()
	if _, err := NodeImage(ctx, pool, b.Logf); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		c, err := start(ctx, pool, Options{Nodes: 3}, nil)
		if err != nil {
			if c != nil {
				_ = c.Close()
			}
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

type bytesBuffer struct{ bytes.Buffer }

// A container started from a derived image, with only its own testenv
// label, belongs to a live test: another process's Sweep leaves it alone
// (derived images used to carry their build's pid and host labels, so a
// parallel copy of the suite killed such containers mid-test).
func TestSweepSparesContainersOfDerivedImages(t *testing.T) {
	pool := RequireDocker(t)
	RequireBinary(t, "/usr/bin/mmdebstrap", "mmdebstrap")
	tag, err := NodeExporterImage(t.Context(), pool, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := pool.Client.CreateContainer(docker.CreateContainerOptions{Context: t.Context(), Config: &docker.Config{
		Image: tag, Cmd: []string{"sleep", "600"},
		Labels: map[string]string{LabelTestenv: "sweep-derived-" + randomHex(4)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true}) })
	Sweep(pool)
	if _, err := pool.Client.InspectContainer(ctr.ID); err != nil {
		t.Fatalf("Sweep removed a live test's container of %s: %v", tag, err)
	}
}
