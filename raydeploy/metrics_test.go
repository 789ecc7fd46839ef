package raydeploy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

// An unreachable node is counted as an SSH dial error on the caller's
// registry, and the failed checkpoint as a failed run.
func TestMetricsCountSSHErrors(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := monitoring.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := &raydeploy.Cluster{
		Name:     "metrics",
		StateDir: filepath.Join(dir, "state"),
		SSH:      raydeploy.SSHConfig{User: "nobody", KnownHostsFile: known, Auth: raydeploy.Auth{KeyFile: key}},
		Head:     raydeploy.Node{Name: "h", Address: "127.0.0.1", Port: 1},
	}
	d, err := raydeploy.New(c, raydeploy.Options{Metrics: m, NoMonitoring: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{Only: raydeploy.CheckpointPrerequisites}); err == nil {
		t.Fatal("deploy to a closed port succeeded")
	}
	if got := testutil.ToFloat64(m.SSHErrors.WithLabelValues("dial")); got < 1 {
		t.Errorf("ssh dial errors = %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(m.CheckpointRuns.WithLabelValues(raydeploy.CheckpointPrerequisites, monitoring.OutcomeFailed)); got != 1 {
		t.Errorf("failed prerequisites-check runs = %v, want 1", got)
	}
}
