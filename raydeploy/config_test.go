package raydeploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// validCluster is a small cluster that validates.
func validCluster() *Cluster {
	return &Cluster{
		Name: "lab",
		SSH:  SSHConfig{User: "ray", Auth: Auth{KeyFile: "~/.ssh/id_ed25519"}},
		Head: Node{Name: "head", Address: "192.0.2.10"},
		Workers: []Node{
			{Name: "w1", Address: "192.0.2.11"},
			{Name: "w2", Address: "192.0.2.12"},
			{Name: "w3", Address: "192.0.2.13"},
		},
	}
}

func TestValidateAcceptsValidCluster(t *testing.T) {
	if err := validCluster().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	if err := validCluster().WithDefaults().Validate(); err != nil {
		t.Fatalf("WithDefaults().Validate() = %v, want nil", err)
	}
}

func TestValidateFieldPaths(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Cluster)
		want   []string
	}{
		{"empty name", func(c *Cluster) { c.Name = "" }, []string{"cluster_name: must not be empty"}},
		{"upper-case name", func(c *Cluster) { c.Name = "Lab" }, []string{`cluster_name: "Lab" must be lower-case letters, digits and '-', starting and ending with a letter or digit`}},
		{"name too long", func(c *Cluster) { c.Name = strings.Repeat("a", 64) }, []string{"cluster_name: " + `"` + strings.Repeat("a", 64) + `" longer than 63 characters`}},
		{"worker address empty", func(c *Cluster) { c.Workers[1].Address = "" }, []string{"workers[1].address: must not be empty"}},
		{"head port out of range", func(c *Cluster) { c.Head.Port = 70000 }, []string{"head.port: 70000 out of range 1-65535"}},
		{"negative port", func(c *Cluster) { c.Workers[0].Port = -1 }, []string{"workers[0].port: -1 out of range 1-65535"}},
		{"ssh port", func(c *Cluster) { c.SSH.Port = 65536 }, []string{"ssh.port: 65536 out of range 1-65535"}},
		{"duplicate name", func(c *Cluster) { c.Workers[2].Name = "w1" }, []string{`workers[2].name: duplicate of workers[0].name "w1"`}},
		{"duplicate of unnamed address", func(c *Cluster) {
			c.Workers[0].Name = ""
			c.Workers[2].Name = "192.0.2.11"
		}, []string{`workers[2].name: duplicate of workers[0].address "192.0.2.11"`}},
		{"duplicate address and port", func(c *Cluster) { c.Workers[2].Address = "192.0.2.10" }, []string{"workers[2].address: 192.0.2.10 port 22 duplicate of head.address"}},
		{"duplicate address explicit default port", func(c *Cluster) {
			c.Workers[2].Address = "192.0.2.10"
			c.Workers[2].Port = 22
		}, []string{"workers[2].address: 192.0.2.10 port 22 duplicate of head.address"}},
		{"same address other port is fine", func(c *Cluster) {
			c.Workers[2].Address = "192.0.2.10"
			c.Workers[2].Port = 2222
		}, nil},
		{"bad address", func(c *Cluster) { c.Workers[0].Address = "-oProxyCommand=x" }, []string{`workers[0].address: "-oProxyCommand=x" is neither an IP address nor a host name`}},
		{"address with port", func(c *Cluster) { c.Head.Address = "192.0.2.10:22" }, []string{`head.address: "192.0.2.10:22" is neither an IP address nor a host name`}},
		{"bad user", func(c *Cluster) { c.Workers[0].User = "-root" }, []string{`workers[0].user: "-root" is not a valid user name`}},
		{"bad name", func(c *Cluster) { c.Workers[0].Name = "w 1" }, []string{`workers[0].name: "w 1" must not contain spaces or slashes (at most 253 characters)`}},
		{"bad label key", func(c *Cluster) { c.Workers[1].Labels = map[string]string{"bad key": "x"} }, []string{`workers[1].labels: key "bad key": name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`}},
		{"bad label prefix", func(c *Cluster) { c.Head.Labels = map[string]string{"Example.COM/rack": "r1"} }, []string{`head.labels: key "Example.COM/rack": prefix must be a lower-case DNS subdomain`}},
		{"reserved label prefix", func(c *Cluster) { c.Head.Labels = map[string]string{"ray.io/node-type": "x"} }, []string{`head.labels: key "ray.io/node-type": the ray.io/ prefix is reserved for Ray`}},
		{"bad label value", func(c *Cluster) { c.Head.Labels = map[string]string{"rack": "a b"} }, []string{`head.labels.rack: value "a b" must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`}},
		{"negative cpus", func(c *Cluster) { c.Workers[0].Resources.CPUs = new(-2) }, []string{"workers[0].resources.cpus: -2 must not be negative"}},
		{"negative gpus", func(c *Cluster) { c.Workers[0].Resources.GPUs = new(-1) }, []string{"workers[0].resources.gpus: -1 must not be negative"}},
		{"negative memory", func(c *Cluster) { c.Head.Resources.Memory = -5 }, []string{"head.resources.memory: -5 must not be negative"}},
		{"cpu fraction above 1", func(c *Cluster) { c.Workers[2].Resources.CPUFraction = 1.5 }, []string{"workers[2].resources.cpu_fraction: 1.5 outside (0,1]"}},
		{"cpu fraction negative", func(c *Cluster) { c.Workers[2].Resources.CPUFraction = -0.1 }, []string{"workers[2].resources.cpu_fraction: -0.1 outside (0,1]"}},
		{"memory fraction", func(c *Cluster) { c.Ray.Resources.MemoryFraction = 2 }, []string{"ray.resources.memory_fraction: 2 outside (0,1]"}},
		{"cpus and fraction", func(c *Cluster) {
			c.Head.Resources.CPUs = new(4)
			c.Head.Resources.CPUFraction = 0.5
		}, []string{"head.resources.cpu_fraction: exclusive with cpus"}},
		{"memory and fraction", func(c *Cluster) {
			c.Head.Resources.Memory = 1 << 30
			c.Head.Resources.MemoryFraction = 0.5
		}, []string{"head.resources.memory_fraction: exclusive with memory"}},
		{"custom reserved", func(c *Cluster) { c.Head.Resources.Custom = map[string]float64{"CPU": 1} }, []string{`head.resources.custom: "CPU" is a built-in Ray resource; use cpus, gpus or memory`}},
		{"custom negative", func(c *Cluster) { c.Head.Resources.Custom = map[string]float64{"tts": -1} }, []string{"head.resources.custom.tts: -1 must be a non-negative number"}},
		{"bad env name", func(c *Cluster) { c.Workers[0].Auth.PasswordEnv = "MY-PASS" }, []string{`workers[0].password_env: "MY-PASS" is not an environment variable name`}},
		{"password and env", func(c *Cluster) {
			c.SSH.Auth.PasswordEnv = "PW"
			c.SSH.Auth.Password = NewSecret("x")
		}, []string{"ssh.password: exclusive with password_env"}},
		{"placeholder password", func(c *Cluster) { c.Head.Auth.SudoPassword = NewSecret("[redacted]") }, []string{"head.sudo_password: holds the redaction placeholder, not a password"}},
		{"jump address", func(c *Cluster) { c.SSH.Jump = &JumpHost{} }, []string{"ssh.jump.address: must not be empty"}},
		{"relative state dir", func(c *Cluster) { c.StateDir = "state" }, []string{`state_dir: "state" must be an absolute path (or start with ~/)`}},
		{"several at once", func(c *Cluster) {
			c.Workers[0].Address = ""
			c.Head.Port = 0x10000
			c.Ray.Ports.Dashboard = 6379
		}, []string{
			"head.port: 65536 out of range 1-65535",
			"workers[0].address: must not be empty",
			"ray.ports.dashboard: 6379 collides with ray.ports.gcs",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCluster()
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, problemStrings(t, c.Validate())); diff != "" {
				t.Errorf("Validate() problems (-want +got):\n%s", diff)
			}
		})
	}
}

// problemStrings returns the rendered problems of a *ValidationError.
func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.Error())
	}
	return out
}

func TestValidationErrorUnwrapsToFieldErrors(t *testing.T) {
	c := validCluster()
	c.Workers[1].Address = ""
	c.Head.Port = 70000
	err := c.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "head.port" {
		t.Fatalf("errors.As(*FieldError) = %v, want the head.port problem", fe)
	}
	if want := "2 problems:\n\thead.port: 70000 out of range 1-65535\n\tworkers[1].address: must not be empty"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestNodesHeadFirstWithRoles(t *testing.T) {
	c := validCluster()
	got := c.Nodes()
	var names []string
	for _, n := range got {
		names = append(names, n.ID()+"/"+string(n.Role))
	}
	want := []string{"head/head", "w1/worker", "w2/worker", "w3/worker"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Nodes() (-want +got):\n%s", diff)
	}
	if c.Head.Role != "" {
		t.Errorf("Nodes() changed the cluster: head role %q", c.Head.Role)
	}
}

func TestWithDefaultsPrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USER", "localuser")
	t.Setenv("XDG_STATE_HOME", "")
	c := &Cluster{
		Name: "lab",
		SSH: SSHConfig{
			Port:     2200,
			Auth:     Auth{KeyFile: "~/.ssh/cluster", SudoPasswordEnv: "SUDO_PW"},
			Jump:     &JumpHost{Address: "bastion.example.net"},
			Timeouts: SSHTimeouts{KeepaliveInterval: Duration(5 * time.Second)},
		},
		Head: Node{Address: "192.0.2.10", Resources: Resources{CPUs: new(0)}},
		Workers: []Node{
			{Name: "w1", Address: "192.0.2.11", Port: 22, User: "admin", Auth: Auth{KeyFile: "/keys/w1", Agent: true},
				Resources: Resources{Custom: map[string]float64{"tts": 2}}},
			{Name: "w2", Address: "192.0.2.12", Resources: Resources{Memory: 1 << 30}},
		},
		Ray: RayConfig{
			Version:   "2.57.0",
			Resources: Resources{CPUFraction: 0.8, MemoryFraction: 0.8, GPUs: new(1), Custom: map[string]float64{"tts": 1, "x": 1}},
		},
	}
	orig := c.clone()
	d := c.WithDefaults()
	if diff := cmp.Diff(orig, c); diff != "" {
		t.Fatalf("WithDefaults changed its receiver (-before +after):\n%s", diff)
	}
	key := filepath.Join(home, ".ssh", "cluster")
	want := &Cluster{
		Name: "lab",
		SSH: SSHConfig{
			User: "localuser", Port: 2200,
			Auth:           Auth{KeyFile: key, SudoPasswordEnv: "SUDO_PW"},
			KnownHostsFile: filepath.Join(home, ".ssh", "known_hosts"),
			Jump:           &JumpHost{Address: "bastion.example.net", Port: 2200, User: "localuser", Auth: Auth{KeyFile: key, SudoPasswordEnv: "SUDO_PW"}},
			// The keepalive timeout follows the interval set; the rest are
			// the built-in defaults.
			Timeouts: SSHTimeouts{Connect: Duration(10 * time.Second), ConnectAttempts: 5, ConnectTotal: Duration(30 * time.Second),
				KeepaliveInterval: Duration(5 * time.Second), KeepaliveTimeout: Duration(5 * time.Second)},
		},
		Head: Node{Name: "192.0.2.10", Address: "192.0.2.10", Port: 2200, User: "localuser",
			Auth:      Auth{KeyFile: key, SudoPasswordEnv: "SUDO_PW"},
			Resources: Resources{CPUs: new(0), GPUs: new(1), MemoryFraction: 0.8, Custom: map[string]float64{"tts": 1, "x": 1}}},
		Workers: []Node{
			{Name: "w1", Address: "192.0.2.11", Port: 22, User: "admin",
				Auth:      Auth{KeyFile: "/keys/w1", Agent: true, SudoPasswordEnv: "SUDO_PW"},
				Resources: Resources{GPUs: new(1), CPUFraction: 0.8, MemoryFraction: 0.8, Custom: map[string]float64{"tts": 2, "x": 1}}},
			{Name: "w2", Address: "192.0.2.12", Port: 2200, User: "localuser",
				Auth:      Auth{KeyFile: key, SudoPasswordEnv: "SUDO_PW"},
				Resources: Resources{GPUs: new(1), CPUFraction: 0.8, Memory: 1 << 30, Custom: map[string]float64{"tts": 1, "x": 1}}},
		},
		StateDir: filepath.Join(home, ".local", "state", "raydeploy", "lab"),
		Ray: RayConfig{
			Version: "2.57.0", Image: "rayproject/ray:2.57.0", Ports: DefaultRayPorts(),
			Resources: Resources{CPUFraction: 0.8, MemoryFraction: 0.8, GPUs: new(1), Custom: map[string]float64{"tts": 1, "x": 1}},
		},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("WithDefaults() (-want +got):\n%s", diff)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaulted cluster does not validate: %v", err)
	}
}

func TestDefaultStateDirXDG(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/lib/me/state")
	if got, want := DefaultStateDir("lab"), "/var/lib/me/state/raydeploy/lab"; got != want {
		t.Errorf("DefaultStateDir = %q, want %q", got, want)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/me")
	if got, want := DefaultStateDir("lab"), "/home/me/.local/state/raydeploy/lab"; got != want {
		t.Errorf("DefaultStateDir with relative XDG_STATE_HOME = %q, want %q", got, want)
	}
}

// assertNoSecret renders c every way a user or a log might and fails if
// any secret shows.
func assertNoSecret(t *testing.T, c *Cluster, secrets ...string) {
	t.Helper()
	var renders []string
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	renders = append(renders, string(j))
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	renders = append(renders, string(y))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		renders = append(renders, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cluster", "cluster", c, "head", c.Head, "auth", c.Head.Auth, "pw", c.Head.Auth.Password)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cluster", "cluster", c, "head", c.Head, "pw", c.Head.Auth.Password)
	renders = append(renders, buf.String())
	for _, r := range renders {
		for _, s := range secrets {
			if strings.Contains(r, s) {
				t.Fatalf("secret %q leaked in rendering:\n%s", s, r)
			}
		}
	}
	if !strings.Contains(string(j), `"password":"[redacted]"`) {
		t.Errorf("JSON does not show the redaction placeholder: %s", j)
	}
}

func TestSecretsNeverRendered(t *testing.T) {
	c := validCluster()
	c.Head.Auth.Password = NewSecret("hunter2-ssh")
	c.Workers[1].Auth.SudoPassword = NewSecret("hunter2-sudo")
	c.SSH.Jump = &JumpHost{Address: "bastion.example.net", Auth: Auth{Password: NewSecret("hunter2-jump")}}
	assertNoSecret(t, c, "hunter2")
	assertNoSecret(t, c.WithDefaults(), "hunter2")
	if got := c.Head.Auth.Password.Reveal(); got != "hunter2-ssh" {
		t.Errorf("Reveal() = %q, want the value", got)
	}
	if got := fmt.Sprint(NewSecret("")); got != "" {
		t.Errorf("empty secret renders %q, want empty", got)
	}
	want := []string{"ssh.jump.password", "head.password", "workers[1].sudo_password"}
	if diff := cmp.Diff(want, c.PlaintextSecrets()); diff != "" {
		t.Errorf("PlaintextSecrets (-want +got):\n%s", diff)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1024", 1024, true}, {"8GiB", 8 << 30, true}, {"200GB", 200e9, true}, {"512M", 512 << 20, true},
		{"1.5KiB", 1536, true}, {"3 kb", 3000, true}, {"", 0, false}, {"GB", 0, false}, {"3Q", 0, false},
		{"1e3", 0, false}, {"99999999999TB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
