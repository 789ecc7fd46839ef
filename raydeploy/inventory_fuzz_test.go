package raydeploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fuzzMarker is the secret the fuzzers plant; inputs that already hold
// part of it are skipped, so wherever it shows up, it came from a secret
// variable.
const fuzzMarker = "Zq9MarkerSecret7"

// iniSecretLines are shapes a line holding a secret variable takes, in
// place or out of place; SECRET is replaced by the marker.
var iniSecretLines = []string{
	"ansible_password=SECRET",
	"h9 ansible_password=SECRET",
	"h9 ansible_become_pass='SECRET",
	`h9 ansible_sudo_pass="SECRET x" ansible_port=x`,
	"ansible_password = SECRET",
	"ansible_password= SECRET",
	"ansible_ssh_pass=SECRET:22",
	"vault_token=SECRET[1:2]",
	"[ansible_password=SECRET]",
	"h9:SECRET ansible_password=SECRET",
	"ansible_become_password={{SECRET}}",
	"sudo_password='SECRET' x",
}

// insertLine puts line before line number at%(lines+1) of data (0-based).
func insertLine(data []byte, at uint16, line string) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	i := int(at) % (len(lines) + 1)
	var b strings.Builder
	for _, l := range lines[:i] {
		b.WriteString(l)
	}
	if i > 0 && !strings.HasSuffix(lines[i-1], "\n") {
		b.WriteString("\n")
	}
	b.WriteString(line + "\n")
	for _, l := range lines[i:] {
		b.WriteString(l)
	}
	return []byte(b.String())
}

// holdsMarker reports whether data already holds a piece of the marker.
func holdsMarker(data []byte) bool {
	l := bytes.ToLower(data)
	for _, p := range []string{"zq9", "marker", "secret7"} {
		if bytes.Contains(l, []byte(p)) {
			return true
		}
	}
	return false
}

// checkLoaderResult asserts the properties of every loader result: errors
// are a *ValidationError whose problems name a line of their file (or
// none), and neither they nor the warnings nor the Cluster's renderings
// show the marker.
func checkLoaderResult(t *testing.T, lines map[string]int, c *Cluster, warns Warnings, err error) {
	t.Helper()
	var msgs []string
	if err != nil {
		ve, ok := err.(*ValidationError)
		if !ok {
			t.Fatalf("error %T is not a *ValidationError: %v", err, err)
		}
		for _, p := range ve.Problems {
			n, known := lines[p.File]
			if !known || p.Line < 0 || p.Line > n+1 {
				t.Fatalf("problem names line %d of %q (files: %v): %v", p.Line, p.File, lines, p)
			}
			msgs = append(msgs, p.Error())
		}
	}
	for _, w := range warns {
		msgs = append(msgs, w.String())
	}
	for _, m := range msgs {
		if strings.Contains(m, fuzzMarker) {
			t.Fatalf("a message shows the secret: %s", m)
		}
	}
	if c != nil {
		assertSecretsHidden(t, c)
	}
}

// countLines counts lines as the YAML decoder does (it also breaks lines
// at a lone CR, NEL, LS and PS), an upper bound for the INI parser's.
func countLines(data []byte) int {
	n := 1 + bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n"))
	for _, b := range []string{"\u0085", "\u2028", "\u2029"} {
		n += bytes.Count(data, []byte(b))
	}
	return n
}

// FuzzParseInventory: any inventory, with a secret variable's line put
// anywhere in it in one of many shapes, parses or fails with a
// *ValidationError naming a line of the file; no error, warning or
// rendering of the Cluster shows the secret; the host cap holds; a parsed
// Cluster validates or fails with a *ValidationError.
func FuzzParseInventory(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseInventory (the seed inventory, ranges,
	// nesting, cycles, the cap, secrets out of place).
	f.Fuzz(func(t *testing.T, data []byte, at uint16, shape uint8) {
		if holdsMarker(data) {
			t.Skip()
		}
		opts := InventoryOptions{MaxHosts: 300}
		for _, in := range [][]byte{data, insertLine(data, at, strings.ReplaceAll(iniSecretLines[int(shape)%len(iniSecretLines)], "SECRET", fuzzMarker))} {
			c, warns, err := ParseInventory("inv.ini", in, opts)
			checkLoaderResult(t, map[string]int{"inv.ini": countLines(in)}, c, warns, err)
			if err != nil {
				continue
			}
			if n := 1 + len(c.Workers); n > opts.MaxHosts {
				t.Fatalf("%d hosts past the cap of %d", n, opts.MaxHosts)
			}
			if verr := c.Validate(); verr != nil {
				if _, ok := verr.(*ValidationError); !ok {
					t.Fatalf("validation error %T: %v", verr, verr)
				}
			}
		}
	})
}

// yamlSecretValues are shapes the value of a secret key takes in a YAML
// file; SECRET is replaced by the marker.
var yamlSecretValues = []string{
	"SECRET", "*SECRET", "'SECRET", `"SECRET`, "[SECRET", "{x: SECRET}", "&a SECRET", "!t SECRET",
	"SECRET: x", "- SECRET", "|\n  SECRET", `"SECRET"`, "'SECRET' x",
}

// FuzzInventoryVarsFile: a group_vars or host_vars file, any text with a
// secret variable's line put anywhere, loads or fails with a
// *ValidationError naming a line of the file; nothing shows the secret.
func FuzzInventoryVarsFile(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzInventoryVarsFile (the seed's group_vars,
	// nested values, anchors, tags, bad keys).
	keys := []string{"ansible_password", "ansible_become_password", "ansible_sudo_pass", "vault_token"}
	const ini = "[head_nodes]\nh1\n[worker_nodes]\nw1\n[ray:children]\nhead_nodes\nworker_nodes\n"
	f.Fuzz(func(t *testing.T, data []byte, at uint16, shape uint8) {
		if holdsMarker(data) {
			t.Skip()
		}
		val := strings.ReplaceAll(yamlSecretValues[int(shape)%len(yamlSecretValues)], "SECRET", fuzzMarker)
		line := keys[int(shape/16)%len(keys)] + ": " + val
		for i, in := range [][]byte{data, insertLine(data, at, line)} {
			inv := newInventory("inv.ini", InventoryOptions{}.withDefaults())
			inv.parseINI([]byte(ini))
			// group_vars for the parent group, or host_vars for the head.
			file, vars := "group_vars/ray.yml", map[string]invVar{}
			if (int(at)+i)%2 == 1 {
				file = "host_vars/h1.yml"
				inv.hosts["h1"].fileVars = vars
			} else {
				inv.groups["ray"].fileVars = vars
			}
			inv.parseVarsFile(vars, file, in)
			c, warns, err := inv.result(inv.build(InventoryOptions{}.withDefaults()))
			checkLoaderResult(t, map[string]int{file: countLines(in), "inv.ini": countLines([]byte(ini))}, c, warns, err)
		}
	})
}

// assertSecretsHidden fails if a password of c shows in its %+v, %#v, JSON
// or YAML rendering, unless the same text also shows with every secret removed
// (it is then some other field's value, like a host name).
func assertSecretsHidden(t *testing.T, c *Cluster) {
	t.Helper()
	render := func(c *Cluster) string {
		j, _ := json.Marshal(c)
		y, _ := yaml.Marshal(c)
		return fmt.Sprintf("%+v %#v %s %s", c, c, j, y)
	}
	var secrets []string
	cleared := c.clone()
	clear := func(a *Auth) {
		for _, s := range []Secret{a.Password, a.SudoPassword} {
			if v := s.Reveal(); len(v) >= 8 {
				secrets = append(secrets, v)
			}
		}
		a.Password, a.SudoPassword = Secret{}, Secret{}
	}
	eachAuth(cleared, clear)
	with, without := render(c), render(cleared)
	for _, s := range secrets {
		if strings.Contains(with, s) && !strings.Contains(without, s) {
			t.Fatalf("secret %q shows in the rendering: %s", s, with)
		}
	}
}

// eachAuth calls fn with every Auth of c: the cluster's, the jump host's,
// each node's.
func eachAuth(c *Cluster, fn func(*Auth)) {
	fn(&c.SSH.Auth)
	if c.SSH.Jump != nil {
		fn(&c.SSH.Jump.Auth)
	}
	fn(&c.Head.Auth)
	for i := range c.Workers {
		fn(&c.Workers[i].Auth)
	}
}
