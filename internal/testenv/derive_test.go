package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ory/dockertest/v3/docker"
)

// TestDerivedImageSharesBase builds a derived image (node-exporter) and checks
// that it is the shared base plus one layer, that its packages work, and that
// the build script did not become its command.
func TestDerivedImageSharesBase(t *testing.T) {
	pool := RequireDocker(t)
	RequireBinary(t, "/usr/bin/mmdebstrap", "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tag, err := NodeExporterImage(ctx, pool, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	suite, err := hostSuite()
	if err != nil {
		t.Fatal(err)
	}
	base, err := pool.Client.InspectImage(BaseRecipe().Tag(suite))
	if err != nil {
		t.Fatalf("base image: %v", err)
	}
	img, err := pool.Client.InspectImage(tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.RootFS.Layers) != len(base.RootFS.Layers)+1 || img.RootFS.Layers[0] != base.RootFS.Layers[0] {
		t.Errorf("%s layers %v, want the base's %v and one more", tag, img.RootFS.Layers, base.RootFS.Layers)
	}
	if got := strings.Join(img.Config.Cmd, " "); got != "bash" || len(img.Config.Entrypoint) != 0 {
		t.Errorf("%s entrypoint %q command %q, want none and bash", tag, img.Config.Entrypoint, got)
	}

	ctr, err := pool.Client.CreateContainer(docker.CreateContainerOptions{Context: ctx, Config: &docker.Config{
		Image: tag, Cmd: []string{"/bin/node_exporter", "--version"},
		Labels: map[string]string{LabelTestenv: "derive-test-" + randomHex(4)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true}) })
	if err := pool.Client.StartContainerWithContext(ctr.ID, nil, ctx); err != nil {
		t.Fatal(err)
	}
	code, err := pool.Client.WaitContainerWithContext(ctr.ID, ctx)
	var out strings.Builder
	_ = pool.Client.Logs(docker.LogsOptions{Container: ctr.ID, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true})
	if err != nil || code != 0 || !strings.Contains(out.String(), "node_exporter, version") {
		t.Fatalf("node_exporter --version: status %d, %v: %s", code, err, out.String())
	}
}
