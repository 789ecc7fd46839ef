package monitoring

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestAdminPasswordGeneratedOnceAndPrivate(t *testing.T) {
	var logs bytes.Buffer
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	dir := filepath.Join(t.TempDir(), "state", "prod")
	secret, path, err := AdminPassword(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 24 || secret == "admin123" || secret == "admin" {
		t.Errorf("generated password has %d characters; want 24 or more", len(secret))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %04o, want 0600", info.Mode().Perm())
	}
	dinfo, _ := os.Stat(dir)
	if dinfo.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %04o, want 0700", dinfo.Mode().Perm())
	}
	again, path2, err := AdminPassword(dir)
	if err != nil || again != secret || path2 != path {
		t.Errorf("second call: %v, same password %v, path %s", err, again == secret, path2)
	}
	other, _, _ := AdminPassword(t.TempDir())
	if other == secret {
		t.Error("two state dirs got the same password")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries (temp files left?)", len(entries))
	}

	// Concurrent first calls agree.
	fresh := t.TempDir()
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() { got[i], _, _ = AdminPassword(fresh) })
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || g == "" {
			t.Fatalf("concurrent calls disagree: %q vs %q", g, got[0])
		}
	}

	// The password appears in no spec and no generated file but its own.
	s := Stack{}
	specs, _ := json.Marshal(s.Services("prod", threeNodes))
	if bytes.Contains(specs, []byte(secret)) {
		t.Error("password in the service specs")
	}
	files, err := s.HeadFiles("prod", threeNodes, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		slog.Info("upload", "file", f)
		if !f.Secret && bytes.Contains(f.Data, []byte(secret)) {
			t.Errorf("password in %s", f.Path)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log captured: the check below would prove nothing")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("password in the log output")
	}
}

func TestAdminPasswordRefusesLooseFile(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := AdminPassword(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, AdminPasswordFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := AdminPassword(dir)
	if err == nil || !strings.Contains(err.Error(), "0644") {
		t.Errorf("world-readable password file: err %v", err)
	}
	if err != nil {
		data, _ := os.ReadFile(path)
		if strings.Contains(err.Error(), strings.TrimSpace(string(data))) {
			t.Error("error shows the password")
		}
	}
}

func TestAdminPasswordFromEnv(t *testing.T) {
	t.Setenv("RD_TEST_GRAFANA_PW", "users-own-secret-1")
	s := Stack{GrafanaPasswordEnv: "RD_TEST_GRAFANA_PW"}
	dir := t.TempDir()
	secret, path, err := s.AdminPassword(dir)
	if err != nil || secret != "users-own-secret-1" || path != "" {
		t.Errorf("env password: %v %q", err, path)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Error("a password file was written although the user gave one")
	}
	t.Setenv("RD_TEST_GRAFANA_PW", "admin123")
	if _, _, err := s.AdminPassword(dir); err == nil || strings.Contains(err.Error(), "admin123") {
		t.Errorf("short user password: err %v (must refuse without showing it)", err)
	}
	gen, path, err := Stack{GrafanaPasswordEnv: "RD_TEST_UNSET_VAR"}.AdminPassword(dir)
	if err != nil || path == "" || len(gen) < 24 {
		t.Errorf("unset env var: want a generated password, got %v %q", err, path)
	}
}
