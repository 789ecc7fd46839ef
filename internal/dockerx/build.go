package dockerx

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/docker/docker/api/types/build"
)

// Build builds an image tagged tag from a build context of files (path ->
// content; "Dockerfile" among them) with the Engine's classic builder, and
// returns the image's ID. Progress lines go to progress when it is not nil.
func (e *Engine) Build(ctx context.Context, tag string, files map[string][]byte, progress func(string)) (string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: int64(fs.FileMode(0o644)), Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := e.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Labels: map[string]string{"io.raydeploy.built-by": "raydeploy"},
	})
	if err != nil {
		return "", fmt.Errorf("build %s on %s: %w", tag, e.node, err)
	}
	defer resp.Body.Close()
	if err := readJSONMessages(resp.Body, progress, fmt.Sprintf("build %s on %s", tag, e.node)); err != nil {
		return "", err
	}
	return e.ImageID(ctx, tag)
}
