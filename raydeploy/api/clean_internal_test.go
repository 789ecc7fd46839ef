package api

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

type dirOnly struct {
	Deployer
	c *raydeploy.Cluster
}

func (d dirOnly) Cluster() *raydeploy.Cluster { return d.c }

func TestCleanHidesStatePaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := &Server{d: dirOnly{c: &raydeploy.Cluster{StateDir: dir}}}
	err := &checkpoint.CorruptStateError{Path: filepath.Join(dir, "ledger.json"), Err: errors.New("bad")}
	got := s.clean(err.Error())
	if strings.Contains(got, dir) || !strings.Contains(got, "<state-dir>/ledger.json") {
		t.Fatalf("clean(%q) = %q", err, got)
	}
	if home, _ := os.UserHomeDir(); home != "" && home != "/" {
		if got := s.clean("open " + home + "/.ssh/id_ed25519: denied"); strings.Contains(got, home) {
			t.Fatalf("home directory shown: %q", got)
		}
	}
}
