package tts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/raydeploy/sdk/internal/dockerx"
)

// ImagePackages are the Debian/Ubuntu packages the TTS image adds to the
// cluster's Ray image: the engines and the Python web stack for an image
// whose Python is the system's (a rayproject/ray image brings FastAPI and
// uvicorn with Ray Serve already).
var ImagePackages = []string{"flite", "espeak-ng", "festival", "festvox-us-slt-hts",
	"python3-fastapi", "python3-uvicorn", "python3-websockets"}

// AppDir is where the image holds the app's Python package (on PYTHONPATH).
const AppDir = "/opt/raydeploy-tts"

// dockerfile derives the TTS image from base. It installs with sudo when the
// image's user is not root (rayproject/ray runs as "ray" with sudo) and keeps
// the image's user.
func dockerfile(base string) string {
	return fmt.Sprintf(`FROM %s
RUN if [ "$(id -u)" = 0 ]; then S=; else S=sudo; fi; \
    $S apt-get update && DEBIAN_FRONTEND=noninteractive $S apt-get install -y --no-install-recommends %s \
    && $S rm -rf /var/lib/apt/lists/*
COPY %s %s/%s
ENV PYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH}
`, base, strings.Join(ImagePackages, " "), PythonPackage, AppDir, PythonPackage, AppDir)
}

// ImageContext returns the Docker build context (Dockerfile and the app's
// files) of the TTS image derived from base.
func ImageContext(base string) (map[string][]byte, error) {
	files := map[string][]byte{"Dockerfile": []byte(dockerfile(base))}
	err := fs.WalkDir(AppFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(AppFiles(), p)
		files[p] = b
		return err
	})
	return files, err
}

// ImageTag is the tag of the TTS image derived from the image with the given
// ID: it changes with the base, the packages and the app's code.
func ImageTag(baseID string, files map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "base=%s\n", baseID)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file=%s len=%d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return "raydeploy/tts:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// BuildImage builds (once) the TTS image derived from the Ray image base on
// the controller's own Docker Engine (DOCKER_HOST or the local socket) and
// returns its tag. base must be on that Engine; the build installs
// ImagePackages from the image's own package sources. Deploy the cluster with
// the returned tag as its Ray image: ray-deployment side-loads it to every
// node like any Ray image, and every Serve replica finds the app and engines.
func BuildImage(ctx context.Context, base string, progress func(string)) (string, error) {
	e, err := dockerx.New(dockerx.Options{Node: "controller"})
	if err != nil {
		return "", err
	}
	defer e.Close()
	baseID, err := e.ImageID(ctx, base)
	if errors.Is(err, dockerx.ErrNotFound) {
		return "", fmt.Errorf("tts: image: the controller's Docker Engine does not have the Ray image %s (load or pull it there first)", base)
	}
	if err != nil {
		return "", fmt.Errorf("tts: image: %w", err)
	}
	files, err := ImageContext(base)
	if err != nil {
		return "", err
	}
	tag := ImageTag(baseID, files)
	if _, err := e.ImageID(ctx, tag); err == nil {
		return tag, nil
	}
	if _, err := e.Build(ctx, tag, files, progress); err != nil {
		return "", fmt.Errorf("tts: image: %w", err)
	}
	return tag, nil
}
