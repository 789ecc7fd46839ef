package raydeploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestLoadFileFixture(t *testing.T) {
	c, err := LoadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	want := &Cluster{
		Name: "lab",
		SSH: SSHConfig{
			User: "ray", Port: 22,
			Auth:           Auth{KeyFile: "~/.ssh/id_ed25519", SudoPasswordEnv: "RAYDEPLOY_SUDO_PASSWORD"},
			KnownHostsFile: "~/.ssh/known_hosts",
			Jump:           &JumpHost{Address: "bastion.example.net", User: "jump"},
			Timeouts: SSHTimeouts{Connect: Duration(10 * time.Second), ConnectAttempts: 5,
				ConnectTotal: Duration(30 * time.Second), KeepaliveInterval: Duration(15 * time.Second),
				KeepaliveTimeout: Duration(15 * time.Second)},
		},
		Head: Node{Name: "head", Address: "192.0.2.10", Labels: map[string]string{"example.com/rack": "r1"},
			Resources: Resources{CPUs: new(0)}},
		Workers: []Node{
			{Name: "w1", Address: "192.0.2.11"},
			{Name: "w2", Address: "192.0.2.12"},
			{Name: "w3", Address: "192.0.2.13", Port: 2222},
			{Name: "gpu1", Address: "gpu1.example.net", User: "admin", Auth: Auth{KeyFile: "~/.ssh/gpu_ed25519"},
				Resources: Resources{GPUs: new(2), Custom: map[string]float64{"tts_slot": 4}}},
		},
		StateDir: "~/.local/state/raydeploy/lab",
		Ray: RayConfig{
			Version: "2.58.0", Image: "rayproject/ray:2.58.0-py312-cpu", Ports: DefaultRayPorts(),
			Resources:      Resources{CPUFraction: 0.8, MemoryFraction: 0.8},
			ShmSize:        8 << 30,
			Env:            map[string]string{"RAY_LOG_LEVEL": "INFO"},
			TokenAuth:      TokenAuth{Enabled: true, TokenEnv: "RAY_AUTH_TOKEN"},
			ExtraStartArgs: []string{"--disable-usage-stats"},
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("LoadFile (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("fixture does not validate: %v", err)
	}
}

func TestDocExampleIsTheFixture(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// The first indented block after the format's heading is the example.
	_, after, ok := strings.Cut(string(doc), "# The YAML format")
	if !ok {
		t.Fatal("package doc has no YAML format section")
	}
	var b strings.Builder
	inBlock := false
	for _, l := range strings.Split(after, "\n") {
		rest, isTab := strings.CutPrefix(l, "//\t")
		switch {
		case isTab:
			inBlock = true
			b.WriteString(rest + "\n")
		case inBlock && l == "//":
			b.WriteString("\n")
		case inBlock:
			inBlock = false
		}
		if !inBlock && b.Len() > 0 {
			break
		}
	}
	fromDoc, err := ParseYAML([]byte(b.String()))
	if err != nil {
		t.Fatalf("the example in the package doc does not parse: %v", err)
	}
	fixture, err := LoadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fixture, fromDoc); diff != "" {
		t.Errorf("package doc example differs from testdata/cluster.yaml (-fixture +doc):\n%s", diff)
	}
}

func TestParseYAMLErrorsNameLineAndField(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown top-level key", "cluster_name: a\nprovider: {type: local}\n",
			[]string{`line 2: unknown key "provider"`}},
		{"unknown node key", "cluster_name: a\nhead:\n  address: 192.0.2.1\nworkers:\n  - address: 192.0.2.2\n    adress: x\n",
			[]string{`line 6: workers[0]: unknown key "adress"`}},
		{"unknown ssh key", "cluster_name: a\nssh:\n  user: u\n  password_file: x\n",
			[]string{`line 4: ssh: unknown key "password_file"`}},
		{"role is not configurable", "cluster_name: a\nhead: {address: 192.0.2.1, role: worker}\n",
			[]string{`line 2: head: unknown key "role"`}},
		{"wrong type port", "cluster_name: a\nhead:\n  address: 192.0.2.1\n  port: ssh\n",
			[]string{`line 4: head.port: expected an integer, got !!str "ssh"`}},
		{"wrong type in flow mapping", "cluster_name: a\nworkers:\n  - {address: 192.0.2.2, port: 22}\n  - {address: 192.0.2.3, port: x}\n",
			[]string{`line 4: workers[1].port: expected an integer, got !!str "x"`}},
		{"list where scalar", "cluster_name: a\nray:\n  version:\n    - 2.58.0\n",
			[]string{`line 4: ray.version: expected a string, got !!seq`}},
		{"workers not a list", "cluster_name: a\nworkers: 192.0.2.2\n",
			[]string{`line 2: workers: expected a list, got !!str "192.0.2.2"`}},
		{"bool", "cluster_name: a\nssh: {trust_on_first_use: maybe}\n",
			[]string{`line 2: ssh.trust_on_first_use: expected true or false, got !!str "maybe"`}},
		{"bad size", "cluster_name: a\nray:\n  shm_size: lots\n",
			[]string{`line 3: ray.shm_size: invalid size "lots": want a number of bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`}},
		{"password not a string", "cluster_name: a\nhead:\n  address: h\n  password: [a]\n",
			[]string{`line 4: head.password: expected a string, got !!seq`}},
		{"repeated key", "cluster_name: a\ncluster_name: b\n",
			[]string{`line 2: cluster_name: repeated key "cluster_name" (first at line 1)`}},
		{"several", "cluster_name: a\nhead:\n  port: x\n  colour: red\n",
			[]string{`line 3: head.port: expected an integer, got !!str "x"`, `line 4: head: unknown key "colour"`}},
		{"syntax", "cluster_name: [a\n", []string{"line 1: did not find expected ',' or ']'"}},
		{"empty", "", []string{"empty configuration"}},
		{"two documents", "cluster_name: a\n---\ncluster_name: b\n", []string{"line 2: more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseYAML([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseYAML = %+v, want an error", c)
			}
			if diff := cmp.Diff(tt.want, problemStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("cluster_name: a\nhead:\n  adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p)
	if want := p + `:3: head: unknown key "adress"`; err == nil || err.Error() != want {
		t.Errorf("LoadFile error = %v, want %q", err, want)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file error = %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestLoadDispatch(t *testing.T) {
	c, w, err := Load("testdata/cluster.yaml")
	if err != nil || c.Name != "lab" || len(w) != 0 {
		t.Errorf("Load(yaml) = %v, %v, %v", c, w, err)
	}
	c, w, err = Load("testdata/seed")
	if err != nil || c.Head.Name != "MASTER" || len(w) == 0 {
		t.Errorf("Load(dir) = %v, %v, %v", c, w, err)
	}
	c2, _, err := Load("testdata/seed/inventory.ini")
	if err != nil || !cmp.Equal(c, c2) {
		t.Errorf("Load(ini) differs from Load(dir): %v", err)
	}
	if _, _, err := Load("doc.go"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("Load(.go) = %v, want unknown kind", err)
	}
	if _, _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no inventory.ini") {
		t.Errorf("Load(empty dir) = %v, want no inventory.ini", err)
	}

	p := filepath.Join(t.TempDir(), "pw.yml")
	if err := os.WriteFile(p, []byte("cluster_name: a\nhead: {address: 192.0.2.1, password: topsecret-yaml}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, w, err = Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0].String(), "head.password is a plaintext secret") || strings.Contains(w[0].String(), "topsecret") {
		t.Errorf("warnings = %v, want one naming head.password without the value", w)
	}
	if c.Head.Auth.Password.Reveal() != "topsecret-yaml" {
		t.Errorf("password not read")
	}
	assertNoSecret(t, c, "topsecret")
}

func TestYAMLRoundTripWithoutSecrets(t *testing.T) {
	c, err := LoadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseYAML(out)
	if err != nil {
		t.Fatalf("re-parsing marshalled YAML: %v\n%s", err, out)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("YAML round trip (-want +got):\n%s", diff)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Cluster
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, &fromJSON); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}
