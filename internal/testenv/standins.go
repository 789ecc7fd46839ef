package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// Environment variables naming monitoring images already on the Docker Engine
// (e.g. the real upstream images) that the integration tests deploy instead
// of the locally built ones.
const (
	PrometheusImageEnv   = "RAYDEPLOY_TEST_PROMETHEUS_IMAGE"
	NodeExporterImageEnv = "RAYDEPLOY_TEST_NODE_EXPORTER_IMAGE"
	GrafanaImageEnv      = "RAYDEPLOY_TEST_GRAFANA_IMAGE"
	CAdvisorImageEnv     = "RAYDEPLOY_TEST_CADVISOR_IMAGE"
)

// MonitoringImages are the images of the monitoring stack the tests deploy.
type MonitoringImages struct {
	Prometheus   string
	NodeExporter string
	Grafana      string
	CAdvisor     string
}

// TestMonitoringImages returns the monitoring images the integration tests
// deploy: for each, the image its environment variable names (already on the
// Engine, not checked here), else the locally built one: real Prometheus and
// node-exporter from Debian's packages (PrometheusRecipe, NodeExporterRecipe)
// and the Go stand-ins for Grafana and cAdvisor (StandinImage).
func TestMonitoringImages(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (MonitoringImages, error) {
	var out MonitoringImages
	var wg sync.WaitGroup
	errs := make([]error, 4)
	// The images are independent of each other: they are built at once.
	pick := func(i int, dst *string, env string, build func() (string, error)) {
		if v := os.Getenv(env); v != "" {
			*dst = v
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			*dst, errs[i] = build()
		}()
	}
	pick(0, &out.Prometheus, PrometheusImageEnv, func() (string, error) { return PrometheusImage(ctx, pool, logf) })
	pick(1, &out.NodeExporter, NodeExporterImageEnv, func() (string, error) { return NodeExporterImage(ctx, pool, logf) })
	pick(2, &out.Grafana, GrafanaImageEnv, func() (string, error) { return StandinImage(ctx, pool, StandinGrafana) })
	pick(3, &out.CAdvisor, CAdvisorImageEnv, func() (string, error) { return StandinImage(ctx, pool, StandinCAdvisor) })
	wg.Wait()
	return out, errors.Join(errs...)
}

// Modes of the monitoring stand-in (internal/testenv/monstandin).
const (
	StandinGrafana  = "grafana"
	StandinCAdvisor = "cadvisor"
)

// StandinImage builds the monitoring stand-in (a static Go program) into a
// one-file image for the given mode and returns its tag. The image's
// entrypoint is the stand-in in that mode, so it takes what the monitoring
// specs give the upstream images: Grafana's GF_* environment, cAdvisor's
// flags (--port=...).
func StandinImage(ctx context.Context, pool *dockertest.Pool, mode string) (string, error) {
	if mode != StandinGrafana && mode != StandinCAdvisor {
		return "", fmt.Errorf("testenv: stand-in mode %q: want %s or %s", mode, StandinGrafana, StandinCAdvisor)
	}
	data, err := buildGoProgram(ctx, "monstandin")
	if err != nil {
		return "", err
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY monstandin /monstandin\nENTRYPOINT [\"/monstandin\", \"-mode=%s\"]\n", mode)
	h := sha256.New()
	h.Write(data)
	io.WriteString(h, dockerfile)
	repo := imageRepo(mode + "-standin")
	tag := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if imageExists(pool, tag) {
		return tag, nil
	}
	// A build gets a new ID each time (its creation time): serialized with
	// every other process's build of it so the tag never moves once a test has it.
	unlock, err := lockBuild(ctx, tag)
	if err != nil {
		return "", err
	}
	defer unlock()
	if imageExists(pool, tag) {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"monstandin", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := pool.Client.BuildImage(docker.BuildImageOptions{
		Name: tag, InputStream: &buf, OutputStream: &out, RmTmpContainer: true, ForceRmTmpContainer: true, Context: ctx,
	}); err != nil {
		return "", fmt.Errorf("testenv: build %s stand-in image: %w: %s", mode, err, lastLines(out.String(), 10))
	}
	return tag, nil
}
