package raydeploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLocalNamesFieldAndPath checks that what cannot work is refused
// before anything connects, each problem naming the field and the variable
// or path, and that no secret's value appears.
func TestCheckLocalNamesFieldAndPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	known := write("known_hosts", 0o644, "")
	key := write("key", 0o600, "not really a key")
	loose := write("sudo-loose", 0o644, "hunter2-sudo-secret\n")
	t.Setenv("RD_TEST_SET", "x")
	c := &Cluster{
		Name: "t",
		SSH:  SSHConfig{KnownHostsFile: known, Auth: Auth{KeyFile: key, SudoPasswordFile: loose}},
		Head: Node{Name: "h", Address: "192.0.2.1", Auth: Auth{PasswordEnv: "RD_TEST_SET"}},
		Workers: []Node{
			{Name: "w1", Address: "192.0.2.2", Auth: Auth{SudoPasswordEnv: "RD_TEST_UNSET_VAR"}},
			{Name: "w2", Address: "192.0.2.3", Auth: Auth{KeyFile: filepath.Join(dir, "missing-key")}},
		},
		Monitoring: MonitoringConfig{GrafanaPasswordFile: filepath.Join(dir, "no-grafana-pw")},
	}
	err := c.CheckLocal()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckLocal = %v, want a *ValidationError", err)
	}
	want := []string{
		"ssh.sudo_password_file: " + loose + " has mode 0644",
		"workers[0].sudo_password_env: environment variable RD_TEST_UNSET_VAR is not set",
		"workers[1].key_file: " + filepath.Join(dir, "missing-key") + " does not exist",
		"monitoring.grafana_password_file: " + filepath.Join(dir, "no-grafana-pw") + " does not exist",
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ve.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password file's content: %v", err)
	}

	// Fixed, it passes; the password file is then read for sudo.
	if err := os.Chmod(loose, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RD_TEST_UNSET_VAR", "pw")
	c.Workers[1].Auth.KeyFile = key
	c.Monitoring = MonitoringConfig{}
	if err := c.CheckLocal(); err != nil {
		t.Fatalf("CheckLocal after the fixes: %v", err)
	}
	got, err := sshAuth(c.WithDefaults().Head.Auth)
	if err != nil || got.SudoPassword != "hunter2-sudo-secret" {
		t.Fatalf("sudo password from the file: %v (set: %v)", err, got.SudoPassword != "")
	}
}

func TestMonitoringSectionParsesAndValidates(t *testing.T) {
	c, err := ParseYAML([]byte(`cluster_name: t
head: {name: h, address: 192.0.2.1}
ssh:
  sudo_password_file: /etc/raydeploy/sudo
monitoring:
  enabled: true
  images:
    prometheus: mirror.example/prom/prometheus:v2.53.0
    grafana: mirror.example/grafana/grafana:11.1.0
    node_exporter: mirror.example/prom/node-exporter:v1.8.1
    cadvisor: mirror.example/cadvisor/cadvisor:v0.49.1
  ports: {prometheus: 9091, grafana: 3001, node_exporter: 9101, cadvisor: 8082}
  grafana_password_env: GRAFANA_PW
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SSH.Auth.SudoPasswordFile != "/etc/raydeploy/sudo" || c.Monitoring.Images.CAdvisor != "mirror.example/cadvisor/cadvisor:v0.49.1" ||
		c.Monitoring.Ports.Grafana != 3001 || c.Monitoring.GrafanaPasswordEnv != "GRAFANA_PW" || !c.MonitoringEnabled() {
		t.Fatalf("parsed %+v / %+v", c.SSH.Auth, c.Monitoring)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	d, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := d.stack()
	if s.PrometheusImage != c.Monitoring.Images.Prometheus || s.GrafanaPort != 3001 || s.GrafanaPasswordEnv != "GRAFANA_PW" {
		t.Errorf("the stack does not follow the section: %+v", s)
	}

	c.Monitoring.Ports.Grafana = 9091
	c.Monitoring.GrafanaPasswordFile = "/x"
	c.SSH.Auth.SudoPasswordEnv = "X"
	err = c.Validate()
	for _, w := range []string{"monitoring.ports.grafana: 9091 collides with monitoring.ports.prometheus",
		"monitoring.grafana_password_file: exclusive with grafana_password_env", "ssh.sudo_password_file: exclusive with sudo_password_env"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate = %v, want %q", err, w)
		}
	}

	off, err := ParseYAML([]byte("cluster_name: t\nhead: {name: h, address: 192.0.2.1}\nmonitoring: {enabled: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := New(off, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, err := d2.Checkpoints().Get(CheckpointMonitoring); err == nil {
		t.Error("monitoring.enabled: false still lists monitoring-deployment")
	}
}
