package raydeploy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Built-in SSH defaults, used when neither the node nor the cluster's SSH
// section sets a value.
const (
	DefaultSSHPort        = 22
	DefaultKnownHostsFile = "~/.ssh/known_hosts"
)

// MaxClusterNameLen is the longest accepted cluster name (a DNS label).
const MaxClusterNameLen = 63

// Role is a node's part in the Ray cluster.
type Role string

// The roles a node can have.
const (
	RoleHead   Role = "head"
	RoleWorker Role = "worker"
)

// Cluster is the desired Ray cluster: one head, any number of workers, how to
// reach them over SSH and how to run Ray on them.
//
// A Cluster as loaded keeps zero values where the user set nothing; call
// WithDefaults for the effective values and Validate for the problems.
type Cluster struct {
	// Name identifies the cluster in container labels and the state
	// directory: lower-case letters, digits and '-', at most 63 characters,
	// starting and ending with a letter or digit.
	Name string `json:"cluster_name" yaml:"cluster_name"`
	// SSH holds the cluster-wide SSH defaults.
	SSH SSHConfig `json:"ssh" yaml:"ssh,omitempty"`
	// Head is the Ray head node.
	Head Node `json:"head" yaml:"head"`
	// Workers are the Ray worker nodes; may be empty.
	Workers []Node `json:"workers,omitempty" yaml:"workers,omitempty"`
	// StateDir holds the ledger, lock, approvals and audit log. Default:
	// $XDG_STATE_HOME/raydeploy/<name>, else ~/.local/state/raydeploy/<name>.
	StateDir string `json:"state_dir,omitempty" yaml:"state_dir,omitempty"`
	// Ray says how Ray runs on every node.
	Ray RayConfig `json:"ray" yaml:"ray,omitempty"`
	// Monitoring says whether and how the monitoring stack runs.
	Monitoring MonitoringConfig `json:"monitoring,omitzero" yaml:"monitoring,omitempty"`
}

// SSHConfig holds the SSH settings every node inherits unless it sets its own.
type SSHConfig struct {
	// User is the login user (built-in default: the local user, $USER).
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// Port is the SSH port (built-in default 22).
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Auth holds the default credentials.
	Auth Auth `json:"auth" yaml:",inline"`
	// KnownHostsFile is the known_hosts file host keys are checked against
	// (default ~/.ssh/known_hosts).
	KnownHostsFile string `json:"known_hosts,omitempty" yaml:"known_hosts,omitempty"`
	// TrustOnFirstUse accepts and records the key of a host that is not in
	// KnownHostsFile yet. Off by default: unknown hosts are refused.
	TrustOnFirstUse bool `json:"trust_on_first_use,omitempty" yaml:"trust_on_first_use,omitempty"`
	// Jump is an optional bastion every node is reached through.
	Jump *JumpHost `json:"jump,omitempty" yaml:"jump,omitempty"`
}

// JumpHost is an SSH bastion (like ssh -J).
type JumpHost struct {
	// Address is the bastion's IP address or host name.
	Address string `json:"address" yaml:"address"`
	// Port is the bastion's SSH port (default: the cluster's SSH port).
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// User is the bastion login user (default: the cluster's SSH user).
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// Auth holds the bastion's credentials (default: the cluster's).
	Auth Auth `json:"auth" yaml:",inline"`
}

// Node is one machine of the cluster.
type Node struct {
	// Name identifies the node in logs, errors and the ledger (default: the
	// address). Unique within the cluster.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Address is the node's IP address or host name, used for SSH and as
	// Ray's --node-ip-address.
	Address string `json:"address" yaml:"address"`
	// Port is the node's SSH port (default: the cluster's SSH port).
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// User is the SSH login user (default: the cluster's SSH user).
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// Auth holds the node's SSH and sudo credentials; empty fields inherit
	// the cluster's.
	Auth Auth `json:"auth" yaml:",inline"`
	// Labels are Ray node labels (ray start --labels), Kubernetes-style keys.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Resources are what Ray may use on this node; unset fields inherit
	// the cluster's Ray.Resources.
	Resources Resources `json:"resources" yaml:"resources,omitempty"`
	// Role is set by Cluster.Nodes; it is not read from configuration.
	Role Role `json:"role,omitempty" yaml:"-"`
}

// ID is the node's name, or its address when no name is set. It is unique
// within a valid cluster and keys per-node errors and results.
func (n Node) ID() string {
	if n.Name != "" {
		return n.Name
	}
	return n.Address
}

// Auth holds credentials for SSH and sudo. Secrets are best given as names
// of environment variables; the plaintext fields exist for imported Ansible
// inventories and are never logged, printed or saved.
type Auth struct {
	// KeyFile is a private key file (a leading ~/ is expanded).
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// KeyPassphraseEnv names the environment variable holding the key's
	// passphrase.
	KeyPassphraseEnv string `json:"key_passphrase_env,omitempty" yaml:"key_passphrase_env,omitempty"`
	// Agent uses the keys of the running ssh-agent ($SSH_AUTH_SOCK).
	Agent bool `json:"agent,omitempty" yaml:"agent,omitempty"`
	// PasswordEnv names the environment variable holding the SSH password.
	PasswordEnv string `json:"password_env,omitempty" yaml:"password_env,omitempty"`
	// Password is a plaintext SSH password (discouraged; prefer PasswordEnv).
	Password Secret `json:"password,omitzero" yaml:"password,omitempty"`
	// SudoPasswordEnv names the environment variable holding the sudo password.
	SudoPasswordEnv string `json:"sudo_password_env,omitempty" yaml:"sudo_password_env,omitempty"`
	// SudoPassword is a plaintext sudo password (discouraged).
	SudoPassword Secret `json:"sudo_password,omitzero" yaml:"sudo_password,omitempty"`
	// SudoPasswordFile is a file holding the sudo password on its first
	// line; it must have mode 0600 or stricter (looser is refused).
	SudoPasswordFile string `json:"sudo_password_file,omitempty" yaml:"sudo_password_file,omitempty"`
}

// redacted is what every rendering of a non-empty Secret shows.
const redacted = "[redacted]"

// Secret is a plaintext secret that never shows itself: String, GoString,
// Format, LogValue, MarshalJSON, MarshalText and MarshalYAML all render
// "[redacted]" (or "" when empty). The value sits behind a pointer, so
// even fmt's reflection fallback (a bad verb on an enclosing value) prints
// an address, not the secret. Reveal returns the value.
type Secret struct {
	v *string
}

// NewSecret wraps a plaintext value; an empty value is an unset Secret.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{v: &v}
}

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsSet reports whether the secret holds a value.
func (s Secret) IsSet() bool { return s.v != nil && *s.v != "" }

// IsZero reports whether the secret is unset (for omitempty / omitzero).
func (s Secret) IsZero() bool { return !s.IsSet() }

// Equal compares the values (used by go-cmp).
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

func (s Secret) shown() string {
	if !s.IsSet() {
		return ""
	}
	return redacted
}

// String returns "[redacted]" for a set secret.
func (s Secret) String() string { return s.shown() }

// GoString returns "[redacted]" quoted, for a set secret (the %#v verb).
func (s Secret) GoString() string { return strconv.Quote(s.shown()) }

// Format renders "[redacted]" for every verb, so no fmt verb prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = fmt.Fprint(f, strconv.Quote(s.shown()))
		return
	}
	_, _ = fmt.Fprint(f, s.shown())
}

// LogValue makes slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalJSON renders "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.shown())), nil }

// UnmarshalJSON reads a plaintext string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: want a string: %w", err)
	}
	*s = NewSecret(v)
	return nil
}

// MarshalText renders "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// MarshalYAML renders "[redacted]".
func (s Secret) MarshalYAML() (any, error) { return s.shown(), nil }

// UnmarshalYAML reads a plaintext string.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a string", n.Line, kindName(n.Kind))}}
	}
	*s = NewSecret(n.Value)
	return nil
}

// Resources says what Ray may use on a node. Zero values mean "not set":
// inherit the cluster default, else let Ray detect the node's resources.
type Resources struct {
	// CPUs is Ray's --num-cpus; nil = unset. Exclusive with CPUFraction.
	CPUs *int `json:"cpus,omitempty" yaml:"cpus,omitempty"`
	// GPUs is Ray's --num-gpus; nil = unset.
	GPUs *int `json:"gpus,omitempty" yaml:"gpus,omitempty"`
	// Memory is Ray's --memory in bytes; 0 = unset. Exclusive with
	// MemoryFraction.
	Memory ByteSize `json:"memory,omitempty" yaml:"memory,omitempty"`
	// CPUFraction gives Ray this fraction of the node's CPUs, in (0,1]
	// (the seed used 0.8), rounded down, at least 1.
	CPUFraction float64 `json:"cpu_fraction,omitempty" yaml:"cpu_fraction,omitempty"`
	// MemoryFraction gives Ray this fraction of the node's memory, in (0,1].
	MemoryFraction float64 `json:"memory_fraction,omitempty" yaml:"memory_fraction,omitempty"`
	// Custom are Ray custom resources (--resources), name to quantity.
	Custom map[string]float64 `json:"custom,omitempty" yaml:"custom,omitempty"`
}

// Ptr returns a pointer to v, for optional fields such as Resources.CPUs.
func Ptr[T any](v T) *T { return &v }

// ByteSize is a size in bytes. In YAML it is an integer or a string with a
// unit: B, kB/KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of
// 1024); bare K, M, G, T mean KiB, MiB, GiB, TiB as in Docker.
type ByteSize int64

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseByteSize parses "64GiB", "200GB", "512M" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	b := v * mult
	if b >= math.MaxInt64 || math.IsNaN(b) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(b), nil
}

// UnmarshalYAML accepts an integer or a size string.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a size", n.Line, kindName(n.Kind))}}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "!!seq"
	case yaml.MappingNode:
		return "!!map"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// Nodes returns the head, then the workers, each with its Role set.
func (c *Cluster) Nodes() []Node {
	out := make([]Node, 0, 1+len(c.Workers))
	h := c.Head
	h.Role = RoleHead
	out = append(out, h)
	for _, w := range c.Workers {
		w.Role = RoleWorker
		out = append(out, w)
	}
	return out
}

// PlaintextSecrets lists the field paths that hold plaintext secrets
// (never the values), for warnings.
func (c *Cluster) PlaintextSecrets() []string {
	var out []string
	add := func(path string, a Auth) {
		if a.Password.IsSet() {
			out = append(out, path+"password")
		}
		if a.SudoPassword.IsSet() {
			out = append(out, path+"sudo_password")
		}
	}
	add("ssh.", c.SSH.Auth)
	if c.SSH.Jump != nil {
		add("ssh.jump.", c.SSH.Jump.Auth)
	}
	add("head.", c.Head.Auth)
	for i, w := range c.Workers {
		add(fmt.Sprintf("workers[%d].", i), w.Auth)
	}
	return out
}

// WithDefaults returns a deep copy of c with every default filled in. The
// precedence for each per-node value is: the node's own value, then the
// cluster default (SSH section, Ray.Resources), then the built-in default.
// Auth is merged field by field (Agent is on if either side enables it);
// CPUs/CPUFraction and Memory/MemoryFraction are inherited as pairs, so a
// node that sets either one of a pair keeps none of the default's pair.
// A leading ~/ in key files, the known_hosts file and the state dir is
// expanded with the user's home directory.
func (c *Cluster) WithDefaults() *Cluster {
	d := c.clone()
	d.ApplyDefaults()
	return d
}

// ApplyDefaults fills the defaults into c in place; see WithDefaults.
func (c *Cluster) ApplyDefaults() {
	home, _ := os.UserHomeDir()
	s := &c.SSH
	if s.Port == 0 {
		s.Port = DefaultSSHPort
	}
	if s.User == "" {
		s.User = os.Getenv("USER")
	}
	if s.KnownHostsFile == "" {
		s.KnownHostsFile = DefaultKnownHostsFile
	}
	s.KnownHostsFile = expandHome(s.KnownHostsFile, home)
	s.Auth.KeyFile = expandHome(s.Auth.KeyFile, home)
	if j := s.Jump; j != nil {
		if j.Port == 0 {
			j.Port = s.Port
		}
		if j.User == "" {
			j.User = s.User
		}
		j.Auth = mergeAuth(j.Auth, s.Auth)
		j.Auth.KeyFile = expandHome(j.Auth.KeyFile, home)
	}
	c.Ray.ApplyDefaults()
	fill := func(n *Node) {
		if n.Name == "" {
			n.Name = n.Address
		}
		if n.Port == 0 {
			n.Port = s.Port
		}
		if n.User == "" {
			n.User = s.User
		}
		n.Auth = mergeAuth(n.Auth, s.Auth)
		n.Auth.KeyFile = expandHome(n.Auth.KeyFile, home)
		n.Resources = mergeResources(n.Resources, c.Ray.Resources)
	}
	fill(&c.Head)
	for i := range c.Workers {
		fill(&c.Workers[i])
	}
	if c.StateDir == "" && c.Name != "" {
		c.StateDir = DefaultStateDir(c.Name)
	}
	c.StateDir = expandHome(c.StateDir, home)
}

// DefaultStateDir is $XDG_STATE_HOME/raydeploy/<name> when XDG_STATE_HOME is
// an absolute path, else ~/.local/state/raydeploy/<name>.
func DefaultStateDir(name string) string {
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "raydeploy", name)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join("~", ".local", "state", "raydeploy", name)
	}
	return filepath.Join(home, ".local", "state", "raydeploy", name)
}

func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

func mergeAuth(n, d Auth) Auth {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	n.KeyFile = pick(n.KeyFile, d.KeyFile)
	n.KeyPassphraseEnv = pick(n.KeyPassphraseEnv, d.KeyPassphraseEnv)
	n.Agent = n.Agent || d.Agent
	n.PasswordEnv = pick(n.PasswordEnv, d.PasswordEnv)
	if !n.Password.IsSet() {
		n.Password = d.Password
	}
	// The sudo password's source is inherited as a whole: a node that
	// names one keeps none of the default's.
	if n.SudoPasswordEnv == "" && !n.SudoPassword.IsSet() && n.SudoPasswordFile == "" {
		n.SudoPasswordEnv, n.SudoPassword, n.SudoPasswordFile = d.SudoPasswordEnv, d.SudoPassword, d.SudoPasswordFile
	}
	return n
}

func mergeResources(n, d Resources) Resources {
	if n.CPUs == nil && n.CPUFraction == 0 {
		n.CPUs, n.CPUFraction = clonePtr(d.CPUs), d.CPUFraction
	}
	if n.GPUs == nil {
		n.GPUs = clonePtr(d.GPUs)
	}
	if n.Memory == 0 && n.MemoryFraction == 0 {
		n.Memory, n.MemoryFraction = d.Memory, d.MemoryFraction
	}
	if len(d.Custom) > 0 {
		m := make(map[string]float64, len(d.Custom)+len(n.Custom))
		for k, v := range d.Custom {
			m[k] = v
		}
		for k, v := range n.Custom {
			m[k] = v
		}
		n.Custom = m
	}
	return n
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (n Node) clone() Node {
	n.Labels = cloneMap(n.Labels)
	n.Resources = n.Resources.clone()
	return n
}

func (r Resources) clone() Resources {
	r.CPUs = clonePtr(r.CPUs)
	r.GPUs = clonePtr(r.GPUs)
	r.Custom = cloneMap(r.Custom)
	return r
}

func (c *Cluster) clone() *Cluster {
	d := *c
	if c.SSH.Jump != nil {
		j := *c.SSH.Jump
		d.SSH.Jump = &j
	}
	d.Head = c.Head.clone()
	if c.Workers != nil {
		d.Workers = make([]Node, len(c.Workers))
		for i, w := range c.Workers {
			d.Workers[i] = w.clone()
		}
	}
	d.Ray = c.Ray.clone()
	return &d
}

// FieldError is one problem in a cluster definition. File and Line locate
// it in a configuration file when known; Field is the path of the field in
// the YAML format's names, like "workers[1].address".
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
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

var (
	clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	hostnameRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	userRE        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

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
