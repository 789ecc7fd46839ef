package raydeploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

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
