package raydeploy

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseINI reads the inventory's INI dialect. Messages never echo a line:
// it may hold a password. Parsing stops at a line that would take the
// inventory past its host cap.
func (inv *inventory) parseINI(data []byte) {
	inv.secrets.scan(data)
	section, kind := "ungrouped", ""
	for i, raw := range strings.Split(string(data), "\n") {
		if inv.capped {
			return
		}
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
				inv.errorf(inv.file, ln, "invalid group name%s (letters, digits, '_', '-' and '.')", quoteIfPlain(name))
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
			if secretVar(k) {
				inv.secrets.add(val)
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
	for _, t := range toks {
		if k, v, ok := strings.Cut(t, "="); ok && secretVar(k) {
			inv.secrets.add(v)
		}
	}
	if k, _, ok := strings.Cut(toks[0], "="); ok {
		// A variable out of place: name it, never show its value.
		key := "a variable"
		if validVarName(k) {
			key = k
		}
		inv.errorf(inv.file, ln, "[%s]: %s=%s where a host name is expected (a host's variables follow its name on the line; a group's go under [%s:vars])",
			group, key, redacted, group)
		return
	}
	hp, err := parseHostPattern(toks[0])
	if err != nil {
		inv.errorf(inv.file, ln, "host pattern: %v", err)
		return
	}
	if n := hp.count(); n > uint64(inv.maxHosts-inv.listed) {
		inv.errorf(inv.file, ln, "host pattern %q: expands to %d hosts, past the inventory's cap of %d host entries (%d listed before this line; InventoryOptions.MaxHosts raises it)",
			toks[0], n, inv.maxHosts, inv.listed)
		inv.capped = true
		return
	}
	names := hp.expand()
	inv.listed += len(names)
	port := hp.port
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

// quoteIfPlain renders name quoted after a space when it cannot be part of
// a variable assignment, else nothing (it may hold a secret's value).
func quoteIfPlain(name string) string {
	if strings.ContainsAny(name, "=: \t") {
		return ""
	}
	return " " + strconv.Quote(name)
}

// hostPattern is a host name with at most one range, like node[01:04],
// node[a:c] or node[1:9:2], and an optional :port.
type hostPattern struct {
	head, tail string
	ranged     bool
	letters    bool
	lo, hi     int64 // the range's bounds (letters: their byte values)
	step       int64
	width      int // zero padding of numbers, 0 for none
	port       int
}

// count is how many names the pattern expands to, without overflow at the
// int64 limit.
func (h hostPattern) count() uint64 {
	if !h.ranged {
		return 1
	}
	return uint64(h.hi-h.lo)/uint64(h.step) + 1
}

// expand lists the names; call it only after count was checked.
func (h hostPattern) expand() []string {
	if !h.ranged {
		return []string{h.head}
	}
	n := h.count()
	out := make([]string, 0, n)
	for k := uint64(0); k < n; k++ {
		i := h.lo + int64(k)*h.step // k*step <= hi-lo: no overflow
		if h.letters {
			out = append(out, h.head+string(rune(i))+h.tail)
		} else {
			out = append(out, fmt.Sprintf("%s%0*d%s", h.head, h.width, i, h.tail))
		}
	}
	return out
}

// parseHostPattern reads node[01:04] / node[a:c] ranges (one per pattern,
// with an optional :step, an empty start meaning 0, as in Ansible) and a
// trailing :port. A zero-padded start needs an end of the same width.
func parseHostPattern(p string) (hostPattern, error) {
	var hp hostPattern
	if i := portColon(p); i >= 0 {
		n, err := strconv.Atoi(p[i+1:])
		if err != nil || n < 1 || n > 65535 {
			return hp, fmt.Errorf("%q: port after ':' must be 1-65535", p)
		}
		p, hp.port = p[:i], n
	}
	open := strings.IndexByte(p, '[')
	if open < 0 {
		if p == "" || strings.ContainsAny(p, "]:") {
			return hp, fmt.Errorf("%q is not a host name", p)
		}
		hp.head = p
		return hp, nil
	}
	end := strings.IndexByte(p[open:], ']')
	if end < 0 {
		return hp, fmt.Errorf("%q: unclosed '['", p)
	}
	end += open
	hp.head, hp.tail, hp.ranged = p[:open], p[end+1:], true
	body := p[open+1 : end]
	if strings.ContainsAny(hp.tail, "[]") {
		return hp, fmt.Errorf("%q: only one range per host pattern is supported", p)
	}
	parts := strings.Split(body, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return hp, fmt.Errorf("%q: range must be [start:end] or [start:end:step]", p)
	}
	hp.step = 1
	if len(parts) == 3 {
		s, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || s < 1 {
			return hp, fmt.Errorf("%q: step must be a positive integer (at most %d)", p, int64(math.MaxInt64))
		}
		hp.step = s
	}
	start := parts[0]
	if start == "" {
		start = "0"
	}
	if len(start) == 1 && len(parts[1]) == 1 && isLetter(start[0]) && isLetter(parts[1][0]) {
		hp.letters, hp.lo, hp.hi = true, int64(start[0]), int64(parts[1][0])
		if hp.hi < hp.lo {
			return hp, fmt.Errorf("%q: range must be ascending", p)
		}
		return hp, nil
	}
	lo, errLo := strconv.ParseInt(start, 10, 64)
	hi, errHi := strconv.ParseInt(parts[1], 10, 64)
	switch {
	case errors.Is(errLo, strconv.ErrRange) || errors.Is(errHi, strconv.ErrRange):
		return hp, fmt.Errorf("%q: range bound past %d", p, int64(math.MaxInt64))
	case errLo != nil || errHi != nil || !allDigits(start) || !allDigits(parts[1]):
		return hp, fmt.Errorf("%q: range must be numbers or single letters, ascending", p)
	case hi < lo:
		return hp, fmt.Errorf("%q: range must be ascending", p)
	}
	hp.lo, hp.hi = lo, hi
	if len(start) > 1 && start[0] == '0' {
		if len(start) != len(parts[1]) {
			return hp, fmt.Errorf("%q: a zero-padded range needs a start and an end of the same width", p)
		}
		hp.width = len(start)
	}
	return hp, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
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
	return inv.readVarsDir(dir, "group_vars", "group", func(name string) (map[string]invVar, bool) {
		g, ok := inv.groups[name]
		if !ok {
			return nil, false
		}
		if g.fileVars == nil {
			g.fileVars = map[string]invVar{}
		}
		return g.fileVars, true
	})
}

// readHostVars reads host_vars/<host>.yml|.yaml|<host>/ files.
func (inv *inventory) readHostVars(dir string) error {
	return inv.readVarsDir(dir, "host_vars", "host", func(name string) (map[string]invVar, bool) {
		h, ok := inv.hosts[name]
		if !ok {
			return nil, false
		}
		if h.fileVars == nil {
			h.fileVars = map[string]invVar{}
		}
		return h.fileVars, true
	})
}

// readVarsDir reads <dir>/<name>.yml|.yaml and <dir>/<name>/*.yml|.yaml
// into the map target gives for name (what says what a name is, in
// warnings about names the inventory does not have).
func (inv *inventory) readVarsDir(dir, kind, what string, target func(name string) (map[string]invVar, bool)) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load inventory: %s: %w", kind, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		var files []string
		owner := name
		if e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("load inventory: %s: %w", kind, err)
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
			owner = strings.TrimSuffix(name, ext)
			files = []string{filepath.Join(dir, name)}
		}
		m, ok := target(owner)
		if !ok {
			inv.warnf(filepath.Join(dir, name), 0, "%s %q is not in the inventory; file ignored", what, owner)
			continue
		}
		for _, f := range files {
			data, err := readConfig(f)
			if err != nil {
				return fmt.Errorf("load inventory: %w", err)
			}
			inv.parseVarsFile(m, f, data)
		}
	}
	return nil
}

// parseVarsFile reads one group_vars or host_vars file, a mapping of
// variable names to values, into m.
func (inv *inventory) parseVarsFile(m map[string]invVar, file string, data []byte) {
	inv.secrets.scan(data)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		fe := yamlError(file, data, err).(*ValidationError)
		for _, p := range fe.Problems {
			inv.problem(p)
		}
		return
	}
	inv.secrets.addYAML(&doc, 0)
	if len(doc.Content) == 0 {
		return
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return // a file of comments only
	}
	if top.Kind != yaml.MappingNode {
		inv.errorf(file, top.Line, "expected a mapping of variable names to values")
		return
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || !validVarName(k.Value) {
			inv.errorf(file, k.Line, "a key is not a variable name (letters, digits and '_', not starting with a digit)")
			continue
		}
		iv := invVar{file: file, line: k.Line}
		if v.Kind == yaml.ScalarNode {
			if v.Tag != "!!null" {
				iv.value = v.Value
			}
		} else {
			iv.nonScalar = true
		}
		m[k.Value] = iv
	}
}
