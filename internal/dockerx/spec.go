package dockerx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/raydeploy/sdk/internal/fence"
)

// Labels that mark what the SDK owns (DESIGN.md, "Containers we own").
const (
	LabelCluster = "io.raydeploy.cluster"
	LabelRole    = "io.raydeploy.role"
	LabelSpec    = "io.raydeploy.spec"
)

// ContainerSpec is the desired state of one container. It is plain data so
// that its digest is stable: two equal specs have equal digests.
type ContainerSpec struct {
	// Name is the container's name (required).
	Name string `json:"name"`
	// Image is the image reference to run (required; it must be present on
	// the Engine).
	Image string `json:"image"`
	// Entrypoint replaces the image's entrypoint (nil: the image's).
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Cmd is the command or the entrypoint's arguments (nil: the image's).
	Cmd []string `json:"cmd,omitempty"`
	// Env holds environment variables by name.
	Env map[string]string `json:"env,omitempty"`
	// Labels are the container's labels; Ensure adds LabelSpec (the digest),
	// which Digest leaves out.
	Labels      map[string]string `json:"labels,omitempty"`
	NetworkMode string            `json:"network_mode,omitempty"` // "host", "bridge", ...
	Ports       []Port            `json:"ports,omitempty"`        // published ports (not with host networking)
	// Mounts are bind mounts, volumes and tmpfs mounts.
	Mounts []Mount `json:"mounts,omitempty"`
	// Privileged runs the container with all capabilities and host devices.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd lists Linux capabilities added, e.g. "SYS_ADMIN".
	CapAdd []string `json:"cap_add,omitempty"`
	// PIDMode "host" shares the host's PID namespace (empty: the container's
	// own).
	PIDMode string `json:"pid_mode,omitempty"`
	// User is the user (name or uid[:gid]) the processes run as (empty: the
	// image's).
	User string `json:"user,omitempty"`
	// WorkingDir is the processes' working directory (empty: the image's).
	WorkingDir string `json:"working_dir,omitempty"`
	Restart    string `json:"restart,omitempty"` // "no", "always", "unless-stopped", "on-failure"
	// ShmSize is the size of /dev/shm in bytes (0: the Engine's default).
	ShmSize int64 `json:"shm_size,omitempty"`
	// Ulimits are resource limits of the container's processes.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	GPUs    bool     `json:"gpus,omitempty"` // all GPUs through the NVIDIA runtime
	// Devices are host device paths passed through at the same path,
	// read-write.
	Devices []string `json:"devices,omitempty"`
	// Health is the Engine's health check (nil: the image's, if any).
	Health *Health `json:"health,omitempty"`
}

// Port publishes a container port on the host.
type Port struct {
	// Container is the port number inside the container.
	Container int `json:"container"`
	// Host is the host port it is published on.
	Host     int    `json:"host"`
	Protocol string `json:"protocol,omitempty"` // tcp (default) or udp
	// HostIP is the host address to bind (empty: all).
	HostIP string `json:"host_ip,omitempty"`
}

// Mount is a bind mount, named volume or tmpfs.
type Mount struct {
	Type string `json:"type"` // bind, volume, tmpfs
	// Source is the host path of a bind mount or the name of a volume (empty
	// for tmpfs).
	Source string `json:"source,omitempty"`
	// Target is the path inside the container.
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
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

// Health is the Engine-run health check of a container.
type Health struct {
	Test []string `json:"test"` // e.g. ["CMD", "curl", "-f", "http://localhost/"]
	// Interval is the time between checks (0: the Engine's default, 30 s).
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout is how long one check may take (0: the Engine's default, 30 s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// StartPeriod is the time after start during which failed checks do not
	// count (0: none).
	StartPeriod time.Duration `json:"start_period,omitempty"`
	// Retries is how many failed checks in a row make the container unhealthy
	// (0: the Engine's default, 3).
	Retries int `json:"retries,omitempty"`
}

// Digest is a stable digest of the spec (JSON with sorted map keys).
func (s ContainerSpec) Digest() string {
	s.Labels = maps.Clone(s.Labels)
	delete(s.Labels, LabelSpec)
	b, _ := json.Marshal(s) // maps marshal with sorted keys; no field can fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:32]
}

// Action says what Ensure did.
type Action string

// Ensure outcomes.
const (
	Created   Action = "created"
	Unchanged Action = "unchanged"
	Replaced  Action = "replaced"
	Started   Action = "started" // same spec, was stopped, started again
)

// EnsureResult is the container Ensure left running.
type EnsureResult struct {
	// ID is the container's full ID.
	ID string
	// Action says what Ensure did.
	Action Action
}

// Ensure makes the container named spec.Name match spec: absent -> create and
// start; same spec digest and same image -> leave it (start it if stopped);
// anything else -> replace it. The image must be present on the Engine.
func (e *Engine) Ensure(ctx context.Context, spec ContainerSpec) (EnsureResult, error) {
	if err := fence.Check(ctx); err != nil {
		return EnsureResult{}, err
	}
	if spec.Name == "" || spec.Image == "" {
		return EnsureResult{}, fmt.Errorf("ensure on %s: spec needs a name and an image", e.node)
	}
	digest := spec.Digest()
	img, err := e.cli.ImageInspect(ctx, spec.Image)
	if err != nil {
		if client.IsErrNotFound(err) {
			return EnsureResult{}, fmt.Errorf("ensure %s on %s: image %s: %w", spec.Name, e.node, spec.Image, ErrNotFound)
		}
		return EnsureResult{}, fmt.Errorf("ensure %s on %s: inspect image %s: %w", spec.Name, e.node, spec.Image, err)
	}

	action := Created
	cur, err := e.cli.ContainerInspect(ctx, spec.Name)
	switch {
	case client.IsErrNotFound(err):
	case err != nil:
		return EnsureResult{}, fmt.Errorf("ensure %s on %s: inspect: %w", spec.Name, e.node, err)
	case cur.Config != nil && cur.Config.Labels[LabelSpec] == digest && cur.Image == img.ID:
		if cur.State != nil && cur.State.Running {
			return EnsureResult{ID: cur.ID, Action: Unchanged}, nil
		}
		if err := e.cli.ContainerStart(ctx, cur.ID, container.StartOptions{}); err != nil {
			return EnsureResult{}, fmt.Errorf("ensure %s on %s: start: %w", spec.Name, e.node, err)
		}
		return EnsureResult{ID: cur.ID, Action: Started}, nil
	default:
		e.log.Debug("replacing container", "name", spec.Name, "old_spec", cur.Config.Labels[LabelSpec], "new_spec", digest)
		if err := e.Remove(ctx, cur.ID); err != nil {
			return EnsureResult{}, err
		}
		action = Replaced
	}

	cfg, hc, err := spec.engineConfig(digest)
	if err != nil {
		return EnsureResult{}, fmt.Errorf("ensure %s on %s: %w", spec.Name, e.node, err)
	}
	created, err := e.cli.ContainerCreate(ctx, cfg, hc, &network.NetworkingConfig{}, nil, spec.Name)
	if err != nil {
		return EnsureResult{}, fmt.Errorf("ensure %s on %s: create: %w", spec.Name, e.node, err)
	}
	if err := e.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return EnsureResult{}, fmt.Errorf("ensure %s on %s: start: %w", spec.Name, e.node, err)
	}
	return EnsureResult{ID: created.ID, Action: action}, nil
}

// Inspect returns the state of a container by name or ID.
func (e *Engine) Inspect(ctx context.Context, nameOrID string) (ContainerState, error) {
	cur, err := e.cli.ContainerInspect(ctx, nameOrID)
	if err != nil {
		if client.IsErrNotFound(err) {
			return ContainerState{}, fmt.Errorf("container %s on %s: %w", nameOrID, e.node, ErrNotFound)
		}
		return ContainerState{}, fmt.Errorf("inspect %s on %s: %w", nameOrID, e.node, err)
	}
	st := ContainerState{ID: cur.ID, ImageID: cur.Image}
	if cur.Config != nil {
		st.Labels = cur.Config.Labels
	}
	if cur.State != nil {
		st.Running = cur.State.Running
		st.Status = cur.State.Status
		st.ExitCode = cur.State.ExitCode
		if cur.State.Health != nil {
			st.Health = cur.State.Health.Status
		}
	}
	return st, nil
}

// ContainerState is what Inspect reports.
type ContainerState struct {
	// ID is the container's full ID.
	ID string
	// ImageID is the ID of the image the container runs ("sha256:...").
	ImageID string
	// Running is true while the container runs.
	Running bool
	// Status is the Engine's state: created, running, exited, ...
	Status string
	// ExitCode is the exit code of its last run (0 while it runs).
	ExitCode int
	Health   string // "", starting, healthy, unhealthy
	// Labels are the container's labels.
	Labels map[string]string
}

func (s ContainerSpec) engineConfig(digest string) (*container.Config, *container.HostConfig, error) {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelSpec] = digest
	env := make([]string, 0, len(s.Env))
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        env,
		Labels:     labels,
		User:       s.User,
		WorkingDir: s.WorkingDir,
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(s.NetworkMode),
		Privileged:  s.Privileged,
		CapAdd:      s.CapAdd,
		PidMode:     container.PidMode(s.PIDMode),
		ShmSize:     s.ShmSize,
	}
	if s.Restart != "" {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(s.Restart)}
	}
	if len(s.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range s.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			port, err := nat.NewPort(proto, fmt.Sprint(p.Container))
			if err != nil {
				return nil, nil, fmt.Errorf("port %d: %w", p.Container, err)
			}
			cfg.ExposedPorts[port] = struct{}{}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: fmt.Sprint(p.Host)})
		}
	}
	for _, m := range s.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, u := range s.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, d := range s.Devices {
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: d, PathInContainer: d, CgroupPermissions: "rwm"})
	}
	if s.GPUs {
		hc.DeviceRequests = []container.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}
	}
	if s.Health != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test: s.Health.Test, Interval: s.Health.Interval, Timeout: s.Health.Timeout,
			StartPeriod: s.Health.StartPeriod, Retries: s.Health.Retries,
		}
	}
	return cfg, hc, nil
}
