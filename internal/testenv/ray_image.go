package testenv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ory/dockertest/v3"
)

// DefaultStandinVersion is the Ray release the stand-in claims when nothing
// else is set (its RAY_STANDIN_VERSION default).
const DefaultStandinVersion = "2.58.0"

// RayImageEnv names a Ray image already loaded on the Docker Engine (e.g. a
// real rayproject/ray:<version>) that the integration tests use instead of
// the locally built stand-in image.
const RayImageEnv = "RAYDEPLOY_TEST_RAY_IMAGE"

// Paths of the stand-in inside the Ray image.
const (
	rayBinPath        = "/usr/local/bin/ray"
	rayRealBinPath    = "/usr/local/lib/raystandin/ray" // behind a version wrapper; basename must stay "ray" (ray stop finds `ray start` by it)
	rayPythonDir      = "/opt/raystandin/python"
	rayPthPath        = "/usr/lib/python3/dist-packages/raystandin.pth" // version-independent dist-packages dir of Debian's python3
	standinVersionEnv = "RAY_STANDIN_VERSION"
)

// RayRecipe is the image of the Ray stand-in (internal/testenv/raystandin)
// claiming the given Ray version (empty means DefaultStandinVersion): Debian
// with python3 (and `python`), the stand-in built as /usr/local/bin/ray and
// its Python shim importable as `ray` by every python3 of the image. It builds
// the stand-in with the go command, so the Go toolchain must be installed.
func RayRecipe(ctx context.Context, version string) (ImageRecipe, error) {
	if version == "" {
		version = DefaultStandinVersion
	}
	if !validStandinVersion(version) {
		return ImageRecipe{}, fmt.Errorf("testenv: ray stand-in version %q: want letters, digits and . + - only", version)
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "raystandin")
	bin, err := buildGoProgram(ctx, "raystandin")
	if err != nil {
		return ImageRecipe{}, err
	}
	shim, err := standinPythonFiles(filepath.Join(dir, "python"))
	if err != nil {
		return ImageRecipe{}, err
	}

	pth := rayPythonDir + "\n"
	var files []ImageFile
	if version == DefaultStandinVersion {
		files = append(files, ImageFile{Path: rayBinPath, Mode: 0o755, Data: bin})
	} else {
		// The stand-in reads its version from the environment only: a wrapper
		// sets it for the CLI (and so for everything `ray start` runs), the
		// .pth line for any other python3 that imports the shim. An explicit
		// RAY_STANDIN_VERSION still wins.
		wrapper := fmt.Sprintf("#!/bin/sh\n# Ray stand-in claiming Ray %[1]s (raydeploy testenv).\n"+
			"%[2]s=\"${%[2]s:-%[1]s}\"\nexport %[2]s\nexec %[3]s \"$@\"\n", version, standinVersionEnv, rayRealBinPath)
		files = append(files,
			ImageFile{Path: rayRealBinPath, Mode: 0o755, Data: bin},
			ImageFile{Path: rayBinPath, Mode: 0o755, Data: []byte(wrapper)},
		)
		pth += fmt.Sprintf("import os; os.environ.setdefault(%q, %q)\n", standinVersionEnv, version)
	}
	files = append(files, ImageFile{Path: rayPthPath, Mode: 0o644, Data: []byte(pth)})
	files = append(files, shim...)

	return ImageRecipe{
		Name: "ray",
		// usr-is-merged satisfies init-system-helpers' "usrmerge |
		// usr-is-merged" once usrmerge is gone.
		Packages: []string{"python3", "python-is-python3", "procps", "ca-certificates", "curl", "usr-is-merged"},
		Files:    files,
		Commands: []string{
			// mmdebstrap installs usrmerge, which brings perl (~50 MB, a
			// quarter of the image); the /usr merge is done by then and
			// nothing else here needs perl (perl-base stays: it is Essential).
			`if dpkg -s usrmerge >/dev/null 2>&1; then dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl ` +
				`$(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' 'libperl5*' 'perl-modules-*' | sed -n 's/^ii *//p') >/dev/null; fi`,
			// Translations (~30 MB): no test reads them.
			"find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +",
		},
	}, nil
}

// RayImage returns the tag of the stand-in Ray image claiming the given
// version (see RayRecipe), building it when the Engine does not have it.
// Progress lines go to logf when it is not nil.
func RayImage(ctx context.Context, pool *dockertest.Pool, version string, logf func(string, ...any)) (string, error) {
	r, err := RayRecipe(ctx, version)
	if err != nil {
		return "", err
	}
	return DebianImage(ctx, pool, r, logf)
}

// TestRayImage is the Ray image the integration tests deploy: the value of
// RAYDEPLOY_TEST_RAY_IMAGE when set (an image already on the Engine, not
// checked here), else the stand-in image of DefaultStandinVersion.
func TestRayImage(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (string, error) {
	if img := os.Getenv(RayImageEnv); img != "" {
		return img, nil
	}
	return RayImage(ctx, pool, DefaultStandinVersion, logf)
}

// validStandinVersion keeps the version safe to write into a shell script and
// a Python string literal unquoted.
func validStandinVersion(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// buildStandin builds the stand-in as a static binary and returns its bytes.

// standinPythonFiles returns the shim's files placed under rayPythonDir, in
// lexical order (so the recipe's tag is stable), without compiled caches.
func standinPythonFiles(root string) ([]ImageFile, error) {
	var files []ImageFile
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".pyc") {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		files = append(files, ImageFile{Path: path.Join(rayPythonDir, p), Mode: 0o644, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: ray stand-in python shim: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("testenv: ray stand-in python shim: no files under %s", root)
	}
	return files, nil
}
