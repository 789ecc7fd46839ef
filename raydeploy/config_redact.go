package raydeploy

import (
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Loader messages never carry the value of a secret variable. Each loader
// builds messages that name the file, the line and the key only; as a
// second line of defence, every value found after a secret-like key in the
// files read (key=value or key: value, however the line parses) is cut out
// of the messages and warnings before they are returned.

// secretLikeName reports whether a variable or key holds a secret by its
// name (password, pass, passphrase, token, secret, credential, API or private
// key). Names of where a secret is kept (..._file, ..._env, ..._path) do not.
func secretLikeName(name string) bool {
	n := strings.ToLower(name)
	for _, suf := range []string{"_file", "_env", "_path", "_dir"} {
		if strings.HasSuffix(n, suf) {
			return false
		}
	}
	for _, w := range []string{"pass", "secret", "token", "credential", "apikey", "api_key", "private_key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// secretAssignRE finds "name=value" and "name: value" with a name that may
// hold a secret (group 1, checked by secretLikeName); the value follows the
// match.
// It runs on lines lower-cased byte for byte (asciiLower), so offsets hold.
var secretAssignRE = regexp.MustCompile(`([a-z0-9_.-]*(?:pass|secret|token|credential|api_?key|private_key)[a-z0-9_.-]*)["']?[ \t]*[:=]`)

// secretWords are what secretAssignRE needs in a line to match at all.
var secretWords = []string{"pass", "secret", "token", "credential", "api", "private_key"}

// asciiLower lower-cases ASCII letters only, keeping every byte offset.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// minRedact is the shortest value cut out of messages: shorter ones would
// garble the words of the messages themselves.
const minRedact = 3

// secretSet collects the secret values a loader has seen, indexed by their
// first bytes so that redacting a message costs its length, not the number
// of values.
type secretSet struct {
	byPrefix map[string][]string
	seen     map[string]bool
}

// add records a secret value, whole and word by word.
func (s *secretSet) add(v string) {
	keep := func(w string) {
		if len(w) < minRedact || s.seen[w] {
			return
		}
		if s.seen == nil {
			s.seen, s.byPrefix = map[string]bool{}, map[string][]string{}
		}
		s.seen[w] = true
		s.byPrefix[w[:minRedact]] = append(s.byPrefix[w[:minRedact]], w)
	}
	// Without quotes and sigils: with them, a value would hide a longer
	// match starting inside it.
	keep(trimSigils(strings.TrimSpace(v)))
	for _, w := range strings.Fields(v) {
		keep(trimSigils(w))
	}
}

// trimSigils strips quotes, YAML anchors, aliases and tags, and brackets
// around a value or word.
func trimSigils(w string) string {
	return strings.TrimRight(strings.TrimLeft(w, `"'&*![{(`), `"',;]})`)
}

// scan adds the value after every secret-like key in data, line by line,
// from the raw text: it works on files that do not parse.
func (s *secretSet) scan(data []byte) {
	for _, line := range strings.Split(string(data), "\n") {
		low := asciiLower(line)
		if !slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(low, w) }) {
			continue // the regexp is slow; most lines have none of its words
		}
		for off := 0; ; {
			m := secretAssignRE.FindStringSubmatchIndex(low[off:])
			if m == nil {
				break
			}
			if secretLikeName(low[off+m[2] : off+m[3]]) {
				s.addRaw(line[off+m[1]:])
			}
			off += m[1]
		}
	}
}

// addRaw adds a value as written after "key:" or "key=": whole, its
// first word (the rest of the line may be other variables), and the text
// inside its quotes, past a YAML anchor or tag.
func (s *secretSet) addRaw(v string) {
	v = strings.TrimSpace(v)
	s.add(v)
	for len(v) > 0 && (v[0] == '&' || v[0] == '!') {
		i := strings.IndexAny(v, " \t")
		if i < 0 {
			break
		}
		v = strings.TrimSpace(v[i:])
	}
	s.add(v)
	if f := strings.Fields(v); len(f) > 0 {
		s.add(f[0])
	}
	if len(v) > 1 && (v[0] == '"' || v[0] == '\'') {
		if j := strings.IndexByte(v[1:], v[0]); j >= 0 {
			s.add(v[1 : 1+j])
		} else {
			s.add(v[1:])
		}
	}
}

// redact replaces every secret value in msg with [redacted], the longest
// first. A value that begins or ends with a letter or digit is replaced only
// where it is not part of a longer word.
func (s *secretSet) redact(msg string) string {
	if len(s.byPrefix) == 0 {
		return msg
	}
	var b strings.Builder
	last := 0
	for i := 0; i+minRedact <= len(msg); {
		best := ""
		for _, v := range s.byPrefix[msg[i:i+minRedact]] {
			if len(v) > len(best) && strings.HasPrefix(msg[i:], v) && wordAt(msg, i, v) {
				best = v
			}
		}
		if best == "" {
			i++
			continue
		}
		b.WriteString(msg[last:i])
		b.WriteString(redacted)
		i += len(best)
		last = i
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

// wordAt reports whether v at msg[i:] is not part of a longer word.
func wordAt(msg string, i int, v string) bool {
	end := i + len(v)
	return !(isWordByte(v[0]) && i > 0 && isWordByte(msg[i-1])) &&
		!(isWordByte(v[len(v)-1]) && end < len(msg) && isWordByte(msg[end]))
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// redactProblems cuts secret values out of loader problems and warnings.
func (s *secretSet) redactProblems(ps []*FieldError, ws Warnings) {
	for _, p := range ps {
		p.Msg = s.redact(p.Msg)
		p.Field = s.redact(p.Field)
	}
	for i := range ws {
		ws[i].Msg = s.redact(ws[i].Msg)
	}
}

// addYAML adds the scalar values of secret-like keys anywhere in a YAML
// tree, as decoded (escapes resolved). Aliases are not followed.
func (s *secretSet) addYAML(n *yaml.Node, depth int) {
	if n == nil || depth > 64 {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; v.Kind == yaml.ScalarNode && secretLikeName(k.Value) {
				s.add(v.Value)
			}
		}
	}
	for _, c := range n.Content {
		s.addYAML(c, depth+1)
	}
}
