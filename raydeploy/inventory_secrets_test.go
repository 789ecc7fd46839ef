package raydeploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// leak is the secret value planted in every input below; no message may
// show it, whole or in part.
const leak = "Hunter2-S3CRET-value"

// assertNoLeak fails if the error or a warning shows the planted secret
// (or its distinctive middle), and checks the error is a *ValidationError
// whose problems name their file.
func assertNoLeak(t *testing.T, err error, warns Warnings) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T (%v), want a *ValidationError", err, err)
	}
	var msgs []string
	for _, p := range ve.Problems {
		msgs = append(msgs, p.Error())
		if p.File == "" {
			t.Errorf("problem names no file: %v", p)
		}
	}
	for _, w := range warns {
		msgs = append(msgs, w.String())
	}
	for _, m := range append(msgs, err.Error()) {
		if strings.Contains(m, "Hunter2") || strings.Contains(m, "S3CRET") {
			t.Errorf("message shows the secret: %s", m)
		}
	}
	return msgs
}

// wantMessage fails unless one of msgs has every part.
func wantMessage(t *testing.T, msgs []string, parts ...string) {
	t.Helper()
	for _, m := range msgs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no message has all of %q: %q", parts, msgs)
}

func TestInventoryErrorsNeverShowSecrets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // parts of one message: file:line and the key
	}{
		{"variable as a host line", "[head_nodes]\nh1\nansible_password=" + leak + "\n",
			[]string{"inv.ini:3:", "ansible_password=[redacted]", "[head_nodes:vars]"}},
		{"variable before any section", "ansible_become_password=" + leak + "\n[head_nodes]\nh1\n",
			[]string{"inv.ini:1:", "ansible_become_password=[redacted]"}},
		{"with a port", "[head_nodes]\nh1\nansible_sudo_pass=" + leak + ":22\n",
			[]string{"inv.ini:3:", "ansible_sudo_pass=[redacted]"}},
		{"with a range", "[head_nodes]\nh1\nvault_token=" + leak + "[1:3]\n",
			[]string{"inv.ini:3:", "vault_token=[redacted]"}},
		{"unknown secret-like name", "[worker_nodes]\nsudo_password=" + leak + "\n[head_nodes]\nh1\n",
			[]string{"inv.ini:2:", "sudo_password=[redacted]"}},
		{"as a section name", "[head_nodes]\nh1\n[ansible_password=" + leak + "]\n",
			[]string{"inv.ini:3:", "invalid group name ("}},
		{"unterminated quote", "[head_nodes]\nh1 ansible_password='" + leak + "\n",
			[]string{"inv.ini:2:", "unterminated quote"}},
		{"text after a quoted group var", "[head_nodes]\nh1\n[all:vars]\nansible_password = \"" + leak + "\" x\n",
			[]string{"inv.ini:4:", "ansible_password", "text after the closing quote"}},
		{"split at the equals sign", "[head_nodes]\nh1\n[worker_nodes]\nansible_password= " + leak + "\n",
			[]string{"inv.ini:4:", "ansible_password=[redacted]"}},
		{"beside a bad variable", "[head_nodes]\nh1 ansible_password=" + leak + " ansible_port=ssh\n",
			[]string{"inv.ini:2:", "ansible_port"}},
		{"two heads, one with a password", "[head_nodes]\nh1 ansible_password=" + leak + "\nh2\n",
			[]string{"inv.ini:1:", "h1 (line 2), h2 (line 3)"}},
		{"password as the port", "[head_nodes]\nh1:" + leak + "\n[all:vars]\nansible_password=" + leak + "\n",
			[]string{"inv.ini:2:", "host pattern"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warns, err := ParseInventory("inv.ini", []byte(tt.in), InventoryOptions{})
			if err == nil {
				t.Fatalf("ParseInventory = %+v, want an error", c)
			}
			wantMessage(t, assertNoLeak(t, err, warns), tt.want...)
		})
	}
}

// writeFiles writes name -> content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVarsFilesErrorsNeverShowSecrets(t *testing.T) {
	ini := "[head_nodes]\nh1\n[worker_nodes]\nw1\n"
	tests := []struct {
		name, file, data string
		want             []string
	}{
		{"group_vars unknown alias", "group_vars/all.yml", "ray_version: 2.58.0\nansible_password: *" + leak + "\n",
			[]string{"all.yml:2:", "alias *[redacted]"}},
		{"group_vars unterminated quote", "group_vars/head_nodes.yml", "ansible_become_password: \"" + leak + "\n",
			[]string{"head_nodes.yml:"}},
		{"group_vars unclosed flow", "group_vars/all/secrets.yaml", "ansible_password: [" + leak + "\n",
			[]string{"secrets.yaml:"}},
		{"group_vars list", "group_vars/all.yml", "ansible_password:\n  - " + leak + "\n",
			[]string{"all.yml:1:", "ansible_password: must be a single value"}},
		{"group_vars alias of a secret", "group_vars/all.yml", "ansible_password: &pw " + leak + "\nray_memory: *pw\n",
			[]string{"all.yml:2:", "ray_memory: must be a single value"}},
		{"group_vars secret as a key", "group_vars/all.yml", "ansible_password=" + leak + ": 1\n",
			[]string{"all.yml:1:", "not a variable name"}},
		{"host_vars unknown alias", "host_vars/w1.yml", "ansible_ssh_pass: *" + leak + "\n",
			[]string{"w1.yml:1:", "alias *[redacted]"}},
		{"host_vars tab indentation", "host_vars/h1.yaml", "ansible_password: x\n\tsudo_password: " + leak + "\n",
			[]string{"h1.yaml:"}},
		{"host_vars a mapping", "host_vars/h1/vault.yml", "ansible_password: {value: " + leak + "}\n",
			[]string{"vault.yml:1:", "ansible_password: must be a single value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"inventory.ini": ini, tt.file: tt.data})
			c, warns, err := LoadInventory(dir, InventoryOptions{})
			if err == nil {
				t.Fatalf("LoadInventory = %+v, want an error", c)
			}
			wantMessage(t, assertNoLeak(t, err, warns), tt.want...)
		})
	}
}

func TestHostVars(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"inventory.ini":          "[head_nodes]\nh1 ansible_user=line ray_num_cpus=2\n[worker_nodes]\nw1\n",
		"group_vars/all.yml":     "ansible_user: group\n",
		"host_vars/h1.yml":       "ansible_user: hostfile\nansible_password: " + leak + "\n",
		"host_vars/w1/a.yaml":    "ansible_port: 2200\n",
		"host_vars/nosuch.yml":   "ansible_port: 1\n",
		"host_vars/README.txt":   "not read\n",
		"host_vars/.hidden.yml":  ": not read\n",
		"group_vars/worker.yml.": "not read\n",
	})
	c, warns, err := LoadInventory(dir, InventoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Head.User != "hostfile" || c.Head.Auth.Password.Reveal() != leak || c.Head.Resources.CPUs == nil || *c.Head.Resources.CPUs != 2 {
		t.Errorf("head = %+v, want host_vars' user over the host line's and group_vars', its password, the line's CPUs", c.Head)
	}
	if len(c.Workers) != 1 || c.Workers[0].Port != 2200 || c.Workers[0].User != "group" {
		t.Errorf("workers = %+v, want w1 with host_vars/w1/a.yaml's port", c.Workers)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
		if strings.Contains(w.String(), "Hunter2") {
			t.Errorf("warning shows the password: %s", w)
		}
	}
	wantMessage(t, got, "host_vars/h1.yml:2:", "host h1: ansible_password is a plaintext SSH password")
	wantMessage(t, got, "host_vars/nosuch.yml", `host "nosuch" is not in the inventory; file ignored`)
}

func TestClusterYAMLErrorsNeverShowSecrets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown alias", "cluster_name: a\nhead:\n  address: h\n  password: *" + leak + "\n", []string{"c.yaml:4:", "alias *[redacted]"}},
		{"unknown alias, sudo", "cluster_name: a\nssh:\n  sudo_password: *" + leak + "\n", []string{"c.yaml:3:"}},
		{"unterminated", "cluster_name: a\nssh:\n  password: '" + leak + "\n", []string{"c.yaml:"}},
		{"wrong type", "cluster_name: a\nssh:\n  password: [" + leak + "]\n", []string{"c.yaml:3:", "password"}},
		{"misplaced", "cluster_name: a\npassword: " + leak + "\n", []string{"c.yaml:2:", `unknown key "password"`}},
		{"tab", "cluster_name: a\nssh:\n\tpassword: " + leak + "\n", []string{"c.yaml:3:"}},
		{"misindented under a port", "cluster_name: a\nssh:\n  port: 22\n   password: " + leak + "\n", []string{"c.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			writeFiles(t, filepath.Dir(p), map[string]string{"c.yaml": tt.in})
			c, warns, err := Load(p)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			msgs := assertNoLeak(t, err, warns)
			for i := range msgs {
				msgs[i] = strings.TrimPrefix(msgs[i], filepath.Dir(p)+"/")
			}
			wantMessage(t, msgs, tt.want...)
		})
	}
}

func TestRedact(t *testing.T) {
	var s secretSet
	s.scan([]byte("h1 ansible_user=bob ansible_password='pw one' x=1 db_token=tok2\nkey_file: /k\npassword: &a \"quoted pw\"\n"))
	tests := map[string]string{
		"got 'pw one' here":         "got '[redacted]' here",
		"tok2 and xtok2 and tok2x":  "[redacted] and xtok2 and tok2x",
		`"quoted pw"`:               `"[redacted]"`,
		"/k is a path, not secret":  "/k is a path, not secret",
		"bob is a user":             "bob is a user",
		"one alone is a word of it": "[redacted] alone is a word of it",
	}
	for in, want := range tests {
		if got := s.redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	for _, n := range []string{"ansible_password", "ansible_become_pass", "RAY_AUTH_TOKEN", "client_secret", "api_key"} {
		if !secretLikeName(n) {
			t.Errorf("secretLikeName(%q) = false", n)
		}
	}
	for _, n := range []string{"sudo_password_file", "token_env", "ansible_user", "ray_memory"} {
		if secretLikeName(n) {
			t.Errorf("secretLikeName(%q) = true", n)
		}
	}
}
