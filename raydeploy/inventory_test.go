package raydeploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadInventorySeed(t *testing.T) {
	c, warns, err := LoadInventory("testdata/seed/inventory.ini", InventoryOptions{})
	if err != nil {
		t.Fatalf("LoadInventory: %v", err)
	}
	key := "~/.ssh/ray_cluster_ed25519"
	worker := func(name, addr string, port int) Node {
		return Node{Name: name, Address: addr, Port: port, User: "ray", Auth: Auth{KeyFile: key},
			Resources: Resources{CPUFraction: 0.8, MemoryFraction: 0.8}}
	}
	g244 := worker("G-244", "192.0.2.244", 0)
	g244.Auth.SudoPassword = NewSecret("s3ed-BECOME-pass")
	want := &Cluster{
		Name: "ray-cluster",
		Head: Node{Name: "MASTER", Address: "192.0.2.240", User: "rayadmin",
			Auth: Auth{KeyFile: key, Password: NewSecret("s3ed-SSH-pass word"), SudoPassword: NewSecret("s3ed-SUDO-pass")},
			// head_nodes.yml's ray_num_cpus beats all.yml's ray_cpu_fraction.
			Resources: Resources{CPUs: new(0), MemoryFraction: 0.8}},
		Workers: []Node{
			worker("G-241", "192.0.2.241", 0),
			worker("G-242", "192.0.2.242", 0),
			worker("G-243", "192.0.2.243", 2222),
			g244,
		},
		Ray: RayConfig{Version: "2.58.0", Image: "rayproject/ray:2.58.0-py311-cpu",
			Ports: RayPorts{GCS: 6379, Dashboard: 8265}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("LoadInventory (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("seed cluster does not validate: %v", err)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	wantWarns := []string{
		"testdata/seed/group_vars/all.yml:8: variable docker_version is not used by raydeploy; ignored",
		"testdata/seed/group_vars/all.yml:9: variable grafana_port is not used by raydeploy; ignored",
		"testdata/seed/inventory.ini:5: host MASTER: ansible_password is a plaintext SSH password; raydeploy keeps it in memory only and never logs or saves it; prefer a key (ansible_ssh_private_key_file) or ssh.password_env",
		"testdata/seed/inventory.ini:5: host MASTER: ansible_sudo_pass is a plaintext sudo password; raydeploy keeps it in memory only and never logs or saves it; prefer ssh.sudo_password_env or passwordless sudo",
		"testdata/seed/inventory.ini:11: host G-244: ansible_become_pass is a plaintext sudo password; raydeploy keeps it in memory only and never logs or saves it; prefer ssh.sudo_password_env or passwordless sudo",
		"testdata/seed/inventory.ini:23: variable ansible_ssh_common_args ignored: raydeploy always checks host keys (ssh.known_hosts, ssh.trust_on_first_use)",
	}
	if diff := cmp.Diff(wantWarns, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	for _, w := range got {
		if strings.Contains(w, "s3ed") {
			t.Errorf("warning leaks a secret: %s", w)
		}
	}
	assertNoSecret(t, c, "s3ed")
	assertNoSecret(t, c.WithDefaults(), "s3ed")
}

func TestParseInventoryErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no head group", "[worker_nodes]\nw1\n", []string{"inv.ini: no [head_nodes] group: the head host goes there"}},
		{"two heads", "[head_nodes]\nh1\nh2\n[worker_nodes]\nw1\n",
			[]string{"inv.ini:1: group [head_nodes] must have exactly one host, has 2: h1 (line 2), h2 (line 3)"}},
		{"empty head group", "# c\n[head_nodes]\n[worker_nodes]\nw1\n",
			[]string{"inv.ini:2: group [head_nodes] must have exactly one host, has 0"}},
		{"head also worker", "[head_nodes]\nh1\n[worker_nodes]\nh1\nw1\n",
			[]string{"inv.ini:2: host h1 is in both [head_nodes] and [worker_nodes]"}},
		{"bad suffix", "[head_nodes:hosts]\nh1\n",
			[]string{"inv.ini:1: section [head_nodes:hosts]: unknown suffix \"hosts\" (want :vars or :children)"}},
		{"malformed header", "[head_nodes\nh1\n", []string{"inv.ini:1: malformed section header"}},
		{"unterminated quote", "[head_nodes]\nh1 ansible_password='oops\n", []string{"inv.ini:2: unterminated quote"}},
		{"not key=value", "[head_nodes]\nh1 ansible_password= leaked-secret\n", []string{"inv.ini:2: host h1: argument 2 is not name=value"}},
		{"vars without =", "[head_nodes]\nh1\n[all:vars]\nray_version\n", []string{"inv.ini:4: [all:vars]: expected name=value"}},
		{"bad port", "[head_nodes]\nh1 ansible_port=ssh\n", []string{`inv.ini:2: host h1: ansible_port: "ssh" is not a port number (1-65535)`}},
		{"port out of range", "[head_nodes]\nh1\n[all:vars]\nansible_port=70000\n", []string{`inv.ini:4: host h1: ansible_port: "70000" is not a port number (1-65535)`}},
		{"bad dashboard port", "[head_nodes]\nh1\n[all:vars]\ndashboard_port=x\n", []string{`inv.ini:4: dashboard_port: "x" is not a port number (1-65535)`}},
		{"jinja", "[head_nodes]\nh1 ansible_host={{lookup('env','H')}}\n", []string{"inv.ini:2: host h1: ansible_host: Jinja templates are not evaluated by raydeploy"}},
		{"bad fraction", "[head_nodes]\nh1 ray_cpu_fraction=120%\n", []string{`inv.ini:2: host h1: ray_cpu_fraction: "120%" is not a fraction in (0,1] or a percentage like 80%`}},
		{"bad memory", "[head_nodes]\nh1 ray_memory=lots\n", []string{`inv.ini:2: host h1: ray_memory: invalid size "lots": want a number of bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`}},
		{"local connection", "[head_nodes]\nh1 ansible_connection=local\n", []string{"inv.ini:2: host h1: ansible_connection=local: raydeploy reaches nodes over SSH only"}},
		{"bad range", "[head_nodes]\nh[3:1]\n", []string{`inv.ini:2: host pattern: "h[3:1]": range must be ascending`}},
		{"bad host port", "[head_nodes]\nh1:99999\n", []string{`inv.ini:2: host pattern: "h1:99999": port after ':' must be 1-65535`}},
		{"children cycle", "[head_nodes]\nh1\n[a:children]\nb\n[b:children]\na\n", []string{"inv.ini:4: group a: children cycle through b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := ParseInventory("inv.ini", []byte(tt.in), InventoryOptions{})
			if err == nil {
				t.Fatalf("ParseInventory = %+v, want an error", c)
			}
			if diff := cmp.Diff(tt.want, problemStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "leaked-secret") || strings.Contains(err.Error(), "oops") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestParseInventoryFeatures(t *testing.T) {
	in := `
; ranges, host:port, quoting, inline comments, nested children, custom groups
[head]
ctl.example.net:2200 ansible_user="ops team" ray_num_gpus=1

[gpu]
gpu[1:2].example.net ansible_user=gpu ray_resource_fraction=50%   # both fractions

[cpu]
cpu[08:10] ansible_host=192.0.2.8 ; overwritten below
cpu09 ansible_host=192.0.2.9
cpu10 ansible_host=192.0.2.10
cpu08 ansible_host=192.0.2.7

[workers:children]
gpu
cpu

[cpu:vars]
ray_num_cpus = 16

[all:vars]
ray_cluster_name = "Lab One"
ansible_user = everyone
`
	c, warns, err := ParseInventory("i.ini", []byte(in), InventoryOptions{HeadGroup: "head", WorkerGroup: "workers", ClusterName: "lab1"})
	if err != nil {
		t.Fatalf("ParseInventory: %v", err)
	}
	want := &Cluster{
		Name: "lab1",
		Head: Node{Name: "ctl.example.net", Address: "ctl.example.net", Port: 2200, User: "ops team", Resources: Resources{GPUs: new(1)}},
		Workers: []Node{
			{Name: "gpu1.example.net", Address: "gpu1.example.net", User: "gpu", Resources: Resources{CPUFraction: 0.5, MemoryFraction: 0.5}},
			{Name: "gpu2.example.net", Address: "gpu2.example.net", User: "gpu", Resources: Resources{CPUFraction: 0.5, MemoryFraction: 0.5}},
			{Name: "cpu08", Address: "192.0.2.7", User: "everyone", Resources: Resources{CPUs: new(16)}},
			{Name: "cpu09", Address: "192.0.2.9", User: "everyone", Resources: Resources{CPUs: new(16)}},
			{Name: "cpu10", Address: "192.0.2.10", User: "everyone", Resources: Resources{CPUs: new(16)}},
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseInventory (-want +got):\n%s", diff)
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}
	// Without the override the name comes from ray_cluster_name, unchanged,
	// and Validate names the problem.
	c, _, err = ParseInventory("i.ini", []byte(in), InventoryOptions{HeadGroup: "head", WorkerGroup: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Lab One" {
		t.Errorf("name = %q, want from ray_cluster_name", c.Name)
	}
	if got := problemStrings(t, c.Validate()); len(got) == 0 || !strings.HasPrefix(got[0], "cluster_name:") {
		t.Errorf("Validate = %v, want a cluster_name problem first", got)
	}
}

func TestParseInventoryWarnings(t *testing.T) {
	in := "[head_nodes]\nh1 ray_version=2.58.0\n[worker_nodes]\nw1 ray_version=2.57.0\n[spare]\ns1\n"
	c, warns, err := ParseInventory("i.ini", []byte(in), InventoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	want := []string{
		"i.ini:4: host w1: ray_version differs from the head's; cluster-wide settings are taken from the head",
		"i.ini:6: host s1 is in neither [head_nodes] nor [worker_nodes]; ignored",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if c.Ray.Version != "2.58.0" || c.Name != "ray" {
		t.Errorf("version %q name %q, want 2.58.0 from the head and the default name", c.Ray.Version, c.Name)
	}
}

func TestLoadInventoryGroupVarsErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("inventory.ini", "[head_nodes]\nh1\n")
	write("group_vars/all.yml", "ray_version: 2.58.0\nray_head_port: [1]\n")
	write("group_vars/head_nodes/ports.yaml", "dashboard_port: x\n")
	write("group_vars/nosuch.yml", "a: 1\n")
	_, warns, err := LoadInventory(dir, InventoryOptions{})
	gv := filepath.Join(dir, "group_vars")
	want := []string{
		gv + "/all.yml:2: ray_head_port: must be a single value",
		gv + `/head_nodes/ports.yaml:1: dashboard_port: "x" is not a port number (1-65535)`,
	}
	if diff := cmp.Diff(want, problemStrings(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(warns) != 2 || !strings.Contains(warns[0].String(), `group "nosuch" is not in the inventory`) {
		t.Errorf("warnings = %v", warns)
	}

	write("group_vars/all.yml", "ray_version: [unclosed\n")
	_, _, err = LoadInventory(dir, InventoryOptions{})
	if got := problemStrings(t, err); len(got) == 0 || !strings.HasPrefix(got[0], gv+"/all.yml:1: ") {
		t.Errorf("YAML syntax error = %v, want one naming all.yml:1", got)
	}
}
