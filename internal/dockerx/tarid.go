package dockerx

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// tarImageID finds ref's config digest in a docker save archive. Both the
// classic layout (Config: "<hex>.json") and the OCI layout (Config:
// "blobs/sha256/<hex>") are understood.
func tarImageID(file, ref string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s: no manifest.json", file)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var manifest []struct {
			Config   string
			RepoTags []string
		}
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
			return "", fmt.Errorf("%s: manifest.json: %w", file, err)
		}
		for _, m := range manifest {
			if ref != "" && len(manifest) > 1 && !slices.Contains(m.RepoTags, ref) {
				continue
			}
			hex := strings.TrimSuffix(path.Base(m.Config), ".json")
			return "sha256:" + hex, nil
		}
		return "", fmt.Errorf("%s: %s is not in the archive", file, ref)
	}
}
