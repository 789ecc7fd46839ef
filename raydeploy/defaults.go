package raydeploy

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Built-in SSH defaults, used when neither the node nor the cluster's SSH
// section sets a value.
const (
	DefaultSSHPort        = 22
	DefaultKnownHostsFile = "~/.ssh/known_hosts"
)

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
	s.Timeouts = s.Timeouts.WithDefaults()
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

// Built-in Ray defaults.
const (
	// DefaultRayVersion is the Ray release deployed when none is set.
	DefaultRayVersion = "2.58.0"
	// DefaultRayImageRepo is the image repository; the tag is the version.
	DefaultRayImageRepo = "rayproject/ray"
	// DefaultTokenEnv names the variable holding the Ray auth token, as Ray
	// itself reads it (RAY_AUTH_TOKEN).
	DefaultTokenEnv = "RAY_AUTH_TOKEN"
	// MaxShmSize caps the automatic /dev/shm size (Ray's launcher: 200 GB).
	MaxShmSize ByteSize = 200_000_000_000
	// MinTokenAuthVersion is the first Ray release with token auth.
	MinTokenAuthVersion = "2.52.0"
)

// DefaultRayPorts returns Ray's default ports.
func DefaultRayPorts() RayPorts {
	return RayPorts{
		GCS: 6379, Dashboard: 8265, Client: 10001, Metrics: 8080,
		MinWorkerPort: 10002, MaxWorkerPort: 19999, DashboardAgent: 52365, ServeHTTP: 8000,
	}
}

// ApplyDefaults fills the built-in defaults into r in place.
func (r *RayConfig) ApplyDefaults() {
	if r.Version == "" {
		r.Version = DefaultRayVersion
	}
	if r.Image == "" {
		r.Image = DefaultRayImageRepo + ":" + r.Version
	}
	d := DefaultRayPorts()
	for _, f := range []struct {
		v *int
		d int
	}{
		{&r.Ports.GCS, d.GCS}, {&r.Ports.Dashboard, d.Dashboard}, {&r.Ports.Client, d.Client},
		{&r.Ports.Metrics, d.Metrics}, {&r.Ports.MinWorkerPort, d.MinWorkerPort},
		{&r.Ports.MaxWorkerPort, d.MaxWorkerPort}, {&r.Ports.DashboardAgent, d.DashboardAgent},
		{&r.Ports.ServeHTTP, d.ServeHTTP},
	} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	if r.TokenAuth.Enabled && r.TokenAuth.TokenEnv == "" {
		r.TokenAuth.TokenEnv = DefaultTokenEnv
	}
}

// DefaultConcurrency bounds how many nodes are worked on at once.
const DefaultConcurrency = 64

// Deployer defaults, used where Options leaves a field zero.
const (
	DefaultReadyTimeout         = 3 * time.Minute
	DefaultValidationJobTimeout = 2 * time.Minute
	DefaultMinCPUs              = 1
	DefaultMinMemory            = 2 << 30  // bytes
	DefaultMinDiskFree          = 10 << 30 // bytes, on /
	DefaultMaxClockSkew         = 30 * time.Second
)

// withDefaults returns o with every zero field that has a default filled in:
// the one place the Deployer's defaults are set.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Images == "" {
		o.Images = ImageAuto
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.ValidationJobTimeout == 0 {
		o.ValidationJobTimeout = DefaultValidationJobTimeout
	}
	p := &o.Prerequisites
	if p.MinCPUs == 0 {
		p.MinCPUs = DefaultMinCPUs
	}
	if p.MinMemory == 0 {
		p.MinMemory = DefaultMinMemory
	}
	if p.MinDiskFree == 0 {
		p.MinDiskFree = DefaultMinDiskFree
	}
	if p.MaxClockSkew == 0 {
		p.MaxClockSkew = DefaultMaxClockSkew
	}
	return o
}
