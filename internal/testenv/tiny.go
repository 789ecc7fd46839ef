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
	data, err := buildGoProgram(ctx, "tinyd")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	repo, tg := imageRepo("tinyd"), hex.EncodeToString(sum[:])[:16]
	tag := repo + ":" + tg
	if imageExists(pool, tag) {
		return tag, nil
	}
	// An import gets a new ID each time (its creation time): two processes
	// importing at once would move the tag under each other's feet.
	unlock, err := lockBuilds(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
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
	if err := pool.Client.ImportImage(docker.ImportImageOptions{
		Repository: repo, Tag: tg, Source: "-", InputStream: &buf, OutputStream: io.Discard, Context: ctx,
	}); err != nil {
		return "", fmt.Errorf("testenv: import tinyd image: %w", err)
	}
	return tag, nil
}

// buildGoProgram builds the static Go program in this package's directory
// dir (CGO off, trimmed paths, no symbols: reproducible bytes) and returns the
// binary.
func buildGoProgram(ctx context.Context, dir string) ([]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	tmp, err := os.MkdirTemp("", dir+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(file), dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: build %s: %w: %s", dir, err, out)
	}
	return os.ReadFile(bin)
}
