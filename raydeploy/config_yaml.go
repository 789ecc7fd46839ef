package raydeploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseYAML parses a cluster in the YAML format described in the package
// documentation. Parsing is strict: unknown keys, values of the wrong type
// and repeated keys are errors naming the line and the field. The result is
// not validated and has no defaults filled in: call Validate and
// WithDefaults. Errors are a *ValidationError of *FieldError.
func ParseYAML(data []byte) (*Cluster, error) {
	return parseYAML("", data)
}

// LoadFile reads and parses a cluster YAML file; see ParseYAML. Errors name
// the file.
func LoadFile(path string) (*Cluster, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return parseYAML(path, data)
}

// parseYAML decodes; its errors never show a secret's value (the YAML
// decoder quotes values in some messages, e.g. an unknown alias).
func parseYAML(file string, data []byte) (*Cluster, error) {
	c, err := decodeYAML(file, data)
	if err == nil {
		return c, nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		var s secretSet
		s.scan(data)
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			s.addYAML(&root, 0)
		}
		s.redactProblems(ve.Problems, nil)
	}
	return nil, err
}

func decodeYAML(file string, data []byte) (*Cluster, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Cluster
	err := dec.Decode(&c)
	if errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []*FieldError{{File: file, Msg: "empty configuration"}}}
	}
	if err != nil {
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, yamlError(file, data, err)
		}
		return nil, &ValidationError{Problems: []*FieldError{{File: file, Line: line, Msg: "more than one YAML document"}}}
	}
	return &c, nil
}

var (
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (.+) not found in type .*$`)
	cannotRE       = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	dupKeyRE       = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	anchorRE       = regexp.MustCompile(`^(?:unknown anchor '(.*)' referenced|anchor '(.*)' value contains itself)$`)
)

// lineOf is the number of the first line of data holding s, or 0.
func lineOf(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 0
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

// yamlError turns the decoder's messages into FieldErrors with the line and
// the field path.
func yamlError(file string, data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		fe := &FieldError{File: file, Msg: msg}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Msg = m[2]
		} else if m := anchorRE.FindStringSubmatch(msg); m != nil {
			// The decoder gives no line for these: find it.
			if m[1] != "" {
				fe.Line = lineOf(data, "*"+m[1])
				fe.Msg = fmt.Sprintf("alias *%s has no anchor &%s before it", m[1], m[1])
			} else {
				fe.Line = lineOf(data, "&"+m[2])
				fe.Msg = fmt.Sprintf("anchor &%s contains itself", m[2])
			}
		}
		return &ValidationError{Problems: []*FieldError{fe}}
	}
	idx := indexYAML(data)
	var ps []*FieldError
	for _, e := range te.Errors {
		fe := &FieldError{File: file, Msg: e}
		m := yamlLineRE.FindStringSubmatch(e)
		if m == nil {
			ps = append(ps, fe)
			continue
		}
		fe.Line, _ = strconv.Atoi(m[1])
		fe.Msg = m[2]
		if u := unknownFieldRE.FindStringSubmatch(fe.Msg); u != nil {
			fe.Field = idx.parentOfKey(fe.Line, u[1])
			fe.Msg = fmt.Sprintf("unknown key %q", u[1])
		} else if c := cannotRE.FindStringSubmatch(fe.Msg); c != nil {
			fe.Field = idx.pathOfValue(fe.Line, c[2])
			got := c[1]
			if c[2] != "" {
				got += " " + strconv.Quote(c[2])
			}
			fe.Msg = fmt.Sprintf("expected %s, got %s", goTypeWords(c[3]), got)
		} else if d := dupKeyRE.FindStringSubmatch(fe.Msg); d != nil {
			fe.Field = idx.pathOfKey(fe.Line, d[1])
			fe.Msg = fmt.Sprintf("repeated key %q (first at line %s)", d[1], d[2])
		} else {
			fe.Field = idx.pathInMessage(fe.Line, fe.Msg)
		}
		ps = append(ps, fe)
	}
	return &ValidationError{Problems: ps}
}

func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "raydeploy.") && t != "raydeploy.Secret" && t != "raydeploy.Role":
		return "a mapping"
	case strings.HasPrefix(t, "*"):
		return goTypeWords(t[1:])
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string" || t == "raydeploy.Secret":
		return "a string"
	}
	return t
}

// yamlEntry is one mapping key or sequence item of a YAML document.
type yamlEntry struct {
	path   string // field path, like workers[1].port
	parent string // path of the enclosing mapping
	key    string // mapping key ("" for sequence items)
	value  string // the scalar value, if any
}

// yamlIndex maps line numbers to the entries on them.
type yamlIndex map[int][]yamlEntry

func indexYAML(data []byte) yamlIndex {
	idx := yamlIndex{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return idx
	}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if depth > 64 {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				e := yamlEntry{path: p, parent: path, key: k.Value}
				if v.Kind == yaml.ScalarNode {
					e.value = v.Value
				}
				idx[k.Line] = append(idx[k.Line], e)
				if v.Line != k.Line {
					idx[v.Line] = append(idx[v.Line], e)
				}
				walk(v, p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				e := yamlEntry{path: p, parent: path}
				if c.Kind == yaml.ScalarNode {
					e.value = c.Value
				}
				idx[c.Line] = append(idx[c.Line], e)
				walk(c, p, depth+1)
			}
		}
	}
	walk(&root, "", 0)
	return idx
}

func (x yamlIndex) find(line int, match func(yamlEntry) bool) (yamlEntry, bool) {
	es := x[line]
	for i := len(es) - 1; i >= 0; i-- { // the deepest entry first
		if match(es[i]) {
			return es[i], true
		}
	}
	if len(es) > 0 {
		return es[len(es)-1], true
	}
	return yamlEntry{}, false
}

func (x yamlIndex) parentOfKey(line int, key string) string {
	e, ok := x.find(line, func(e yamlEntry) bool { return e.key == key })
	if !ok {
		return ""
	}
	return e.parent
}

func (x yamlIndex) pathOfKey(line int, key string) string {
	e, _ := x.find(line, func(e yamlEntry) bool { return e.key == key })
	return e.path
}

func (x yamlIndex) pathOfValue(line int, value string) string {
	e, _ := x.find(line, func(e yamlEntry) bool {
		if value == "" {
			return e.key != "" && e.value == ""
		}
		return e.value == value
	})
	return e.path
}

// pathInMessage picks the entry on line whose scalar value the message
// quotes, else the last (deepest) entry on the line.
func (x yamlIndex) pathInMessage(line int, msg string) string {
	e, _ := x.find(line, func(e yamlEntry) bool {
		return e.value != "" && strings.Contains(msg, strconv.Quote(e.value))
	})
	return e.path
}
