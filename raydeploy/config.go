package raydeploy

import (
	"fmt"
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
	// Timeouts bound how long SSH waits on a node (and the jump host) that
	// stops answering; zero fields take the built-in defaults.
	Timeouts SSHTimeouts `json:"timeouts,omitzero" yaml:"timeouts,omitempty"`
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
