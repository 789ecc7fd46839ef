package raydeploy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Warning is something a loader accepted but the user should know: an
// ignored variable, a plaintext password. It never holds a secret value.
type Warning struct {
	// File is the file the warning is about.
	File string
	// Line is the 1-based line in File (0: not known).
	Line int
	// Msg says what was ignored or is unsafe.
	Msg string
}

// String renders "file:line: msg".
func (w Warning) String() string {
	return (&FieldError{File: w.File, Line: w.Line, Msg: w.Msg}).Error()
}

// Warnings are a loader's warnings, in the order found.
type Warnings []Warning

// MaxConfigSize is the largest configuration file the loaders read.
const MaxConfigSize = 4 << 20

// Load reads a cluster from path, by kind: a .yaml or .yml file is the YAML
// format (LoadFile); a .ini file, or a directory holding inventory.ini, is
// an Ansible inventory (LoadInventory with default options). The warnings
// name what was ignored or is unsafe (plaintext passwords).
func Load(path string) (*Cluster, Warnings, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load cluster: %w", err)
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case fi.IsDir():
		inv := filepath.Join(path, "inventory.ini")
		if _, err := os.Stat(inv); err != nil {
			return nil, nil, fmt.Errorf("load cluster: directory %s has no inventory.ini: %w", path, err)
		}
		return LoadInventory(inv, InventoryOptions{})
	case ext == ".ini":
		return LoadInventory(path, InventoryOptions{})
	case ext == ".yaml" || ext == ".yml":
		c, err := LoadFile(path)
		if err != nil {
			return nil, nil, err
		}
		var w Warnings
		for _, f := range c.PlaintextSecrets() {
			w = append(w, Warning{File: path, Msg: fmt.Sprintf("%s is a plaintext secret in the config file; prefer %s_env", f, f)})
		}
		return c, w, nil
	}
	return nil, nil, fmt.Errorf("load cluster: %s: unknown kind (want .yaml, .yml, .ini or a directory with inventory.ini)", path)
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("read config %s: larger than %d bytes", path, MaxConfigSize)
	}
	return data, nil
}
