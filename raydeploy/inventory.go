package raydeploy

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// InventoryOptions tune the Ansible inventory import.
type InventoryOptions struct {
	// HeadGroup is the group holding the one head host (default "head_nodes").
	HeadGroup string
	// WorkerGroup is the group holding the workers (default "worker_nodes").
	WorkerGroup string
	// ClusterName overrides the name found in the inventory.
	ClusterName string
	// GroupVarsDir is the group_vars directory (default: group_vars beside
	// the inventory file). LoadInventory only.
	GroupVarsDir string
	// HostVarsDir is the host_vars directory (default: host_vars beside the
	// inventory file). LoadInventory only.
	HostVarsDir string
	// MaxHosts caps the host entries the inventory's host lines may expand
	// to, counted over all lines (a host listed under two groups counts
	// twice); default DefaultMaxInventoryHosts. A line whose pattern would
	// pass the cap is refused, naming the file, line and pattern, before
	// its hosts are made.
	MaxHosts int
}

// DefaultMaxInventoryHosts is the host cap of an inventory when
// InventoryOptions.MaxHosts is zero.
const DefaultMaxInventoryHosts = 10000

// maxProblems bounds the problems (and, separately, the warnings) an
// inventory reports; the rest are counted in a last line.
const maxProblems = 200

func (o InventoryOptions) withDefaults() InventoryOptions {
	if o.HeadGroup == "" {
		o.HeadGroup = "head_nodes"
	}
	if o.WorkerGroup == "" {
		o.WorkerGroup = "worker_nodes"
	}
	if o.MaxHosts <= 0 {
		o.MaxHosts = DefaultMaxInventoryHosts
	}
	return o
}

// The Ansible variables the import understands. A variable is read from the
// host line, else the group_vars files, else the inventory's [group:vars],
// following Ansible's precedence (see the package documentation).
var (
	// per-node variables, each alias list in order of preference
	varAddress      = []string{"ansible_host", "ansible_ssh_host"}
	varPort         = []string{"ansible_port", "ansible_ssh_port"}
	varUser         = []string{"ansible_user", "ansible_ssh_user"}
	varKeyFile      = []string{"ansible_ssh_private_key_file", "ansible_private_key_file"}
	varPassword     = []string{"ansible_password", "ansible_ssh_pass", "ansible_ssh_password"}
	varSudoPassword = []string{"ansible_become_pass", "ansible_become_password", "ansible_sudo_pass", "ansible_sudo_password"}
	varCPUs         = []string{"ray_num_cpus"}
	varGPUs         = []string{"ray_num_gpus"}
	varMemory       = []string{"ray_memory"}
	varCPUFraction  = []string{"ray_cpu_fraction", "ray_resource_fraction"}
	varMemFraction  = []string{"ray_memory_fraction", "ray_resource_fraction"}

	// cluster-wide variables, read from the head host's variables
	varClusterName   = []string{"ray_cluster_name", "cluster_name"}
	varVersion       = []string{"ray_version"}
	varImage         = []string{"ray_image", "ray_docker_image"}
	varGCSPort       = []string{"ray_head_port", "ray_port", "ray_gcs_port"}
	varDashboardPort = []string{"ray_dashboard_port", "dashboard_port"}
	varClientPort    = []string{"ray_client_port"}
	varMetricsPort   = []string{"ray_metrics_port", "ray_metrics_export_port"}
	varMinWorkerPort = []string{"ray_min_worker_port"}
	varMaxWorkerPort = []string{"ray_max_worker_port"}
	varAgentPort     = []string{"ray_dashboard_agent_port"}
	varServePort     = []string{"ray_serve_port", "serve_port"}
	varShmSize       = []string{"ray_shm_size"}

	// read but without effect on the Cluster; no warning
	varsQuiet = []string{"ansible_python_interpreter", "ansible_connection", "ansible_become",
		"ansible_become_method", "ansible_become_user"}
	// read only to warn that raydeploy keeps host key checking on
	varsHostKey = []string{"ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_host_key_checking"}
)

var clusterVars = [][]string{varClusterName, varVersion, varImage, varGCSPort, varDashboardPort,
	varClientPort, varMetricsPort, varMinWorkerPort, varMaxWorkerPort, varAgentPort, varServePort, varShmSize}

func supportedVar(name string) bool {
	for _, l := range [][]string{varAddress, varPort, varUser, varKeyFile, varPassword, varSudoPassword,
		varCPUs, varGPUs, varMemory, varCPUFraction, varMemFraction, varsQuiet, varsHostKey} {
		if slices.Contains(l, name) {
			return true
		}
	}
	for _, l := range clusterVars {
		if slices.Contains(l, name) {
			return true
		}
	}
	return false
}

// secretVar reports whether the value of variable name is never shown:
// the passwords the import reads, and anything named like a secret.
func secretVar(name string) bool {
	return slices.Contains(varPassword, name) || slices.Contains(varSudoPassword, name) || secretLikeName(name)
}

// invVar is one variable definition and where it was made.
type invVar struct {
	value     string
	file      string
	line      int
	nonScalar bool
	rank      int // precedence after resolution: higher wins
}

type invHost struct {
	name   string
	line   int
	groups []string // groups listing the host directly
	port   int      // from a host:port pattern
	vars   map[string]invVar
	// fileVars are host_vars/<host>.yml's, above the host line's.
	fileVars map[string]invVar
}

type invGroup struct {
	name     string
	line     int
	hosts    []string
	children []invChild
	vars     map[string]invVar // [group:vars] in the inventory file
	fileVars map[string]invVar // group_vars/<group>.yml
	fileVarF string
}

type invChild struct {
	name string
	line int
}

type inventory struct {
	file      string
	hosts     map[string]*invHost
	hostOrder []string
	groups    map[string]*invGroup
	probs     problems
	warns     Warnings
	// dropped counts problems and warnings beyond maxProblems.
	droppedProbs, droppedWarns int
	// maxHosts is the cap on host entries; listed counts them; capped is
	// set once a line was refused for it (parsing stops there).
	maxHosts, listed int
	capped           bool
	// secrets are the secret values seen, cut out of every message.
	secrets secretSet
}

func (inv *inventory) errorf(file string, line int, format string, args ...any) {
	inv.problem(&FieldError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (inv *inventory) problem(fe *FieldError) {
	if len(inv.probs) >= maxProblems {
		inv.droppedProbs++
		return
	}
	inv.probs = append(inv.probs, fe)
}

func (inv *inventory) warnf(file string, line int, format string, args ...any) {
	if len(inv.warns) >= maxProblems {
		inv.droppedWarns++
		return
	}
	inv.warns = append(inv.warns, Warning{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (inv *inventory) group(name string, line int) *invGroup {
	g, ok := inv.groups[name]
	if !ok {
		g = &invGroup{name: name, line: line, vars: map[string]invVar{}}
		inv.groups[name] = g
	}
	if g.line == 0 {
		g.line = line
	}
	return g
}

// LoadInventory imports an Ansible inventory: path is an inventory.ini
// file or a directory holding one; the group_vars and host_vars
// directories beside it (*.yml, *.yaml, or a directory per group or host)
// are read too. Errors name the file and line ("inventory.ini:12: ...")
// and never show the value of a password or other secret variable.
// Plaintext passwords are kept (as Secret) but each gives a warning naming
// the host and variable. The hosts are capped (InventoryOptions.MaxHosts).
func LoadInventory(path string, opts InventoryOptions) (*Cluster, Warnings, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "inventory.ini")
	}
	data, err := readConfig(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load inventory: %w", err)
	}
	gvDir, hvDir := opts.GroupVarsDir, opts.HostVarsDir
	if gvDir == "" {
		gvDir = filepath.Join(filepath.Dir(path), "group_vars")
	}
	if hvDir == "" {
		hvDir = filepath.Join(filepath.Dir(path), "host_vars")
	}
	opts = opts.withDefaults()
	inv := newInventory(path, opts)
	inv.parseINI(data)
	if !inv.capped {
		if err := inv.readGroupVars(gvDir); err != nil {
			return nil, inv.warns, err
		}
		if err := inv.readHostVars(hvDir); err != nil {
			return nil, inv.warns, err
		}
	}
	c := inv.build(opts)
	return inv.result(c)
}

// ParseInventory imports an Ansible inventory from its text alone (no
// group_vars); file names it in errors and warnings. See LoadInventory.
func ParseInventory(file string, data []byte, opts InventoryOptions) (*Cluster, Warnings, error) {
	opts = opts.withDefaults()
	inv := newInventory(file, opts)
	inv.parseINI(data)
	c := inv.build(opts)
	return inv.result(c)
}

func (inv *inventory) result(c *Cluster) (*Cluster, Warnings, error) {
	slices.SortStableFunc(inv.warns, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	if inv.droppedWarns > 0 {
		inv.warns = append(inv.warns, Warning{File: inv.file, Msg: fmt.Sprintf("%d more warnings not shown", inv.droppedWarns)})
	}
	if inv.droppedProbs > 0 {
		inv.probs = append(inv.probs, &FieldError{File: inv.file, Msg: fmt.Sprintf("%d more problems not shown", inv.droppedProbs)})
	}
	inv.secrets.redactProblems(inv.probs, inv.warns)
	if len(inv.probs) > 0 {
		return nil, inv.warns, inv.probs.err()
	}
	return c, inv.warns, nil
}

func newInventory(file string, opts InventoryOptions) *inventory {
	inv := &inventory{file: file, hosts: map[string]*invHost{}, groups: map[string]*invGroup{}, maxHosts: opts.MaxHosts}
	inv.group("all", 0)
	inv.group("ungrouped", 0)
	return inv
}
