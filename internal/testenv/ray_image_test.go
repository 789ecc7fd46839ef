package testenv

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

func TestRayRecipeLayout(t *testing.T) {
	ctx := context.Background()
	def, err := RayRecipe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	old, err := RayRecipe(ctx, "2.57.0")
	if err != nil {
		t.Fatal(err)
	}
	if def.Name != "ray" {
		t.Errorf("name %q, want ray", def.Name)
	}
	paths := func(r ImageRecipe) map[string]ImageFile {
		m := map[string]ImageFile{}
		for _, f := range r.Files {
			m[f.Path] = f
		}
		return m
	}
	d, o := paths(def), paths(old)
	for _, p := range []string{rayBinPath, rayPthPath, rayPythonDir + "/ray/__init__.py", rayPythonDir + "/ray/util/scheduling_strategies.py"} {
		if _, ok := d[p]; !ok {
			t.Errorf("default recipe lacks %s", p)
		}
	}
	if f := d[rayBinPath]; f.Mode != 0o755 || !bytes.HasPrefix(f.Data, []byte("\x7fELF")) {
		t.Errorf("default %s: mode %o, not the ELF binary itself", rayBinPath, f.Mode)
	}
	if w := o[rayBinPath]; !strings.HasPrefix(string(w.Data), "#!/bin/sh") || !strings.Contains(string(w.Data), "2.57.0") {
		t.Errorf("2.57.0 %s is not a version wrapper:\n%s", rayBinPath, w.Data)
	}
	if !bytes.Equal(o[rayRealBinPath].Data, d[rayBinPath].Data) {
		t.Errorf("2.57.0 %s differs from the default binary", rayRealBinPath)
	}
	if def.Tag("bookworm") == old.Tag("bookworm") {
		t.Error("versions share a tag")
	}
	if again, err := RayRecipe(ctx, DefaultStandinVersion); err != nil || again.Tag("bookworm") != def.Tag("bookworm") {
		t.Errorf("rebuilt recipe has another tag (reproducible build expected): %v", err)
	}
	for _, bad := range []string{"2.57.0; rm -rf /", `2"`, "$(id)"} {
		if _, err := RayRecipe(ctx, bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

func TestRayImageEnvOverrides(t *testing.T) {
	t.Setenv(RayImageEnv, "rayproject/ray:2.58.0")
	img, err := TestRayImage(context.Background(), nil, t.Logf)
	if err != nil || img != "rayproject/ray:2.58.0" {
		t.Fatalf("TestRayImage = %q, %v; want the %s value", img, err, RayImageEnv)
	}
}

func TestRayImageRunsStandin(t *testing.T) {
	pool := RequireDocker(t)
	t.Setenv(RayImageEnv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	tag, err := TestRayImage(ctx, pool, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := pool.Client.InspectImage(tag); err == nil {
		t.Logf("%s: %.1f MB, ready in %s", tag, float64(img.Size)/1e6, time.Since(start).Round(100*time.Millisecond))
	}
	out := runInImage(ctx, t, pool, tag,
		`ray --version; python --version; python -c "import ray, ray.util.scheduling_strategies; print(ray.__file__, ray.__version__)"`)
	for _, want := range []string{"ray, version 2.58.0\n", "Python 3.", rayPythonDir + "/ray/__init__.py 2.58.0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	t.Run("2.57.0", func(t *testing.T) {
		tag, err := RayImage(ctx, pool, "2.57.0", t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		out := runInImage(ctx, t, pool, tag,
			`ray --version; python3 -c "import ray; print(ray.__version__)"; RAY_STANDIN_VERSION=9.9.9 ray --version`)
		if want := "ray, version 2.57.0\n2.57.0\nray, version 9.9.9\n"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
	})
}

// runInImage runs script with sh -c in a container of image on the host
// Engine and returns its combined output; a non-zero exit fails the test.
func runInImage(ctx context.Context, t *testing.T, pool *dockertest.Pool, image, script string) string {
	t.Helper()
	ctr := startInImage(ctx, t, pool, image, "rayimage", script)
	code, err := pool.Client.WaitContainerWithContext(ctr.ID, ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pool.Client.Logs(docker.LogsOptions{
		Context: ctx, Container: ctr.ID, OutputStream: &buf, ErrorStream: &buf, Stdout: true, Stderr: true,
	}); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("%s exited %d:\n%s", script, code, buf.String())
	}
	return buf.String()
}

// startInImage starts script with sh -c in a container of image on the host
// Engine, labelled as this process's (purpose names it), and removes the
// container when the test ends.
func startInImage(ctx context.Context, t *testing.T, pool *dockertest.Pool, image, purpose, script string) *docker.Container {
	t.Helper()
	host, _ := os.Hostname()
	ctr, err := pool.Client.CreateContainer(docker.CreateContainerOptions{
		Context: ctx,
		Config: &docker.Config{
			Image: image,
			Cmd:   []string{"sh", "-c", script},
			Labels: map[string]string{
				LabelTestenv: purpose + "-" + strconv.Itoa(os.Getpid()),
				LabelPID:     strconv.Itoa(os.Getpid()),
				LabelHost:    host,
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true, RemoveVolumes: true})
	})
	if err := pool.Client.StartContainerWithContext(ctr.ID, nil, ctx); err != nil {
		t.Fatal(err)
	}
	return ctr
}
