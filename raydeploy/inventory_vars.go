package raydeploy

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

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
