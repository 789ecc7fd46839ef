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
	"sync"
	"time"

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

// programs memoizes the stand-in programs compiled by this process: each is
// built once, however many images or goroutines ask for it.
var programs struct {
	mu    sync.Mutex
	built map[string]*program
}

type program struct {
	done chan struct{}
	bin  []byte
	err  error
}

// standinPrograms are the Go programs of this package's stand-ins, in the
// order [PrepareStandins] compiles them.
var standinPrograms = []string{"raystandin", "monstandin"}

// PrepareStandins compiles the Ray and monitoring stand-in programs now, so
// that a caller can overlap the compile (tens of seconds with a cold build
// cache) with other work such as starting the nodes; the image builds that
// need them later take the result. It reports progress like an image build.
func PrepareStandins(ctx context.Context) error {
	for _, dir := range standinPrograms {
		if _, err := buildGoProgram(ctx, dir); err != nil {
			return err
		}
	}
	return nil
}

// buildGoProgram builds the static Go program in this package's directory
// dir (CGO off, trimmed paths, no symbols: reproducible bytes) and returns the
// binary. A program is compiled once per process; a failed compile is not
// remembered (the next caller tries again).
func buildGoProgram(ctx context.Context, dir string) ([]byte, error) {
	programs.mu.Lock()
	if programs.built == nil {
		programs.built = map[string]*program{}
	}
	if p, ok := programs.built[dir]; ok {
		programs.mu.Unlock()
		select {
		case <-p.done:
			if p.err == nil {
				return p.bin, nil
			}
			return buildGoProgram(ctx, dir)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &program{done: make(chan struct{})}
	programs.built[dir] = p
	programs.mu.Unlock()

	p.bin, p.err = compileGoProgram(ctx, dir)
	if p.err != nil {
		programs.mu.Lock()
		delete(programs.built, dir)
		programs.mu.Unlock()
	}
	close(p.done)
	return p.bin, p.err
}

// compileGoProgram runs go build for buildGoProgram, reporting progress every
// 5 s to the context's progress function (see [WithProgress]), if any: with
// a cold build cache this takes tens of seconds.
func compileGoProgram(ctx context.Context, dir string) ([]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	tmp, err := os.MkdirTemp("", dir+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	step := &buildStep{step: "compiling the " + dir + " stand-in (go build)"}
	var finish func(error)
	if fn, _ := ctx.Value(progressKey{}).(func(BuildProgress)); fn != nil {
		finish = reportProgress(ctx, nil, dir, step, time.Now())
	}
	bin := filepath.Join(tmp, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(file), dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("testenv: build %s: %w: %s", dir, err, out)
	}
	if finish != nil {
		finish(err)
	}
	if err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}
