package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// recipeVersion changes whenever the way images are built changes, so cached
// images of an older recipe are not reused.
const recipeVersion = "4"

// ImageFile is a file placed into an image.
type ImageFile struct {
	Path string      // absolute path inside the image
	Mode os.FileMode // permission bits
	Data []byte
}

// ImageRecipe describes a Debian-based image built with mmdebstrap.
type ImageRecipe struct {
	// Name is the repository part of the tag: raydeploy-testenv/<Name>.
	Name string
	// Suite is the Debian suite; empty means the machine's own
	// (VERSION_CODENAME in /etc/os-release).
	Suite string
	// Packages are installed on top of the minbase variant.
	Packages []string
	// Files are copied into the image after the packages.
	Files []ImageFile
	// Commands run inside the image (chroot, /bin/sh -c) after Files.
	Commands []string
}

// Tag returns the image tag the recipe builds: its name and a digest of every
// input, so that a changed recipe never reuses a stale image.
func (r ImageRecipe) Tag(suite string) string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s\nsuite=%s\n", recipeVersion, suite)
	pkgs := slices.Clone(r.Packages)
	slices.Sort(pkgs)
	fmt.Fprintf(h, "packages=%s\n", strings.Join(pkgs, ","))
	for _, f := range r.Files {
		fmt.Fprintf(h, "file=%s mode=%o len=%d\n", f.Path, f.Mode, len(f.Data))
		h.Write(f.Data)
	}
	for _, c := range r.Commands {
		fmt.Fprintf(h, "cmd=%s\n", c)
	}
	if r.Name != baseName {
		fmt.Fprintf(h, "base=%s\n", BaseRecipe().Tag(suite))
	}
	return imageRepo(r.Name) + ":" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ImageRepoEnv names the repository prefix of every image testenv builds
// (default raydeploy-testenv). Setting it to a fresh name measures a cold
// start without touching the shared image cache: nothing is found, so every
// image is built again, under that prefix.
const ImageRepoEnv = "RAYDEPLOY_TESTENV_IMAGES"

// imageRepo returns the repository of the testenv image called name.
func imageRepo(name string) string {
	prefix := os.Getenv(ImageRepoEnv)
	if prefix == "" {
		prefix = "raydeploy-testenv"
	}
	return prefix + "/" + name
}

// DebianImage returns the tag of the image the recipe describes, building it
// first when the Engine does not have it (and the base, when it is missing).
// Each image is built once across processes (a lock per tag), different
// images concurrently, at most buildSlots at once. Progress lines go to logf
// when it is not nil.
func DebianImage(ctx context.Context, pool *dockertest.Pool, r ImageRecipe, logf func(format string, args ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	suite := r.Suite
	if suite == "" {
		var err error
		if suite, err = hostSuite(); err != nil {
			return "", err
		}
	}
	tag := r.Tag(suite)
	if imageExists(pool, tag) {
		return tag, nil
	}
	var baseTag string
	if r.Name != baseName {
		base := BaseRecipe()
		base.Suite = suite
		var err error
		if baseTag, err = DebianImage(ctx, pool, base, logf); err != nil {
			return "", err
		}
	}
	unlock, err := lockBuild(ctx, tag)
	if err != nil {
		return "", err
	}
	defer unlock()
	if imageExists(pool, tag) { // built by another process while we waited
		return tag, nil
	}
	if r.Name == baseName {
		return tag, buildBase(ctx, pool, r, suite, tag, logf)
	}
	start := time.Now()
	logf("testenv: building image %s (%d packages on %s); later runs reuse it", tag, len(r.Packages), baseTag)
	step := &buildStep{step: "creating the build container"}
	stop := reportProgress(ctx, logf, tag, step, start)
	err = deriveImage(ctx, pool, baseTag, r, tag, step)
	stop(err)
	if err != nil {
		return "", fmt.Errorf("testenv: build image %s: %w", tag, err)
	}
	logf("testenv: built %s in %s", tag, time.Since(start).Round(100*time.Millisecond))
	return tag, nil
}

// buildBase builds the shared base with mmdebstrap; the caller holds the
// build lock.
func buildBase(ctx context.Context, pool *dockertest.Pool, r ImageRecipe, suite, tag string, logf func(string, ...any)) error {
	start := time.Now()
	logf("testenv: building image %s (mmdebstrap %s, %d packages); later runs reuse it", tag, suite, len(r.Packages))
	step := &buildStep{step: "starting mmdebstrap"}
	stop := reportProgress(ctx, logf, tag, step, start)
	err := buildWithMmdebstrap(ctx, pool, r, suite, tag, step)
	stop(err)
	if err != nil {
		return fmt.Errorf("testenv: build image %s: %w", tag, err)
	}
	logf("testenv: built %s in %s", tag, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func imageExists(pool *dockertest.Pool, tag string) bool {
	_, err := pool.Client.InspectImage(tag)
	return err == nil
}

// buildSlots bounds how many images this user's processes build at once on
// the machine: more would only share the same two cores and disk.
const buildSlots = 3

// lockBuild takes the build lock of one image tag (see Lock), so that two
// processes never build the same image, then one of buildSlots build slots.
// Both are per image prefix (see ImageRepoEnv).
func lockBuild(ctx context.Context, tag string) (func(), error) {
	name := func(s string) string { return strings.NewReplacer("/", "-", ":", "-").Replace(s) + ".lock" }
	unlockTag, err := Lock(ctx, name(tag))
	if err != nil {
		return nil, err
	}
	slots := make([]string, buildSlots)
	for i := range slots {
		slots[i] = name(imageRepo(fmt.Sprintf("build-slot-%d", i)))
	}
	unlockSlot, err := lockAny(ctx, slots)
	if err != nil {
		unlockTag()
		return nil, err
	}
	return func() { unlockSlot(); unlockTag() }, nil
}

// Lock takes an exclusive lock shared by every process of this user on the
// machine: an flock on the file name in this user's testenv directory under
// the system temp directory. Tests hold one around what two copies of the
// suite running at once must not do together (a fixed host port). It waits
// until the lock is free or ctx ends; the returned function releases it.
func Lock(ctx context.Context, name string) (unlock func(), err error) {
	return lockAny(ctx, []string{name})
}

// lockAny is Lock on whichever of the names is free first.
func lockAny(ctx context.Context, names []string) (unlock func(), err error) {
	dir, err := userTempDir()
	if err != nil {
		return nil, fmt.Errorf("testenv: lock %s: %w", names[0], err)
	}
	files := make([]*os.File, len(names))
	for i, name := range names {
		if name == "" || strings.ContainsAny(name, "/\x00") {
			err = fmt.Errorf("testenv: lock %q: want a plain file name", name)
		} else if files[i], err = os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o600); err != nil {
			err = fmt.Errorf("testenv: lock %s: %w", name, err)
		}
		if err != nil {
			for _, f := range files[:i] {
				f.Close()
			}
			return nil, err
		}
	}
	closeAll := func(except *os.File) {
		for _, f := range files {
			if f != except {
				f.Close()
			}
		}
	}
	for {
		for i, f := range files {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				closeAll(f)
				return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				closeAll(nil)
				return nil, fmt.Errorf("testenv: lock %s: %w", names[i], err)
			}
		}
		select {
		case <-ctx.Done():
			closeAll(nil)
			return nil, fmt.Errorf("testenv: lock %s: %w", names[0], ctx.Err())
		case <-time.After(200 * time.Millisecond): // another process holds it; its flock is the only signal
		}
	}
}

// buildWithMmdebstrap builds r from nothing with mmdebstrap. Its package
// lists are kept in the package cache (see aptCacheDir) for the images that
// derive from it.
func buildWithMmdebstrap(ctx context.Context, pool *dockertest.Pool, r ImageRecipe, suite, tag string, step *buildStep) error {
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap): %w", err)
	}
	work, err := os.MkdirTemp("", "raydeploy-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	sources, err := AptSources(suite)
	if err != nil {
		return err
	}
	srcFile := filepath.Join(work, "debian.sources")
	if err := os.WriteFile(srcFile, sources, 0o644); err != nil {
		return err
	}

	cache, err := aptCacheDir()
	if err != nil {
		return err
	}
	lists := listsDir(cache, tag)
	if err := os.RemoveAll(lists); err != nil {
		return err
	}
	if err := os.MkdirAll(lists, 0o755); err != nil {
		return err
	}
	args := []string{"--variant=minbase", "--mode=root", "--format=tar"}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	for i, f := range r.Files {
		local := filepath.Join(work, fmt.Sprintf("file-%d", i))
		if err := os.WriteFile(local, f.Data, 0o600); err != nil {
			return err
		}
		args = append(args, fmt.Sprintf(`--customize-hook=install -D -m %04o %s "$1"%s`, f.Mode.Perm(), shellQuote(local), shellQuote(f.Path)))
	}
	for _, c := range r.Commands {
		args = append(args, `--customize-hook=chroot "$1" /bin/sh -c `+shellQuote(c))
	}
	args = append(args, `--customize-hook=sync-out /var/lib/apt/lists `+shellQuote(lists))
	// Smaller images load faster into the nodes' engines.
	args = append(args, `--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc "$1"/usr/share/man`)
	args = append(args, suite, "-", srcFile)

	cmd := exec.CommandContext(ctx, mm, args...)
	cmd.Stderr = step
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	repo, tg, _ := strings.Cut(tag, ":")
	importErr := pool.Client.ImportImage(docker.ImportImageOptions{
		Repository:   repo,
		Tag:          tg,
		Source:       "-",
		InputStream:  out,
		OutputStream: io.Discard,
		Context:      ctx,
	})
	if importErr != nil {
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if waitErr != nil {
		return fmt.Errorf("mmdebstrap: %w: %s", waitErr, step.lastLines(15))
	}
	if importErr != nil {
		return fmt.Errorf("image import: %w", importErr)
	}
	return nil
}

// AptSources returns a deb822 sources file with the entries of this machine's
// apt configuration that serve the given Debian suite (and its -updates and
// -security suites). Nothing about a mirror is hard-coded: the machine's own
// configuration is read at run time.
func AptSources(suite string) ([]byte, error) {
	var out bytes.Buffer
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".sources"):
			writeDeb822(&out, data, suite)
		case strings.HasSuffix(name, ".list"):
			writeOneLine(&out, data, suite)
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("testenv: no apt source for suite %q in /etc/apt/sources.list{,.d/*}", suite)
	}
	return out.Bytes(), nil
}

func suiteMatches(s, suite string) bool {
	return s == suite || strings.HasPrefix(s, suite+"-") || strings.HasPrefix(s, suite+"/")
}

func writeDeb822(out *bytes.Buffer, data []byte, suite string) {
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		var order []string
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			k = strings.TrimSpace(k)
			fields[k] = strings.TrimSpace(v)
			order = append(order, k)
		}
		if !slices.Contains(strings.Fields(fields["Types"]), "deb") || fields["Enabled"] == "no" {
			continue
		}
		var suites []string
		for _, s := range strings.Fields(fields["Suites"]) {
			if suiteMatches(s, suite) {
				suites = append(suites, s)
			}
		}
		if len(suites) == 0 {
			continue
		}
		fields["Types"] = "deb"
		fields["Suites"] = strings.Join(suites, " ")
		for _, k := range order {
			fmt.Fprintf(out, "%s: %s\n", k, fields[k])
		}
		out.WriteString("\n")
	}
}

func writeOneLine(out *bytes.Buffer, data []byte, suite string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		rest := f[1:]
		var opts string
		if strings.HasPrefix(rest[0], "[") {
			i := slices.IndexFunc(rest, func(s string) bool { return strings.HasSuffix(s, "]") })
			if i < 0 {
				continue
			}
			opts = strings.Trim(strings.Join(rest[:i+1], " "), "[]")
			rest = rest[i+1:]
		}
		if len(rest) < 3 || !suiteMatches(rest[1], suite) {
			continue
		}
		fmt.Fprintf(out, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", rest[0], rest[1], strings.Join(rest[2:], " "))
		for _, o := range strings.Fields(opts) {
			if k, v, ok := strings.Cut(o, "="); ok && k == "signed-by" {
				fmt.Fprintf(out, "Signed-By: %s\n", v)
			}
		}
		out.WriteString("\n")
	}
}

func hostSuite() (string, error) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", fmt.Errorf("testenv: read /etc/os-release: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && v != "" {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", errors.New("testenv: /etc/os-release has no VERSION_CODENAME; set ImageRecipe.Suite")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
