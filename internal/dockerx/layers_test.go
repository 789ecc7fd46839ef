package dockerx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestSideLoadLeavesOutLayersTheNodeHas side-loads a base image, then an
// image built on it: the second transfer sends its own layer only (the
// base's stays behind), and the node ends with the exact image, which runs.
func TestSideLoadLeavesOutLayersTheNodeHas(t *testing.T) {
	c := testenv.NewCluster(t, 1)
	ctx := t.Context()
	base, err := testenv.TinyImage(ctx, c.Pool())
	if err != nil {
		t.Fatal(err)
	}
	local, err := New(Options{Node: "controller"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	// A derived image whose own layer is 256 KiB of fixed bytes: the same
	// tag and ID on every run.
	extra := make([]byte, 256<<10)
	for i := range extra {
		extra[i] = byte(i * 7)
	}
	dockerfile := "FROM " + base + "\nCOPY extra /extra\n"
	sum := sha256.Sum256(append([]byte(dockerfile), extra...))
	derived := "raydeploy-testenv/sideload-derived:" + hex.EncodeToString(sum[:8])
	if _, err := local.ImageID(ctx, derived); err != nil {
		if _, err := local.Build(ctx, derived, map[string][]byte{"Dockerfile": []byte(dockerfile), "extra": extra}, nil); err != nil {
			t.Fatal(err)
		}
	}
	e := sshEngine(t, ctx, c.Nodes[0])

	type result struct{ size, send, skipped, sent int64 }
	load := func(ref string) result {
		t.Helper()
		file, id, err := local.SaveToFile(ctx, ref, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		r := result{size: fi.Size()}
		err = SideLoadWith(ctx, file, ref, id, e, SideLoadOptions{
			Progress: func(_ string, n int64) { r.sent = n },
			Planned:  func(send, skipped int64) { r.send, r.skipped = send, skipped },
		})
		if err != nil {
			t.Fatalf("side-load %s: %v", ref, err)
		}
		if got, err := e.ImageID(ctx, ref); err != nil || got != id {
			t.Fatalf("node has %s as %s (%v), want %s", ref, got, err, id)
		}
		return r
	}

	first := load(base)
	if first.skipped != 0 || first.sent < first.size*9/10 {
		t.Errorf("base image to a node without it: sent %d of %d, skipped %d; want it all sent", first.sent, first.size, first.skipped)
	}
	second := load(derived)
	t.Logf("base: archive %d B, sent %d B; derived: archive %d B, sent %d B, left out %d B", first.size, first.sent, second.size, second.sent, second.skipped)
	// The derived archive holds the base's layer too; only its own 256 KiB
	// layer (plus tar headers, manifest and config) crosses.
	if second.skipped < first.size/2 {
		t.Errorf("derived image: left out %d B, want at least the base layer (about %d B)", second.skipped, first.size)
	}
	if second.sent > second.size-second.skipped+64<<10 || second.sent > int64(len(extra))+128<<10 {
		t.Errorf("derived image: sent %d B of a %d B archive; want about its own %d B layer", second.sent, second.size, len(extra))
	}
	// The image is whole: its base layer (the tinyd binary) and its own.
	out, err := c.Nodes[0].Run(ctx, "root", fmt.Sprintf("docker run --rm --entrypoint /tinyd %s -h 2>&1 | head -c 200; docker create --name sideload-check %s /tinyd >/dev/null && docker cp sideload-check:/extra - | wc -c; docker rm sideload-check >/dev/null", derived, derived))
	if err != nil {
		t.Fatalf("running the derived image: %v\n%s", err, out)
	}
	t.Logf("derived image on the node:\n%s", out)
	var n int
	if _, err := fmt.Sscan(lastLine(out), &n); err != nil || n < len(extra) {
		t.Errorf("/extra of the derived image on the node: %q (tar of %d B want >= %d)", lastLine(out), n, len(extra))
	}

	// Loaded again: everything but the manifest and config is left out, and
	// the image is still exactly the one asked for.
	third := load(derived)
	if third.sent > 64<<10 {
		t.Errorf("the image the node has: sent %d B again", third.sent)
	}
}

func lastLine(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
