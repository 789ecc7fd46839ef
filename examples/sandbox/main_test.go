package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The temporary directory the sandbox makes is removed on exit once the
// cluster is gone, kept (and named) when nodes were left behind; a
// directory given with -dir is never removed.
func TestWorkDirRemovesOnlyItsOwn(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	made, leave, err := workDir("")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(made, "cluster.yaml"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := leave(nil); msg != "removed "+made {
		t.Errorf("leave(nil) = %q, want %q", msg, "removed "+made)
	}
	if _, err := os.Stat(made); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the sandbox's own directory %s is still there after exit (%v)", made, err)
	}

	kept, leave, err := workDir("")
	if err != nil {
		t.Fatal(err)
	}
	if msg := leave(errors.New("node-1 not removed")); !strings.HasPrefix(msg, "kept "+kept+":") {
		t.Errorf("with nodes left behind: %q, want it kept and named", msg)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("removed %s although its key reaches nodes left behind: %v", kept, err)
	}

	given := filepath.Join(t.TempDir(), "mine")
	dir, leave, err := workDir(given)
	if err != nil || dir != given {
		t.Fatalf("workDir(%q) = %q, %v", given, dir, err)
	}
	if fi, err := os.Stat(given); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("-dir %s not created 0700: %v, %v", given, fi, err)
	}
	if msg := leave(nil); !strings.HasPrefix(msg, "kept "+given+" (given with -dir)") {
		t.Errorf("-dir: %q, want it kept and named", msg)
	}
	if _, err := os.Stat(given); err != nil {
		t.Errorf("removed the -dir directory %s: %v", given, err)
	}
}
