package raydeploy

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Warning is something a loader accepted but the user should know: an
// ignored variable, a plaintext password. It never holds a secret value.
type Warning struct {
	File string
	Line int
	Msg  string
}

// String renders "file:line: msg".
func (w Warning) String() string {
	return (&FieldError{File: w.File, Line: w.Line, Msg: w.Msg}).Error()
}

// Warnings are a loader's warnings, in the order found.
type Warnings []Warning

// InventoryOptions tune the Ansible inventory import.
type InventoryOptions struct {
	// HeadGroup is the group holding the one head host (default "head_nodes").
	HeadGroup string
	// WorkerGroup is the group holding the workers (default "worker_nodes").
	WorkerGroup string
	// ClusterName overrides the name found in the inventory.
	ClusterName string
	// GroupVarsDir is the group_vars directory (default: group_vars beside
	// the inventory file). LoadInventory only.
	GroupVarsDir string
}

func (o InventoryOptions) withDefaults() InventoryOptions {
	if o.HeadGroup == "" {
		o.HeadGroup = "head_nodes"
	}
	if o.WorkerGroup == "" {
		o.WorkerGroup = "worker_nodes"
	}
	return o
}

// The Ansible variables the import understands. A variable is read from the
// host line, else the group_vars files, else the inventory's [group:vars],
// following Ansible's precedence (see the package documentation).
var (
	// per-node variables, each alias list in order of preference
	varAddress      = []string{"ansible_host", "ansible_ssh_host"}
	varPort         = []string{"ansible_port", "ansible_ssh_port"}
	varUser         = []string{"ansible_user", "ansible_ssh_user"}
	varKeyFile      = []string{"ansible_ssh_private_key_file", "ansible_private_key_file"}
	varPassword     = []string{"ansible_password", "ansible_ssh_pass", "ansible_ssh_password"}
	varSudoPassword = []string{"ansible_become_pass", "ansible_become_password", "ansible_sudo_pass", "ansible_sudo_password"}
	varCPUs         = []string{"ray_num_cpus"}
	varGPUs         = []string{"ray_num_gpus"}
	varMemory       = []string{"ray_memory"}
	varCPUFraction  = []string{"ray_cpu_fraction", "ray_resource_fraction"}
	varMemFraction  = []string{"ray_memory_fraction", "ray_resource_fraction"}

	// cluster-wide variables, read from the head host's variables
	varClusterName   = []string{"ray_cluster_name", "cluster_name"}
	varVersion       = []string{"ray_version"}
	varImage         = []string{"ray_image", "ray_docker_image"}
	varGCSPort       = []string{"ray_head_port", "ray_port", "ray_gcs_port"}
	varDashboardPort = []string{"ray_dashboard_port", "dashboard_port"}
	varClientPort    = []string{"ray_client_port"}
	varMetricsPort   = []string{"ray_metrics_port", "ray_metrics_export_port"}
	varMinWorkerPort = []string{"ray_min_worker_port"}
	varMaxWorkerPort = []string{"ray_max_worker_port"}
	varAgentPort     = []string{"ray_dashboard_agent_port"}
	varServePort     = []string{"ray_serve_port", "serve_port"}
	varShmSize       = []string{"ray_shm_size"}

	// read but without effect on the Cluster; no warning
	varsQuiet = []string{"ansible_python_interpreter", "ansible_connection", "ansible_become",
		"ansible_become_method", "ansible_become_user"}
	// read only to warn that raydeploy keeps host key checking on
	varsHostKey = []string{"ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_host_key_checking"}
)

var clusterVars = [][]string{varClusterName, varVersion, varImage, varGCSPort, varDashboardPort,
	varClientPort, varMetricsPort, varMinWorkerPort, varMaxWorkerPort, varAgentPort, varServePort, varShmSize}

func supportedVar(name string) bool {
	for _, l := range [][]string{varAddress, varPort, varUser, varKeyFile, varPassword, varSudoPassword,
		varCPUs, varGPUs, varMemory, varCPUFraction, varMemFraction, varsQuiet, varsHostKey} {
		if slices.Contains(l, name) {
			return true
		}
	}
	for _, l := range clusterVars {
		if slices.Contains(l, name) {
			return true
		}
	}
	return false
}

func secretVar(name string) bool {
	return slices.Contains(varPassword, name) || slices.Contains(varSudoPassword, name)
}

// invVar is one variable definition and where it was made.
type invVar struct {
	value     string
	file      string
	line      int
	nonScalar bool
	rank      int // precedence after resolution: higher wins
}

type invHost struct {
	name   string
	line   int
	groups []string // groups listing the host directly
	port   int      // from a host:port pattern
	vars   map[string]invVar
}

type invGroup struct {
	name     string
	line     int
	hosts    []string
	children []invChild
	vars     map[string]invVar // [group:vars] in the inventory file
	fileVars map[string]invVar // group_vars/<group>.yml
	fileVarF string
}

type invChild struct {
	name string
	line int
}

type inventory struct {
	file      string
	hosts     map[string]*invHost
	hostOrder []string
	groups    map[string]*invGroup
	probs     problems
	warns     Warnings
}

func (inv *inventory) errorf(file string, line int, format string, args ...any) {
	inv.probs = append(inv.probs, &FieldError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (inv *inventory) warnf(file string, line int, format string, args ...any) {
	inv.warns = append(inv.warns, Warning{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (inv *inventory) group(name string, line int) *invGroup {
	g, ok := inv.groups[name]
	if !ok {
		g = &invGroup{name: name, line: line, vars: map[string]invVar{}}
		inv.groups[name] = g
	}
	if g.line == 0 {
		g.line = line
	}
	return g
}

// LoadInventory imports an Ansible inventory: path is an inventory.ini
// file or a directory holding one; the group_vars directory beside it
// (*.yml, *.yaml, or a directory per group) is read too. Errors name the
// file and line ("inventory.ini:12: ..."). Plaintext passwords are kept
// (as Secret) but each gives a warning naming the host and variable.
func LoadInventory(path string, opts InventoryOptions) (*Cluster, Warnings, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "inventory.ini")
	}
	data, err := readConfig(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load inventory: %w", err)
	}
	gvDir := opts.GroupVarsDir
	if gvDir == "" {
		gvDir = filepath.Join(filepath.Dir(path), "group_vars")
	}
	inv := newInventory(path)
	inv.parseINI(data)
	if err := inv.readGroupVars(gvDir); err != nil {
		return nil, inv.warns, err
	}
	c := inv.build(opts.withDefaults())
	return inv.result(c)
}

// ParseInventory imports an Ansible inventory from its text alone (no
// group_vars); file names it in errors and warnings. See LoadInventory.
func ParseInventory(file string, data []byte, opts InventoryOptions) (*Cluster, Warnings, error) {
	inv := newInventory(file)
	inv.parseINI(data)
	c := inv.build(opts.withDefaults())
	return inv.result(c)
}

func (inv *inventory) result(c *Cluster) (*Cluster, Warnings, error) {
	slices.SortStableFunc(inv.warns, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	if len(inv.probs) > 0 {
		return nil, inv.warns, inv.probs.err()
	}
	return c, inv.warns, nil
}

func newInventory(file string) *inventory {
	inv := &inventory{file: file, hosts: map[string]*invHost{}, groups: map[string]*invGroup{}}
	inv.group("all", 0)
	inv.group("ungrouped", 0)
	return inv
}

// parseINI reads the inventory's INI dialect. Messages never echo a line:
// it may hold a password.
func (inv *inventory) parseINI(data []byte) {
	section, kind := "ungrouped", ""
	for i, raw := range strings.Split(string(data), "\n") {
		ln := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 || strings.TrimSpace(line[end+1:]) != "" && !isComment(line[end+1:]) {
				inv.errorf(inv.file, ln, "malformed section header")
				section, kind = "", "bad"
				continue
			}
			name, suffix, _ := strings.Cut(line[1:end], ":")
			name = strings.TrimSpace(name)
			if !validGroupName(name) {
				inv.errorf(inv.file, ln, "invalid group name %q", name)
				section, kind = "", "bad"
				continue
			}
			switch suffix {
			case "", "vars", "children":
			default:
				inv.errorf(inv.file, ln, "section [%s:%s]: unknown suffix %q (want :vars or :children)", name, suffix, suffix)
				section, kind = "", "bad"
				continue
			}
			section, kind = name, suffix
			inv.group(name, ln)
			continue
		}
		switch kind {
		case "bad":
			// Already reported at the header.
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || !validVarName(k) {
				inv.errorf(inv.file, ln, "[%s:vars]: expected name=value", section)
				continue
			}
			val, err := unquoteValue(strings.TrimSpace(v))
			if err != nil {
				inv.errorf(inv.file, ln, "[%s:vars] %s: %v", section, k, err)
				continue
			}
			inv.groups[section].vars[k] = invVar{value: val, file: inv.file, line: ln}
		case "children":
			toks, err := splitFields(line)
			if err != nil || len(toks) != 1 || !validGroupName(toks[0]) {
				inv.errorf(inv.file, ln, "[%s:children]: expected one group name", section)
				continue
			}
			g := inv.groups[section]
			g.children = append(g.children, invChild{name: toks[0], line: ln})
			inv.group(toks[0], 0)
		default:
			inv.parseHostLine(section, ln, line)
		}
	}
}

func isComment(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || s[0] == '#' || s[0] == ';'
}

func (inv *inventory) parseHostLine(group string, ln int, line string) {
	toks, err := splitFields(line)
	if err != nil {
		inv.errorf(inv.file, ln, "%v", err)
		return
	}
	if len(toks) == 0 {
		return
	}
	names, port, err := expandHostPattern(toks[0])
	if err != nil {
		inv.errorf(inv.file, ln, "host pattern: %v", err)
		return
	}
	vars := map[string]invVar{}
	for j, t := range toks[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || !validVarName(k) {
			inv.errorf(inv.file, ln, "host %s: argument %d is not name=value", names[0], j+1)
			continue
		}
		vars[k] = invVar{value: v, file: inv.file, line: ln}
	}
	g := inv.groups[group]
	for _, name := range names {
		h, ok := inv.hosts[name]
		if !ok {
			h = &invHost{name: name, line: ln, vars: map[string]invVar{}}
			inv.hosts[name] = h
			inv.hostOrder = append(inv.hostOrder, name)
		}
		if port != 0 {
			h.port = port
		}
		for k, v := range vars {
			h.vars[k] = v
		}
		if !slices.Contains(h.groups, group) {
			h.groups = append(h.groups, group)
			g.hosts = append(g.hosts, name)
		}
	}
}

// splitFields splits a line the way Python's shlex does for Ansible: on
// blanks, honouring '...' and "..." quotes and backslash escapes; a token
// starting with # or ; begins a comment.
func splitFields(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inTok := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == ' ' || c == '\t':
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		case (c == '#' || c == ';') && !inTok:
			return out, nil
		case c == '\'' || c == '"':
			quote, inTok = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inTok = true
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

// unquoteValue reads a [group:vars] value: a quoted string loses its
// quotes, anything else is taken as written (trailing comments removed).
func unquoteValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if v[0] == '"' || v[0] == '\'' {
		toks, err := splitFields(v)
		if err != nil {
			return "", err
		}
		if len(toks) != 1 {
			return "", errors.New("text after the closing quote")
		}
		return toks[0], nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if i := strings.Index(v, " ;"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

func validGroupName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func validVarName(s string) bool { return envNameRE.MatchString(s) }

// maxRange bounds a host range like node[001:500].
const maxRange = 4096

// expandHostPattern expands node[01:04] / node[a:c] ranges (one per
// pattern, with an optional :step) and reads a trailing :port.
func expandHostPattern(p string) ([]string, int, error) {
	port := 0
	if i := portColon(p); i >= 0 {
		n, err := strconv.Atoi(p[i+1:])
		if err != nil || n < 1 || n > 65535 {
			return nil, 0, fmt.Errorf("%q: port after ':' must be 1-65535", p)
		}
		p, port = p[:i], n
	}
	open := strings.IndexByte(p, '[')
	if open < 0 {
		if p == "" || strings.ContainsAny(p, "]:") {
			return nil, 0, fmt.Errorf("%q is not a host name", p)
		}
		return []string{p}, port, nil
	}
	end := strings.IndexByte(p[open:], ']')
	if end < 0 {
		return nil, 0, fmt.Errorf("%q: unclosed '['", p)
	}
	end += open
	head, body, tail := p[:open], p[open+1:end], p[end+1:]
	if strings.ContainsAny(tail, "[]") {
		return nil, 0, fmt.Errorf("%q: only one range per host pattern is supported", p)
	}
	parts := strings.Split(body, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, 0, fmt.Errorf("%q: range must be [start:end] or [start:end:step]", p)
	}
	step := 1
	if len(parts) == 3 {
		s, err := strconv.Atoi(parts[2])
		if err != nil || s < 1 {
			return nil, 0, fmt.Errorf("%q: step must be a positive integer", p)
		}
		step = s
	}
	var out []string
	lo, errLo := strconv.Atoi(parts[0])
	hi, errHi := strconv.Atoi(parts[1])
	switch {
	case errLo == nil && errHi == nil:
		if lo < 0 || hi < lo || (hi-lo)/step >= maxRange {
			return nil, 0, fmt.Errorf("%q: range must be ascending with at most %d hosts", p, maxRange)
		}
		width := 0
		if len(parts[0]) > 1 && parts[0][0] == '0' {
			width = len(parts[0])
		}
		for i := lo; i <= hi; i += step {
			out = append(out, fmt.Sprintf("%s%0*d%s", head, width, i, tail))
		}
	case len(parts[0]) == 1 && len(parts[1]) == 1 && isLetter(parts[0][0]) && isLetter(parts[1][0]) && parts[0] <= parts[1]:
		for c := int(parts[0][0]); c <= int(parts[1][0]); c += step {
			out = append(out, head+string(rune(c))+tail)
		}
	default:
		return nil, 0, fmt.Errorf("%q: range must be numbers or single letters, ascending", p)
	}
	return out, port, nil
}

// portColon is the index of a ':' outside brackets (host:port), or -1.
func portColon(p string) int {
	depth, at := 0, -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				at = i
			}
		}
	}
	return at
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// readGroupVars reads group_vars/<group>.yml|.yaml|<group>/ files.
func (inv *inventory) readGroupVars(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load inventory: group_vars: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		var files []string
		group := name
		if e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("load inventory: group_vars: %w", err)
			}
			for _, s := range sub {
				if ext := filepath.Ext(s.Name()); !s.IsDir() && (ext == ".yml" || ext == ".yaml") {
					files = append(files, filepath.Join(dir, name, s.Name()))
				}
			}
		} else {
			ext := filepath.Ext(name)
			if ext != ".yml" && ext != ".yaml" {
				continue
			}
			group = strings.TrimSuffix(name, ext)
			files = []string{filepath.Join(dir, name)}
		}
		g, ok := inv.groups[group]
		if !ok {
			inv.warnf(filepath.Join(dir, name), 0, "group %q is not in the inventory; file ignored", group)
			continue
		}
		for _, f := range files {
			data, err := readConfig(f)
			if err != nil {
				return fmt.Errorf("load inventory: %w", err)
			}
			inv.parseGroupVars(g, f, data)
		}
	}
	return nil
}

func (inv *inventory) parseGroupVars(g *invGroup, file string, data []byte) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		fe := yamlError(file, data, err).(*ValidationError)
		inv.probs = append(inv.probs, fe.Problems...)
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		inv.errorf(file, m.Line, "expected a mapping of variable names to values")
		return
	}
	if g.fileVars == nil {
		g.fileVars = map[string]invVar{}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		iv := invVar{file: file, line: k.Line}
		if v.Kind == yaml.ScalarNode {
			if v.Tag != "!!null" {
				iv.value = v.Value
			}
		} else {
			iv.nonScalar = true
		}
		g.fileVars[k.Value] = iv
	}
}

// warnUnsupported warns once per definition of a variable the import does
// not use, and about plaintext passwords defined at group level.
func (inv *inventory) warnUnsupported() {
	type def struct {
		name string
		v    invVar
	}
	var defs []def
	for _, g := range inv.groups {
		for k, v := range g.vars {
			defs = append(defs, def{k, v})
		}
		for k, v := range g.fileVars {
			defs = append(defs, def{k, v})
		}
	}
	for _, h := range inv.hosts {
		for k, v := range h.vars {
			defs = append(defs, def{k, v})
		}
	}
	slices.SortFunc(defs, func(a, b def) int {
		return cmp.Or(cmp.Compare(a.v.file, b.v.file), cmp.Compare(a.v.line, b.v.line), cmp.Compare(a.name, b.name))
	})
	for _, d := range defs {
		switch {
		case !supportedVar(d.name):
			inv.warnf(d.v.file, d.v.line, "variable %s is not used by raydeploy; ignored", d.name)
		case slices.Contains(varsHostKey, d.name):
			inv.warnf(d.v.file, d.v.line, "variable %s ignored: raydeploy always checks host keys (ssh.known_hosts, ssh.trust_on_first_use)", d.name)
		}
	}
}

// hostGroups returns the groups host belongs to, directly or through
// children, sorted by depth then name: Ansible's order of precedence.
func (inv *inventory) hostGroups(host string, depth map[string]int, parents map[string][]string) []string {
	set := map[string]bool{"all": true}
	var up func(g string)
	up = func(g string) {
		if set[g] {
			return
		}
		set[g] = true
		for _, p := range parents[g] {
			up(p)
		}
	}
	for _, g := range inv.hosts[host].groups {
		up(g)
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(depth[a], depth[b]), cmp.Compare(a, b)) })
	return out
}

// groupDepths computes each group's depth below "all" and reports cycles.
func (inv *inventory) groupDepths() (map[string]int, map[string][]string) {
	parents := map[string][]string{}
	for _, name := range sortedKeys(inv.groups) {
		for _, c := range inv.groups[name].children {
			if !slices.Contains(parents[c.name], name) {
				parents[c.name] = append(parents[c.name], name)
			}
		}
	}
	depth := map[string]int{"all": 0}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(g string) int
	visit = func(g string) int {
		if g == "all" {
			return 0
		}
		switch state[g] {
		case 1:
			return 1
		case 2:
			return depth[g]
		}
		state[g] = 1
		d := 1
		for _, p := range parents[g] {
			if state[p] == 1 {
				line := 0
				for _, c := range inv.groups[p].children {
					if c.name == g {
						line = c.line
					}
				}
				inv.errorf(inv.file, line, "group %s: children cycle through %s", p, g)
				continue
			}
			d = max(d, visit(p)+1)
		}
		state[g] = 2
		depth[g] = d
		return d
	}
	for _, name := range sortedKeys(inv.groups) {
		visit(name)
	}
	return depth, parents
}

// members lists the hosts of a group and its descendants, in file order.
func (inv *inventory) members(group string) []string {
	set := map[string]bool{}
	seen := map[string]bool{}
	var walk func(g string)
	walk = func(g string) {
		if seen[g] {
			return
		}
		seen[g] = true
		gr, ok := inv.groups[g]
		if !ok {
			return
		}
		for _, h := range gr.hosts {
			set[h] = true
		}
		for _, c := range gr.children {
			walk(c.name)
		}
	}
	walk(group)
	var out []string
	for _, h := range inv.hostOrder {
		if set[h] {
			out = append(out, h)
		}
	}
	return out
}

// hostVars resolves a host's variables with Ansible's precedence, lowest
// first: inventory-file group vars (by depth), group_vars/all,
// group_vars/<group> (by depth), host-line vars.
func (inv *inventory) hostVars(host string, depth map[string]int, parents map[string][]string) map[string]invVar {
	groups := inv.hostGroups(host, depth, parents)
	out := map[string]invVar{}
	rank := 0
	overlay := func(m map[string]invVar) {
		rank++
		for k, v := range m {
			v.rank = rank
			out[k] = v
		}
	}
	for _, g := range groups {
		overlay(inv.groups[g].vars)
	}
	for _, g := range groups {
		overlay(inv.groups[g].fileVars)
	}
	overlay(inv.hosts[host].vars)
	return out
}

func rankOf(vars map[string]invVar, names []string) int {
	_, v, _ := lookup(vars, names)
	return v.rank
}

// lookup finds the first of the alias names set at the highest precedence.
func lookup(vars map[string]invVar, names []string) (string, invVar, bool) {
	best, bv, found := "", invVar{}, false
	for _, n := range names {
		if v, ok := vars[n]; ok && (!found || v.rank > bv.rank) {
			best, bv, found = n, v, true
		}
	}
	return best, bv, found
}

func (inv *inventory) build(opts InventoryOptions) *Cluster {
	inv.warnUnsupported()
	depth, parents := inv.groupDepths()
	if len(inv.probs) > 0 {
		// Group membership is unreliable after a parse error: report what
		// was found rather than the knock-on effects.
		return nil
	}
	c := &Cluster{}

	heads := inv.members(opts.HeadGroup)
	hg, ok := inv.groups[opts.HeadGroup]
	switch {
	case !ok:
		inv.errorf(inv.file, 0, "no [%s] group: the head host goes there", opts.HeadGroup)
		return nil
	case len(heads) != 1:
		var list []string
		for _, h := range heads {
			list = append(list, fmt.Sprintf("%s (line %d)", h, inv.hosts[h].line))
		}
		inv.errorf(inv.file, hg.line, "group [%s] must have exactly one host, has %d%s", opts.HeadGroup, len(heads), colonList(list))
		return nil
	}
	workers := inv.members(opts.WorkerGroup)
	if _, ok := inv.groups[opts.WorkerGroup]; !ok {
		inv.warnf(inv.file, 0, "no [%s] group: the cluster has the head only", opts.WorkerGroup)
	}
	for _, w := range workers {
		if w == heads[0] {
			inv.errorf(inv.file, inv.hosts[w].line, "host %s is in both [%s] and [%s]", w, opts.HeadGroup, opts.WorkerGroup)
			return nil
		}
	}
	isWorker := make(map[string]bool, len(workers))
	for _, w := range workers {
		isWorker[w] = true
	}
	for _, h := range inv.hostOrder {
		if h != heads[0] && !isWorker[h] {
			inv.warnf(inv.file, inv.hosts[h].line, "host %s is in neither [%s] nor [%s]; ignored", h, opts.HeadGroup, opts.WorkerGroup)
		}
	}

	headVars := inv.hostVars(heads[0], depth, parents)
	c.Head = inv.node(heads[0], headVars)
	for _, w := range workers {
		wv := inv.hostVars(w, depth, parents)
		c.Workers = append(c.Workers, inv.node(w, wv))
		for _, names := range clusterVars {
			_, hv, hok := lookup(headVars, names)
			wn, wvv, wok := lookup(wv, names)
			if wok && (!hok || hv.value != wvv.value) && !wvv.nonScalar {
				inv.warnf(wvv.file, wvv.line, "host %s: %s differs from the head's; cluster-wide settings are taken from the head", w, wn)
			}
		}
	}
	inv.clusterSettings(c, headVars)

	switch {
	case opts.ClusterName != "":
		c.Name = opts.ClusterName
	case c.Name != "":
	default:
		c.Name = inv.guessName(opts)
	}
	return c
}

func colonList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return ": " + strings.Join(l, ", ")
}

// guessName names the cluster after a group holding both the head and
// worker groups (like the seed's ray_cluster), else "ray".
func (inv *inventory) guessName(opts InventoryOptions) string {
	for _, name := range sortedKeys(inv.groups) {
		if name == "all" {
			continue
		}
		var kids []string
		for _, c := range inv.groups[name].children {
			kids = append(kids, c.name)
		}
		if slices.Contains(kids, opts.HeadGroup) && slices.Contains(kids, opts.WorkerGroup) {
			n := strings.Trim(strings.Map(func(r rune) rune {
				switch {
				case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
					return r
				case r >= 'A' && r <= 'Z':
					return r + 'a' - 'A'
				}
				return '-'
			}, name), "-")
			if len(n) <= MaxClusterNameLen && clusterNameRE.MatchString(n) {
				return n
			}
		}
	}
	return "ray"
}

// scalar fetches a supported variable's value, refusing lists, mappings and
// Jinja templates. Messages name the variable, never a secret's value.
func (inv *inventory) scalar(host string, vars map[string]invVar, names []string) (string, invVar, string, bool) {
	n, v, ok := lookup(vars, names)
	if !ok {
		return "", v, n, false
	}
	who := ""
	if host != "" {
		who = "host " + host + ": "
	}
	if v.nonScalar {
		inv.errorf(v.file, v.line, "%s%s: must be a single value", who, n)
		return "", v, n, false
	}
	if strings.Contains(v.value, "{{") || strings.Contains(v.value, "{%") {
		inv.errorf(v.file, v.line, "%s%s: Jinja templates are not evaluated by raydeploy", who, n)
		return "", v, n, false
	}
	return v.value, v, n, true
}

func (inv *inventory) intVar(host string, vars map[string]invVar, names []string, lo, hi int, what string) (int, bool) {
	s, v, n, ok := inv.scalar(host, vars, names)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || i < lo || i > hi {
		who := ""
		if host != "" {
			who = "host " + host + ": "
		}
		inv.errorf(v.file, v.line, "%s%s: %q is not %s (%d-%d)", who, n, s, what, lo, hi)
		return 0, false
	}
	return i, true
}

func (inv *inventory) fractionVar(host string, vars map[string]invVar, names []string) float64 {
	s, v, n, ok := inv.scalar(host, vars, names)
	if !ok {
		return 0
	}
	t := strings.TrimSpace(s)
	div := 1.0
	if strings.HasSuffix(t, "%") {
		t, div = strings.TrimSuffix(t, "%"), 100
	}
	f, err := strconv.ParseFloat(t, 64)
	f /= div
	if err != nil || !(f > 0 && f <= 1) {
		inv.errorf(v.file, v.line, "host %s: %s: %q is not a fraction in (0,1] or a percentage like 80%%", host, n, s)
		return 0
	}
	return f
}

func (inv *inventory) node(name string, vars map[string]invVar) Node {
	h := inv.hosts[name]
	n := Node{Name: name, Address: name, Port: h.port}
	if s, _, _, ok := inv.scalar(name, vars, varAddress); ok {
		n.Address = s
	}
	if p, ok := inv.intVar(name, vars, varPort, 1, 65535, "a port number"); ok {
		n.Port = p
	}
	if s, _, _, ok := inv.scalar(name, vars, varUser); ok {
		n.User = s
	}
	if s, _, _, ok := inv.scalar(name, vars, varKeyFile); ok {
		n.Auth.KeyFile = s
	}
	if s, v, vn, ok := inv.scalar(name, vars, varPassword); ok && s != "" {
		n.Auth.Password = NewSecret(s)
		inv.warnf(v.file, v.line, "host %s: %s is a plaintext SSH password; raydeploy keeps it in memory only and never logs or saves it; prefer a key (ansible_ssh_private_key_file) or ssh.password_env", name, vn)
	}
	if s, v, vn, ok := inv.scalar(name, vars, varSudoPassword); ok && s != "" {
		n.Auth.SudoPassword = NewSecret(s)
		inv.warnf(v.file, v.line, "host %s: %s is a plaintext sudo password; raydeploy keeps it in memory only and never logs or saves it; prefer ssh.sudo_password_env or passwordless sudo", name, vn)
	}
	if i, ok := inv.intVar(name, vars, varCPUs, 0, 1<<20, "a CPU count"); ok {
		n.Resources.CPUs = Ptr(i)
	}
	if i, ok := inv.intVar(name, vars, varGPUs, 0, 1<<16, "a GPU count"); ok {
		n.Resources.GPUs = Ptr(i)
	}
	if s, v, vn, ok := inv.scalar(name, vars, varMemory); ok {
		b, err := ParseByteSize(s)
		if err != nil {
			inv.errorf(v.file, v.line, "host %s: %s: %v", name, vn, err)
		}
		n.Resources.Memory = b
	}
	n.Resources.CPUFraction = inv.fractionVar(name, vars, varCPUFraction)
	n.Resources.MemoryFraction = inv.fractionVar(name, vars, varMemFraction)
	// Of an exclusive pair set at different levels, the more specific wins.
	if n.Resources.CPUs != nil && n.Resources.CPUFraction != 0 {
		if rankOf(vars, varCPUs) >= rankOf(vars, varCPUFraction) {
			n.Resources.CPUFraction = 0
		} else {
			n.Resources.CPUs = nil
		}
	}
	if n.Resources.Memory != 0 && n.Resources.MemoryFraction != 0 {
		if rankOf(vars, varMemory) >= rankOf(vars, varMemFraction) {
			n.Resources.MemoryFraction = 0
		} else {
			n.Resources.Memory = 0
		}
	}
	if c, _, cn, ok := inv.scalar(name, vars, []string{"ansible_connection"}); ok && c != "ssh" && c != "smart" && c != "paramiko" {
		v := vars[cn]
		inv.errorf(v.file, v.line, "host %s: ansible_connection=%s: raydeploy reaches nodes over SSH only", name, c)
	}
	return n
}

func (inv *inventory) clusterSettings(c *Cluster, vars map[string]invVar) {
	if s, _, _, ok := inv.scalar("", vars, varClusterName); ok {
		c.Name = s
	}
	if s, _, _, ok := inv.scalar("", vars, varVersion); ok {
		c.Ray.Version = s
	}
	if s, _, _, ok := inv.scalar("", vars, varImage); ok {
		c.Ray.Image = s
	}
	ports := []struct {
		names []string
		dst   *int
	}{
		{varGCSPort, &c.Ray.Ports.GCS}, {varDashboardPort, &c.Ray.Ports.Dashboard},
		{varClientPort, &c.Ray.Ports.Client}, {varMetricsPort, &c.Ray.Ports.Metrics},
		{varMinWorkerPort, &c.Ray.Ports.MinWorkerPort}, {varMaxWorkerPort, &c.Ray.Ports.MaxWorkerPort},
		{varAgentPort, &c.Ray.Ports.DashboardAgent}, {varServePort, &c.Ray.Ports.ServeHTTP},
	}
	for _, p := range ports {
		if v, ok := inv.intVar("", vars, p.names, 1, 65535, "a port number"); ok {
			*p.dst = v
		}
	}
	if s, v, vn, ok := inv.scalar("", vars, varShmSize); ok {
		b, err := ParseByteSize(s)
		if err != nil {
			inv.errorf(v.file, v.line, "%s: %v", vn, err)
		}
		c.Ray.ShmSize = b
	}
}
