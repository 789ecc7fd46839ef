package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"github.com/raydeploy/sdk/internal/progress"
)

// baseName is the recipe name of the shared Debian base every other image
// derives from.
const baseName = "base"

// BaseRecipe is the shared Debian base: the minbase variant and CA
// certificates. Every other recipe is installed on top of it in a container
// (one more layer), so the essential packages are unpacked once per machine,
// not once per image, and images share their first layer.
func BaseRecipe() ImageRecipe {
	return ImageRecipe{Name: baseName, Packages: []string{"ca-certificates"}}
}

// progressEvery is how often a long build reports that it is still going.
const progressEvery = 5 * time.Second

// buildStep is the current step of a build, read by its progress reporter.
type buildStep struct {
	mu   sync.Mutex
	step string
	tail bytes.Buffer // the last output, for errors
}

func (s *buildStep) set(step string) {
	s.mu.Lock()
	s.step = step
	s.mu.Unlock()
}

func (s *buildStep) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step
}

// Write takes build output: lines starting with "I: " (mmdebstrap) or
// "step: " (the derive script) name the current step.
func (s *buildStep) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tail.Write(p)
	if s.tail.Len() > 64<<10 {
		b := s.tail.Bytes()[s.tail.Len()-32<<10:]
		s.tail.Reset()
		s.tail.Write(b)
	}
	for _, line := range strings.Split(string(p), "\n") {
		line = strings.TrimSpace(line)
		for _, prefix := range []string{"I: ", "step: "} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				if len(v) > 60 { // a hook's whole command line says too much
					v = v[:60] + "..."
				}
				s.step = v
			}
		}
	}
	return len(p), nil
}

func (s *buildStep) lastLines(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lastLines(s.tail.String(), n)
}

// BuildProgress is one report of an image build under way.
type BuildProgress struct {
	// Image is the tag being built.
	Image string
	// Step is what the build does now ("installing 10 packages").
	Step string
	// Elapsed is the time since the build started.
	Elapsed time.Duration
	// Done is set on the last report, when the build ended.
	Done bool
	// Err is why the build failed (with Done).
	Err error
}

type progressKey struct{}

// WithProgress returns a context under which image builds report to fn, at
// least every 5 s and once when they end, instead of logging progress lines.
// fn may be called from several goroutines.
func WithProgress(ctx context.Context, fn func(BuildProgress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// reportProgress reports the build's step and elapsed time every
// progressEvery, to the context's progress function or else to logf, until
// the returned finish is called with the build's outcome.
func reportProgress(ctx context.Context, logf func(string, ...any), tag string, step *buildStep, start time.Time) (finish func(error)) {
	fn, _ := ctx.Value(progressKey{}).(func(BuildProgress))
	if fn == nil {
		fn = func(p BuildProgress) {
			if !p.Done {
				logf("testenv: building %s: %s (%s elapsed)", p.Image, p.Step, p.Elapsed.Round(time.Second))
			}
		}
	}
	stop := progress.Every(ctx, progressEvery, func(time.Time) {
		fn(BuildProgress{Image: tag, Step: step.get(), Elapsed: time.Since(start)})
	})
	return func(err error) {
		stop()
		fn(BuildProgress{Image: tag, Step: step.get(), Elapsed: time.Since(start), Done: true, Err: err})
	}
}

// aptCacheDir is where downloaded packages (archives/) and the base's
// package lists (lists-<base tag>/) are kept between builds, so that every
// package is downloaded once per machine.
func aptCacheDir() (string, error) {
	dir, err := userTempDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "apt")
	if err := os.MkdirAll(filepath.Join(dir, "archives", "partial"), 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

func listsDir(cache, baseTag string) string {
	return filepath.Join(cache, "lists-"+strings.NewReplacer("/", "_", ":", "_").Replace(baseTag))
}

// deriveImage builds r on top of the base image: a container of base
// installs r's packages (package lists of the base build and the shared
// package cache mounted in), places r's files, runs r's commands, and is
// committed as tag. The Engine runs on this machine (testenv dials the nodes'
// bridge addresses directly), so the mounts are this machine's directories.
func deriveImage(ctx context.Context, pool *dockertest.Pool, base string, r ImageRecipe, tag string, step *buildStep) error {
	cache, err := aptCacheDir()
	if err != nil {
		return err
	}
	// apt locks its download directory for a whole install, so builds that
	// run at once each get their own, holding links to the packages already
	// downloaded; what a build downloads is linked back for later builds.
	work, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	shared, archives := filepath.Join(cache, "archives"), filepath.Join(work, "archives")
	if err := os.MkdirAll(filepath.Join(archives, "partial"), 0o755); err != nil {
		return err
	}
	linkPackages(shared, archives)
	lists := listsDir(cache, base)
	update := ""
	if _, err := os.Stat(filepath.Join(lists, "lock")); err != nil {
		// The lists of the base build are gone (the cache was cleaned while
		// the image stayed): this build fetches its own.
		update = "echo 'step: apt-get update'; apt-get -q update; "
		lists = filepath.Join(work, "lists")
		if err := os.MkdirAll(filepath.Join(lists, "partial"), 0o755); err != nil {
			return err
		}
	}
	const stage = "/.testenv-files"
	var files bytes.Buffer
	tw := tar.NewWriter(&files)
	for _, f := range r.Files {
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(stage+f.Path, "/"), Mode: int64(f.Mode.Perm()), Size: int64(len(f.Data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var script strings.Builder
	script.WriteString("set -eu; export DEBIAN_FRONTEND=noninteractive; ")
	script.WriteString(update)
	if len(r.Packages) > 0 {
		fmt.Fprintf(&script, "echo 'step: installing %d packages'; apt-get -q -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-unsafe-io install -y --no-install-recommends %s; ", len(r.Packages), strings.Join(r.Packages, " "))
	}
	if len(r.Files) > 0 {
		fmt.Fprintf(&script, "echo 'step: placing %d files'; tar -C %s -cf - . | tar -C / -xpf - --no-overwrite-dir; rm -rf %s; ", len(r.Files), stage, stage)
	}
	for i, c := range r.Commands {
		fmt.Fprintf(&script, "echo 'step: command %d of %d'; /bin/sh -c %s; ", i+1, len(r.Commands), shellQuote(c))
	}
	script.WriteString("echo 'step: cleaning up'; rm -rf /usr/share/doc /usr/share/man /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log")

	ctr, err := pool.Client.CreateContainer(docker.CreateContainerOptions{
		Context: ctx,
		Config: &docker.Config{
			// No entrypoint: the committed image would keep it.
			Image:  base,
			Cmd:    []string{"/bin/sh", "-c", script.String()},
			Labels: map[string]string{LabelTestenv: "image-build-" + randomHex(4), LabelPID: fmt.Sprint(os.Getpid()), LabelHost: hostname()},
		},
		HostConfig: &docker.HostConfig{Binds: []string{
			archives + ":/var/cache/apt/archives",
			lists + ":/var/lib/apt/lists",
		}},
	})
	if err != nil {
		return fmt.Errorf("create build container: %w", err)
	}
	defer func() {
		_ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true, RemoveVolumes: true})
	}()
	if len(r.Files) > 0 {
		if err := pool.Client.UploadToContainer(ctr.ID, docker.UploadToContainerOptions{InputStream: &files, Path: "/", Context: ctx}); err != nil {
			return fmt.Errorf("copy files into build container: %w", err)
		}
	}
	step.set("starting the build container")
	if err := pool.Client.StartContainerWithContext(ctr.ID, nil, ctx); err != nil {
		return fmt.Errorf("start build container: %w", err)
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		_ = pool.Client.Logs(docker.LogsOptions{Context: ctx, Container: ctr.ID, OutputStream: step, ErrorStream: step, Stdout: true, Stderr: true, Follow: true})
	}()
	code, err := pool.Client.WaitContainerWithContext(ctr.ID, ctx)
	<-logsDone
	if err != nil {
		return fmt.Errorf("build container: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("build container exited with status %d: %s", code, step.lastLines(15))
	}
	linkPackages(archives, shared)
	step.set("committing")
	repo, tg, _ := strings.Cut(tag, ":")
	if _, err := pool.Client.CommitContainer(docker.CommitContainerOptions{
		Context: ctx, Container: ctr.ID, Repository: repo, Tag: tg,
		Message: "raydeploy testenv: " + r.Name + " on " + base,
		// The build script must not become the image's command, and the
		// build container's pid and host labels must not pass to every
		// container started from the image (another process's Sweep would
		// take such a container for a dead run's leftover).
		Changes: []string{`CMD ["bash"]`, `LABEL ` + LabelPID + `="" ` + LabelHost + `=""`},
	}); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// linkPackages hard-links the package files of dir from into dir to, where
// to lacks them. A package that cannot be linked is downloaded again.
func linkPackages(from, to string) {
	debs, _ := filepath.Glob(filepath.Join(from, "*.deb"))
	for _, deb := range debs {
		_ = os.Link(deb, filepath.Join(to, filepath.Base(deb)))
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// userTempDir is this user's own directory (mode 0700) under the system's
// temporary directory, for the build lock and the package cache: tests
// depend on nothing in the home directory.
func userTempDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("raydeploy-testenv-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", err
	}
	if err := checkOwnDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

var _ io.Writer = (*buildStep)(nil) // build output is written into it

// checkOwnDir refuses dir unless it is a real directory of this user that
// nobody else may write.
func checkOwnDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is not a directory of this user with mode 0700", dir)
	}
	return nil
}
