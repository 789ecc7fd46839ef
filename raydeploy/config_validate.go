package raydeploy

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// FieldError is one problem in a cluster definition. File and Line locate
// it in a configuration file when known; Field is the path of the field in
// the YAML format's names, like "workers[1].address".
type FieldError struct {
	// File is the configuration file (empty: not known, or not from a file).
	File string
	// Line is the 1-based line in File (0: not known).
	Line int
	// Field is the path of the field, e.g. "workers[1].address" (empty: not
	// about one field).
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error renders "file:line: field: msg", leaving out what is unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		}
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError lists every problem found in a cluster definition, in
// the order of the fields. errors.As finds each *FieldError through it.
type ValidationError struct {
	// Problems holds every problem found, in field order.
	Problems []*FieldError
}

// Error renders one problem per line.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.As and errors.Is.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// problems collects FieldErrors during validation.
type problems []*FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

// Validate checks the cluster as given (zero values meaning "default") and
// returns a *ValidationError listing every problem, each naming its field
// path, or nil.
func (c *Cluster) Validate() error {
	var p problems
	switch {
	case c.Name == "":
		p.add("cluster_name", "must not be empty")
	case len(c.Name) > MaxClusterNameLen:
		p.add("cluster_name", "%q longer than %d characters", c.Name, MaxClusterNameLen)
	case !clusterNameRE.MatchString(c.Name):
		p.add("cluster_name", "%q must be lower-case letters, digits and '-', starting and ending with a letter or digit", c.Name)
	}
	validatePort(&p, "ssh.port", c.SSH.Port)
	validateUser(&p, "ssh.user", c.SSH.User)
	validateAuth(&p, "ssh.", c.SSH.Auth)
	if j := c.SSH.Jump; j != nil {
		validateAddress(&p, "ssh.jump.address", j.Address)
		validatePort(&p, "ssh.jump.port", j.Port)
		validateUser(&p, "ssh.jump.user", j.User)
		validateAuth(&p, "ssh.jump.", j.Auth)
	}
	c.SSH.Timeouts.validate(&p, "ssh.timeouts.")
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) && c.StateDir != "~" && !strings.HasPrefix(c.StateDir, "~/") {
		p.add("state_dir", "%q must be an absolute path (or start with ~/)", c.StateDir)
	}

	sshPort := c.SSH.Port
	if sshPort == 0 {
		sshPort = DefaultSSHPort
	}
	names := map[string]string{}
	endpoints := map[string]string{}
	check := func(path string, n Node) {
		validateNode(&p, path, n)
		if id := n.ID(); id != "" {
			field := path + ".name"
			if n.Name == "" {
				field = path + ".address"
			}
			if prev, ok := names[id]; ok {
				p.add(field, "duplicate of %s %q", prev, id)
			} else {
				names[id] = field
			}
		}
		if n.Address != "" {
			port := n.Port
			if port == 0 {
				port = sshPort
			}
			key := normalizeAddress(n.Address) + "|" + strconv.Itoa(port)
			if prev, ok := endpoints[key]; ok {
				p.add(path+".address", "%s port %d duplicate of %s", n.Address, port, prev)
			} else {
				endpoints[key] = path + ".address"
			}
		}
	}
	check("head", c.Head)
	for i, w := range c.Workers {
		check(fmt.Sprintf("workers[%d]", i), w)
	}
	c.Ray.validate(&p)
	c.Monitoring.validate(&p)
	return p.err()
}

func normalizeAddress(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.Unmap().String()
	}
	return strings.TrimSuffix(strings.ToLower(a), ".")
}

func validateNode(p *problems, path string, n Node) {
	if n.Name != "" && (strings.TrimSpace(n.Name) != n.Name || strings.ContainsAny(n.Name, " \t\r\n/\\") || len(n.Name) > 253) {
		p.add(path+".name", "%q must not contain spaces or slashes (at most 253 characters)", n.Name)
	}
	validateAddress(p, path+".address", n.Address)
	validatePort(p, path+".port", n.Port)
	validateUser(p, path+".user", n.User)
	validateAuth(p, path+".", n.Auth)
	validateLabels(p, path+".labels", n.Labels)
	validateResources(p, path+".resources", n.Resources)
}

func validateAddress(p *problems, field, a string) {
	if a == "" {
		p.add(field, "must not be empty")
		return
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return
	}
	if len(a) > 253 || !hostnameRE.MatchString(a) {
		p.add(field, "%q is neither an IP address nor a host name", a)
	}
}

func validatePort(p *problems, field string, port int) {
	if port != 0 && (port < 1 || port > 65535) {
		p.add(field, "%d out of range 1-65535", port)
	}
}

func validateUser(p *problems, field, u string) {
	if u != "" && !userRE.MatchString(u) {
		p.add(field, "%q is not a valid user name", u)
	}
}

func validateEnvName(p *problems, field, name string) {
	if name != "" && !envNameRE.MatchString(name) {
		p.add(field, "%q is not an environment variable name", name)
	}
}

func validateAuth(p *problems, prefix string, a Auth) {
	if strings.ContainsAny(a.KeyFile, "\x00\n") {
		p.add(prefix+"key_file", "must not contain NUL or newline")
	}
	validateEnvName(p, prefix+"key_passphrase_env", a.KeyPassphraseEnv)
	validateEnvName(p, prefix+"password_env", a.PasswordEnv)
	validateEnvName(p, prefix+"sudo_password_env", a.SudoPasswordEnv)
	if a.PasswordEnv != "" && a.Password.IsSet() {
		p.add(prefix+"password", "exclusive with password_env")
	}
	if a.SudoPasswordEnv != "" && a.SudoPassword.IsSet() {
		p.add(prefix+"sudo_password", "exclusive with sudo_password_env")
	}
	if a.SudoPasswordFile != "" && (a.SudoPasswordEnv != "" || a.SudoPassword.IsSet()) {
		p.add(prefix+"sudo_password_file", "exclusive with sudo_password_env and sudo_password")
	}
	validatePathField(p, prefix+"sudo_password_file", a.SudoPasswordFile)
	if a.Password.Reveal() == redacted {
		p.add(prefix+"password", "holds the redaction placeholder, not a password")
	}
	if a.SudoPassword.Reveal() == redacted {
		p.add(prefix+"sudo_password", "holds the redaction placeholder, not a password")
	}
}

// validateLabels checks Kubernetes-style label keys ([prefix/]name) and
// values; the ray.io/ prefix is Ray's own.
func validateLabels(p *problems, field string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		prefix, name, hasPrefix := strings.Cut(k, "/")
		if !hasPrefix {
			name, prefix = prefix, ""
		}
		switch {
		case hasPrefix && (len(prefix) > 253 || !labelPrefixRE.MatchString(prefix)):
			p.add(field, "key %q: prefix must be a lower-case DNS subdomain", k)
		case !labelNameRE.MatchString(name):
			p.add(field, "key %q: name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", k)
		case prefix == "ray.io" || strings.HasSuffix(prefix, ".ray.io"):
			p.add(field, "key %q: the ray.io/ prefix is reserved for Ray", k)
		}
		if v != "" && !labelNameRE.MatchString(v) {
			p.add(field+"."+k, "value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
		}
	}
}

// reservedResources are Ray's built-in resource names.
var reservedResources = map[string]bool{"CPU": true, "GPU": true, "memory": true, "object_store_memory": true}

func validateResources(p *problems, field string, r Resources) {
	if r.CPUs != nil && *r.CPUs < 0 {
		p.add(field+".cpus", "%d must not be negative", *r.CPUs)
	}
	if r.GPUs != nil && *r.GPUs < 0 {
		p.add(field+".gpus", "%d must not be negative", *r.GPUs)
	}
	if r.Memory < 0 {
		p.add(field+".memory", "%d must not be negative", r.Memory)
	}
	validateFraction(p, field+".cpu_fraction", r.CPUFraction)
	validateFraction(p, field+".memory_fraction", r.MemoryFraction)
	if r.CPUs != nil && r.CPUFraction != 0 {
		p.add(field+".cpu_fraction", "exclusive with cpus")
	}
	if r.Memory != 0 && r.MemoryFraction != 0 {
		p.add(field+".memory_fraction", "exclusive with memory")
	}
	for _, k := range sortedKeys(r.Custom) {
		v := r.Custom[k]
		switch {
		case reservedResources[k]:
			p.add(field+".custom", "%q is a built-in Ray resource; use cpus, gpus or memory", k)
		case k == "" || strings.ContainsAny(k, " \t\r\n\"'"):
			p.add(field+".custom", "resource name %q must be non-empty without spaces or quotes", k)
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			p.add(field+".custom."+k, "%v must be a non-negative number", v)
		}
	}
}

func validateFraction(p *problems, field string, f float64) {
	if f != 0 && !(f > 0 && f <= 1) {
		p.add(field, "%v outside (0,1]", f)
	}
}

var (
	clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	hostnameRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	userRE        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)
