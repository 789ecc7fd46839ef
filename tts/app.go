package tts

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// The Serve application's Python package, raydeploy_tts (tts/app/raydeploy_tts).
//
//go:embed app/raydeploy_tts/*.py
var appFiles embed.FS

// Where the Serve application lives in Python terms.
const (
	// PythonPackage is the package holding the app.
	PythonPackage = "raydeploy_tts"
	// ImportPath is the Serve application builder (its args are the settings).
	ImportPath = "raydeploy_tts.serve_app:build_app"
	// DeploymentName is the app's one Serve deployment.
	DeploymentName = "TTSService"
)

// AppFiles returns the app's Python files: paths are PythonPackage/<file>.py.
func AppFiles() fs.FS {
	sub, err := fs.Sub(appFiles, "app")
	if err != nil {
		panic(err) // the embedded tree always has app/
	}
	return sub
}

// WriteApp writes the app's Python package under dir (dir/raydeploy_tts/...),
// so that dir can go on PYTHONPATH.
func WriteApp(dir string) error {
	return fs.WalkDir(AppFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(AppFiles(), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("tts: write app: %w", err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return fmt.Errorf("tts: write app %s: %w", path.Base(p), err)
		}
		return nil
	})
}
