package dockerx

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// sshEngine returns an Engine of the node's dockerd reached through an SSH
// connection's direct-streamlocal channel to /var/run/docker.sock.
func sshEngine(t *testing.T, ctx context.Context, n *testenv.Node) *Engine {
	t.Helper()
	cl, err := n.Dial(ctx, testenv.DeployUser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	e, err := New(Options{Node: n.Name, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return cl.DialContext(ctx, "unix", "/var/run/docker.sock")
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEngineOverSSH(t *testing.T) {
	c := testenv.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tag, err := testenv.TinyImage(ctx, c.Pool())
	if err != nil {
		t.Fatal(err)
	}
	local, err := New(Options{Node: "controller"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	file, wantID, err := local.SaveToFile(ctx, tag, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := TarImageID(file, tag); err != nil || id != wantID {
		t.Fatalf("TarImageID = %q, %v; want %s", id, err, wantID)
	}

	engines := make([]*Engine, len(c.Nodes))
	for i, n := range c.Nodes {
		engines[i] = sshEngine(t, ctx, n)
		if _, err := engines[i].Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Side-load into every node in parallel, verified by image ID.
	var wg sync.WaitGroup
	errs := make([]error, len(engines))
	sent := make([]int64, len(engines))
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = SideLoad(ctx, file, tag, wantID, e, func(_ string, n int64) { sent[i] = n })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("side-load to %s: %v", c.Nodes[i].Name, err)
		}
		if sent[i] == 0 {
			t.Errorf("no progress reported for %s", c.Nodes[i].Name)
		}
		if id, err := engines[i].ImageID(ctx, tag); err != nil || id != wantID {
			t.Errorf("%s has %s (%v), want %s", c.Nodes[i].Name, id, err, wantID)
		}
	}

	spec := ContainerSpec{
		Name:        "raydeploy-test-tinyd",
		Image:       tag,
		Cmd:         []string{"/tinyd", "-listen", ":18080", "-message", "first"},
		NetworkMode: "host",
		Restart:     "unless-stopped",
		Labels:      map[string]string{LabelCluster: "t", LabelRole: "test"},
	}
	for i, e := range engines {
		n := c.Nodes[i]
		first, err := e.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if first.Action != Created {
			t.Errorf("%s: first ensure = %s, want created", n.Name, first.Action)
		}
		again, err := e.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if again.Action != Unchanged || again.ID != first.ID {
			t.Errorf("%s: second ensure = %s %s, want unchanged %s", n.Name, again.Action, again.ID, first.ID)
		}
		waitHTTP(t, ctx, n, "http://127.0.0.1:18080/hello", "first")

		changed := spec
		changed.Cmd = []string{"/tinyd", "-listen", ":18080", "-message", "second"}
		third, err := e.Ensure(ctx, changed)
		if err != nil {
			t.Fatal(err)
		}
		if third.Action != Replaced || third.ID == first.ID {
			t.Errorf("%s: changed spec ensure = %s %s, want replaced with a new ID", n.Name, third.Action, third.ID)
		}
		waitHTTP(t, ctx, n, "http://127.0.0.1:18080/hello", "second")

		owned, err := e.List(ctx, ListFilter{Labels: []string{LabelCluster + "=t"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(owned) != 1 || owned[0].ID != third.ID || owned[0].Labels[LabelSpec] != changed.Digest() {
			t.Errorf("%s: owned containers = %+v, want only %s with spec %s", n.Name, owned, third.ID, changed.Digest())
		}
		if err := e.Remove(ctx, third.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Inspect(ctx, third.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: after Remove, Inspect = %v, want ErrNotFound", n.Name, err)
		}
	}

	if _, err := engines[0].Ensure(ctx, ContainerSpec{Name: "x", Image: "raydeploy-test/absent:1"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ensure with an absent image = %v, want ErrNotFound", err)
	}
}

// waitHTTP polls a URL on the node (curl over SSH) until it answers want.
func waitHTTP(t *testing.T, ctx context.Context, n *testenv.Node, url, want string) {
	t.Helper()
	var last string
	for ctx.Err() == nil {
		out, _ := n.Run(ctx, "root", "curl -sf --max-time 1 "+url)
		if last = strings.TrimSpace(out); last == want {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s %s: last answer %q, want %q", n.Name, url, last, want)
}

func TestDigestIgnoresSpecLabelAndMapOrder(t *testing.T) {
	a := ContainerSpec{Name: "n", Image: "i", Env: map[string]string{"A": "1", "B": "2"}}
	b := ContainerSpec{Name: "n", Image: "i", Env: map[string]string{"B": "2", "A": "1"}, Labels: map[string]string{LabelSpec: "old"}}
	if a.Digest() != b.Digest() {
		t.Error("equal specs have different digests")
	}
	b.Env["A"] = "3"
	if a.Digest() == b.Digest() {
		t.Error("a changed env kept the digest")
	}
}
