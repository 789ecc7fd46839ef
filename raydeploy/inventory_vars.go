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
		for k, v := range h.fileVars {
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

// groupGraph is the inventory's groups resolved once: each group's depth
// below "all" and its parents, and the resolved variables of each distinct
// set of direct groups a host has (most hosts share one), so resolving the
// hosts costs the size of the inventory, not hosts times groups.
type groupGraph struct {
	depth   map[string]int
	parents map[string][]string
	merged  map[string]map[string]invVar // by the host's direct groups, joined
}

// groupDepths computes each group's depth below "all" (its longest path of
// :children links from a top group) and reports cycles, in one pass over
// the groups and their links (iterative: a chain of any length is fine).
func (inv *inventory) groupDepths() *groupGraph {
	gg := &groupGraph{depth: map[string]int{"all": 0}, parents: map[string][]string{}, merged: map[string]map[string]invVar{}}
	names := sortedKeys(inv.groups)
	type edge struct{ parent, child string }
	seen := map[edge]bool{}
	for _, name := range names {
		for _, c := range inv.groups[name].children {
			if e := (edge{name, c.name}); !seen[e] {
				seen[e] = true
				gg.parents[c.name] = append(gg.parents[c.name], name)
			}
		}
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	type frame struct {
		g string
		i int // next parent to visit
		d int // depth so far
	}
	for _, root := range names {
		if root == "all" || state[root] != 0 {
			continue
		}
		stack := []frame{{g: root, d: 1}}
		state[root] = visiting
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			ps := gg.parents[f.g]
			if f.i == len(ps) {
				state[f.g] = done
				gg.depth[f.g] = f.d
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					top := &stack[len(stack)-1]
					top.d = max(top.d, f.d+1)
				}
				continue
			}
			p := ps[f.i]
			f.i++
			switch {
			case p == "all":
			case state[p] == visiting:
				line := 0
				for _, c := range inv.groups[p].children {
					if c.name == f.g {
						line = c.line
					}
				}
				inv.errorf(inv.file, line, "group %s: children cycle through %s", p, f.g)
			case state[p] == done:
				f.d = max(f.d, gg.depth[p]+1)
			default:
				state[p] = visiting
				stack = append(stack, frame{g: p, d: 1})
			}
		}
	}
	return gg
}

// hostGroups returns the groups of a host whose direct groups are direct,
// through children too, sorted by depth then name: Ansible's order of
// precedence.
func (inv *inventory) hostGroups(gg *groupGraph, direct []string) []string {
	set := map[string]bool{"all": true}
	stack := slices.Clone(direct)
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if set[g] {
			continue
		}
		set[g] = true
		stack = append(stack, gg.parents[g]...)
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(gg.depth[a], gg.depth[b]), cmp.Compare(a, b)) })
	return out
}

// members lists the hosts of a group and its descendants, in file order.
func (inv *inventory) members(group string) []string {
	set := map[string]bool{}
	seen := map[string]bool{}
	stack := []string{group}
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[g] {
			continue
		}
		seen[g] = true
		gr, ok := inv.groups[g]
		if !ok {
			continue
		}
		for _, h := range gr.hosts {
			set[h] = true
		}
		for _, c := range gr.children {
			stack = append(stack, c.name)
		}
	}
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
// group_vars/<group> (by depth), host-line vars, host_vars/<host>. The
// group part is resolved once per distinct set of direct groups.
func (inv *inventory) hostVars(host string, gg *groupGraph) map[string]invVar {
	h := inv.hosts[host]
	key := strings.Join(h.groups, "\x00")
	base, ok := gg.merged[key]
	rank := 0
	overlay := func(dst, m map[string]invVar) {
		rank++
		for k, v := range m {
			v.rank = rank
			dst[k] = v
		}
	}
	if !ok {
		base = map[string]invVar{}
		groups := inv.hostGroups(gg, h.groups)
		for _, g := range groups {
			overlay(base, inv.groups[g].vars)
		}
		for _, g := range groups {
			overlay(base, inv.groups[g].fileVars)
		}
		gg.merged[key] = base
	}
	out := make(map[string]invVar, len(base)+len(h.vars))
	top := 0
	for k, v := range base {
		out[k] = v
		top = max(top, v.rank)
	}
	rank = top
	overlay(out, h.vars)
	overlay(out, h.fileVars)
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
