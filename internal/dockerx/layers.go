package dockerx

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/image"
)

// archiveImage is one image of a docker save archive: the tar entry of
// each layer with its diff ID, in the order of the image's root file system.
type archiveImage struct {
	entries []string // the tar entry of layer i (manifest.json's Layers)
	diffIDs []string // layer i's diff ID (the config's rootfs.diff_ids)
	sizes   map[string]int64
	linked  map[string]bool // entries that a link in the archive points to
}

// readArchiveImage reads ref's layers from a docker save archive at file:
// one pass over the headers for manifest.json, the entries' sizes and the
// link targets, and one for the config (tar.Reader seeks past contents).
func readArchiveImage(file, ref string) (*archiveImage, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &archiveImage{sizes: map[string]int64{}, linked: map[string]bool{}}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		name := path.Clean(h.Name)
		a.sizes[name] = h.Size
		switch h.Typeflag {
		case tar.TypeSymlink:
			a.linked[path.Join(path.Dir(name), h.Linkname)] = true
		case tar.TypeLink:
			a.linked[path.Clean(h.Linkname)] = true
		}
		if name == "manifest.json" {
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&manifest); err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", file, err)
			}
		}
	}
	var config string
	for _, m := range manifest {
		if len(manifest) == 1 || slices.Contains(m.RepoTags, ref) {
			config, a.entries = path.Clean(m.Config), m.Layers
			break
		}
	}
	if config == "" {
		return nil, fmt.Errorf("%s: %s is not in the archive's manifest.json", file, ref)
	}
	for i, e := range a.entries {
		a.entries[i] = path.Clean(e)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr = tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: config %s: %w", file, config, err)
		}
		if path.Clean(h.Name) != config {
			continue
		}
		var cfg struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&cfg); err != nil {
			return nil, fmt.Errorf("%s: config %s: %w", file, config, err)
		}
		a.diffIDs = cfg.RootFS.DiffIDs
		break
	}
	if len(a.diffIDs) != len(a.entries) {
		return nil, fmt.Errorf("%s: %d layers in manifest.json, %d diff IDs in the config", file, len(a.entries), len(a.diffIDs))
	}
	return a, nil
}

// skippable returns the layer entries of a that need not be sent to an
// Engine holding the layer chains in have (see layerChains): an entry is
// left out when the Engine has, for every position that uses it, the whole
// chain of layers up to and including it, and no link in the archive points
// to it. The Engine's loader then finds those layers by chain ID and never
// opens their files; the rest of the archive is sent as it is.
func (a *archiveImage) skippable(have map[string]bool) map[string]bool {
	need := map[string]bool{}
	for i, e := range a.entries {
		if !have[strings.Join(a.diffIDs[:i+1], ",")] || a.linked[e] {
			need[e] = true
		}
	}
	skip := map[string]bool{}
	for _, e := range a.entries {
		if !need[e] {
			skip[e] = true
		}
	}
	return skip
}

// layerChains returns every chain of layers the Engine's images are built
// of, each as its diff IDs joined by commas, from the root layer up: an image
// of layers [a b c] gives "a", "a,b" and "a,b,c", all of which its layer
// store holds.
func (e *Engine) layerChains(ctx context.Context) (map[string]bool, error) {
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list images on %s: %w", e.node, err)
	}
	have := map[string]bool{}
	for _, im := range imgs {
		in, err := e.cli.ImageInspect(ctx, im.ID)
		if err != nil {
			continue // removed meanwhile
		}
		for i := range in.RootFS.Layers {
			have[strings.Join(in.RootFS.Layers[:i+1], ",")] = true
		}
	}
	return have, nil
}

// graphDriverStore reports whether the Engine keeps images in its graph
// driver's layer store (overlay2, vfs, ...), whose loader skips layers it
// has by chain ID. With the containerd image store the loader imports an
// OCI layout and needs every blob, so nothing is left out there.
func (e *Engine) graphDriverStore(ctx context.Context) (bool, error) {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("docker info on %s: %w", e.node, err)
	}
	for _, kv := range info.DriverStatus {
		if kv[0] == "driver-type" && strings.Contains(kv[1], "containerd.snapshotter") {
			return false, nil
		}
	}
	return true, nil
}

// filterArchive streams the tar at file without the entries in skip.
func filterArchive(file string, skip map[string]bool) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(func() error {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			tr := tar.NewReader(f)
			tw := tar.NewWriter(pw)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					return tw.Close()
				}
				if err != nil {
					return err
				}
				if skip[path.Clean(h.Name)] {
					continue
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}())
	}()
	return pr
}

// tarEntryCost is what an entry of size n takes in a tar stream: a header
// block and its data padded to 512-byte blocks.
func tarEntryCost(n int64) int64 { return 512 + (n+511)/512*512 }
