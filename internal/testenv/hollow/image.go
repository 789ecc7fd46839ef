package hollow

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// ImageArchive builds a docker-save archive (the classic layout: manifest.json,
// <config hex>.json, <layer>/layer.tar) of one image tagged ref, whose config
// carries the labels that make a hollow node's `ray --version` answer
// rayVersion and pythonVersion, and one layer of layerBytes random bytes. It
// returns the archive and the image ID. A real Engine loads it too.
func ImageArchive(ref, rayVersion, pythonVersion string, layerBytes int) ([]byte, string, error) {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	payload := make([]byte, layerBytes)
	if _, err := rand.Read(payload); err != nil {
		return nil, "", err
	}
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := lw.WriteHeader(&tar.Header{Name: "payload.bin", Mode: 0o644, Size: int64(len(payload)), ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
		return nil, "", err
	}
	if _, err := lw.Write(payload); err != nil {
		return nil, "", err
	}
	if err := lw.Close(); err != nil {
		return nil, "", err
	}
	diff := sha256.Sum256(layer.Bytes())
	diffID := "sha256:" + hex.EncodeToString(diff[:])
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": mod.Format(time.RFC3339),
		"config": map[string]any{
			"Cmd":    []string{"/bin/sh"},
			"Labels": map[string]string{LabelRayVersion: rayVersion, LabelPythonVersion: pythonVersion},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]string{{"created": mod.Format(time.RFC3339), "created_by": "hollow.ImageArchive"}},
	})
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(cfg)
	hexID := hex.EncodeToString(sum[:])
	layerPath := hex.EncodeToString(diff[:]) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{"Config": hexID + ".json", "RepoTags": []string{ref}, "Layers": []string{layerPath}}})
	if err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, bytes.NewReader(b))
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{hexID + ".json", cfg}, {layerPath, layer.Bytes()}, {"manifest.json", manifest}} {
		if err := add(f.name, f.b); err != nil {
			return nil, "", fmt.Errorf("image archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), "sha256:" + hexID, nil
}
