package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// TinyImage builds the tinyd program (a static Go binary) into a one-file image
// on the test machine's Engine and returns its tag. Containers of it need an
// explicit command: ["/tinyd", "-listen", ":8080"].
func TinyImage(ctx context.Context, pool *dockertest.Pool) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "tinyd")
	tmp, err := os.MkdirTemp("", "tinyd-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "tinyd")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: build tinyd: %w: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	tag := "raydeploy-testenv/tinyd:" + hex.EncodeToString(sum[:])[:16]
	if imageExists(pool, tag) {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "tinyd", Mode: 0o755, Size: int64(len(data))}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	repo, tg := "raydeploy-testenv/tinyd", tag[len("raydeploy-testenv/tinyd:"):]
	if err := pool.Client.ImportImage(docker.ImportImageOptions{
		Repository: repo, Tag: tg, Source: "-", InputStream: &buf, OutputStream: io.Discard, Context: ctx,
	}); err != nil {
		return "", fmt.Errorf("testenv: import tinyd image: %w", err)
	}
	return tag, nil
}
