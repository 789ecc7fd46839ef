package service

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Placement says on which nodes a service runs.
type Placement struct {
	// Role is "head", "workers" or "all".
	Role string `json:"role,omitempty"`
	// Nodes names nodes explicitly (by Node name); used when Role is empty.
	Nodes []string `json:"nodes,omitempty"`
}

// Placements.
var (
	OnHead    = Placement{Role: "head"}
	OnWorkers = Placement{Role: "workers"}
	OnAll     = Placement{Role: "all"}
)

// Matches reports whether the service runs on the node with this name and
// role ("head" or "worker").
func (p Placement) Matches(name, role string) bool {
	switch p.Role {
	case "all":
		return true
	case "head":
		return role == "head"
	case "workers":
		return role == "worker"
	}
	return slices.Contains(p.Nodes, name)
}

// Port publishes a container port on the node (not with host networking).
type Port struct {
	// Container is the port inside the container (1-65535).
	Container int `json:"container"`
	// Host is the node's port it is published on (1-65535).
	Host     int    `json:"host"`
	Protocol string `json:"protocol,omitempty"` // tcp (default) or udp
}

// Mount is a bind mount of a node path, a named volume or a tmpfs.
type Mount struct {
	Type string `json:"type"` // bind, volume or tmpfs
	// Source is the node's absolute path of a bind mount or the name of a
	// volume (empty for tmpfs).
	Source string `json:"source,omitempty"`
	// Target is the absolute path inside the container.
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// HealthCheck is how the SDK decides that the service is up on a node. Exactly
// one of HTTP, TCP and Exec is set.
type HealthCheck struct {
	// HTTP is a URL path fetched from the node itself, e.g.
	// "http://127.0.0.1:8265/api/gcs_healthz"; any 2xx answer is healthy.
	HTTP string `json:"http,omitempty"`
	// TCP is a host:port on the node that must accept a connection.
	TCP string `json:"tcp,omitempty"`
	// Exec runs in the container; exit status 0 is healthy.
	Exec []string `json:"exec,omitempty"`
	// Timeout bounds the whole wait for health (default 2 minutes).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Ulimit is a resource limit for the container's processes.
type Ulimit struct {
	// Name is the limit's name, e.g. "nofile".
	Name string `json:"name"`
	// Soft is the soft limit.
	Soft int64 `json:"soft"`
	// Hard is the hard limit.
	Hard int64 `json:"hard"`
}

// Spec is a containerized service the SDK runs on a set of nodes.
type Spec struct {
	// Name is the service name, unique in the cluster; the container on
	// each node is named "<cluster>-<name>".
	Name string `json:"name"`
	// Image is the container image reference.
	Image string `json:"image"`
	// Placement selects the nodes.
	Placement Placement `json:"placement"`
	// Entrypoint overrides the image's entrypoint.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Command is the container's command (arguments of the entrypoint).
	Command []string `json:"command,omitempty"`
	// Env is the container's environment. No secrets: values are stored
	// in container labels' digest input and visible to docker inspect.
	Env map[string]string `json:"env,omitempty"`
	// Ports are published ports (bridge networking only).
	Ports []Port `json:"ports,omitempty"`
	// Mounts are bind mounts, volumes and tmpfs mounts.
	Mounts []Mount `json:"mounts,omitempty"`
	// NetworkMode is "host" (the default for cluster services) or "bridge".
	NetworkMode string `json:"network_mode,omitempty"`
	// Privileged runs the container privileged (cAdvisor needs it).
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd adds Linux capabilities.
	CapAdd []string `json:"cap_add,omitempty"`
	// PIDMode "host" shares the node's process table.
	PIDMode string `json:"pid_mode,omitempty"`
	// User runs the container's processes as this user.
	User string `json:"user,omitempty"`
	// Restart is the restart policy (default "unless-stopped").
	Restart string `json:"restart,omitempty"`
	// ShmSize is the size of /dev/shm in bytes (0: the Engine's default).
	ShmSize int64 `json:"shm_size,omitempty"`
	// Ulimits are resource limits.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// GPUs gives the container every GPU of the node (NVIDIA runtime).
	GPUs bool `json:"gpus,omitempty"`
	// Health is how readiness is checked after the container starts.
	Health *HealthCheck `json:"health,omitempty"`
	// Labels are extra container labels; the ownership labels are added.
	Labels map[string]string `json:"labels,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$`)

// Validate returns every problem of the spec, each naming its field.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("service %q: %s: %s", s.Name, field, fmt.Sprintf(format, a...)))
	}
	if !nameRE.MatchString(s.Name) {
		bad("name", "must be lower-case letters, digits and '-', at most 50 characters")
	}
	if s.Image == "" {
		bad("image", "must not be empty")
	}
	switch s.Placement.Role {
	case "head", "workers", "all":
	case "":
		if len(s.Placement.Nodes) == 0 {
			bad("placement", "needs a role (head, workers, all) or node names")
		}
	default:
		bad("placement.role", "%q is not head, workers or all", s.Placement.Role)
	}
	switch s.NetworkMode {
	case "", "host", "bridge":
	default:
		bad("network_mode", "%q is not host or bridge", s.NetworkMode)
	}
	if len(s.Ports) > 0 && (s.NetworkMode == "" || s.NetworkMode == "host") {
		bad("ports", "published ports need network_mode bridge (host networking uses the node's ports directly)")
	}
	for i, p := range s.Ports {
		if p.Container < 1 || p.Container > 65535 || p.Host < 1 || p.Host > 65535 {
			bad(fmt.Sprintf("ports[%d]", i), "ports must be in 1-65535")
		}
	}
	for i, m := range s.Mounts {
		switch m.Type {
		case "bind", "volume", "tmpfs":
		default:
			bad(fmt.Sprintf("mounts[%d].type", i), "%q is not bind, volume or tmpfs", m.Type)
		}
		if !strings.HasPrefix(m.Target, "/") {
			bad(fmt.Sprintf("mounts[%d].target", i), "must be an absolute path")
		}
		if m.Type == "bind" && !strings.HasPrefix(m.Source, "/") {
			bad(fmt.Sprintf("mounts[%d].source", i), "a bind mount needs an absolute node path")
		}
	}
	if h := s.Health; h != nil {
		n := 0
		for _, set := range []bool{h.HTTP != "", h.TCP != "", len(h.Exec) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("health", "set exactly one of http, tcp and exec")
		}
	}
	return errors.Join(errs...)
}

// ContainerName is the name of the service's container in the cluster.
func (s Spec) ContainerName(cluster string) string {
	return cluster + "-" + s.Name
}
