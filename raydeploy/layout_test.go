package raydeploy

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/fanout"
)

// The config model and its loaders stand apart from the checkpoints: their
// files import the standard library and the YAML parser, nothing else.
func TestConfigFilesImportNoDeployMachinery(t *testing.T) {
	var files []string
	for _, pat := range []string{"config*.go", "defaults.go", "inventory*.go"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, ".") && path != "go.yaml.in/yaml/v3" {
				t.Errorf("%s imports %s: the config files import only the standard library and the YAML parser", f, path)
			}
		}
	}
}

func TestDefaultConcurrencyIsTheFanouts(t *testing.T) {
	if DefaultConcurrency != fanout.DefaultConcurrency {
		t.Errorf("DefaultConcurrency %d, fanout's %d", DefaultConcurrency, fanout.DefaultConcurrency)
	}
}
