package raydeploy

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// RayConfig says how Ray runs in Docker on every node.
type RayConfig struct {
	// Version is the Ray release (x.y.z), default DefaultRayVersion. Every
	// node runs the same one.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// Image is the container image, default rayproject/ray:<Version>.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// Ports are the ports Ray listens on; zero fields take the defaults.
	Ports RayPorts `json:"ports" yaml:"ports,omitempty"`
	// Resources are the per-node defaults each node's Resources inherit.
	Resources Resources `json:"resources" yaml:"resources,omitempty"`
	// ShmSize is the container's /dev/shm size; 0 = automatic, see AutoShmSize.
	ShmSize ByteSize `json:"shm_size,omitempty" yaml:"shm_size,omitempty"`
	// Env is extra environment for the Ray containers. It must not carry
	// secrets: use TokenAuth for the Ray token.
	Env map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// TokenAuth turns on Ray's token authentication (Ray >= 2.52).
	TokenAuth TokenAuth `json:"token_auth" yaml:"token_auth,omitempty"`
	// ExtraStartArgs are appended to every `ray start`; the arguments that
	// raydeploy manages itself (--head, --address, --port, --block, ...) are
	// refused.
	ExtraStartArgs []string `json:"extra_start_args,omitempty" yaml:"extra_start_args,omitempty"`
	// NoFile is the open-files limit (ulimit nofile) of the Ray containers;
	// 0 means Ray's launcher value 65536, a negative value leaves the
	// Engine's default.
	NoFile int `json:"nofile,omitempty" yaml:"nofile,omitempty"`
}

// RayPorts are Ray's ports. Pinning them lets firewalls and Prometheus be
// configured statically.
type RayPorts struct {
	// GCS is the head's GCS port (ray start --port), default 6379.
	GCS int `json:"gcs,omitempty" yaml:"gcs,omitempty"`
	// Dashboard is the head's dashboard, Jobs and Serve REST port, default 8265.
	Dashboard int `json:"dashboard,omitempty" yaml:"dashboard,omitempty"`
	// Client is the head's Ray Client port, default 10001.
	Client int `json:"client,omitempty" yaml:"client,omitempty"`
	// Metrics is every node's metrics export port, default 8080.
	Metrics int `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	// MinWorkerPort is the first worker port, default 10002.
	MinWorkerPort int `json:"min_worker_port,omitempty" yaml:"min_worker_port,omitempty"`
	// MaxWorkerPort is the last worker port, default 19999.
	MaxWorkerPort int `json:"max_worker_port,omitempty" yaml:"max_worker_port,omitempty"`
	// DashboardAgent is every node's agent HTTP port, default 52365.
	DashboardAgent int `json:"dashboard_agent,omitempty" yaml:"dashboard_agent,omitempty"`
	// ServeHTTP is the Serve proxy's port, default 8000.
	ServeHTTP int `json:"serve_http,omitempty" yaml:"serve_http,omitempty"`
}

// TokenAuth configures Ray's token authentication. The token itself is never
// part of the configuration or the saved state: TokenEnv names the
// environment variable of the deploying process that holds it.
type TokenAuth struct {
	// Enabled sets RAY_AUTH_MODE=token on every node.
	Enabled bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// TokenEnv names the variable holding the token, default RAY_AUTH_TOKEN.
	TokenEnv string `json:"token_env,omitempty" yaml:"token_env,omitempty"`
}

// AutoShmSize is Ray's launcher rule for /dev/shm:
// min(memAvailable*0.3*1.1, 200 GB).
func AutoShmSize(memAvailable ByteSize) ByteSize {
	s := ByteSize(float64(memAvailable) * 0.3 * 1.1)
	return min(s, MaxShmSize)
}

func (r RayConfig) clone() RayConfig {
	r.Resources = r.Resources.clone()
	r.Env = cloneMap(r.Env)
	r.ExtraStartArgs = slices.Clone(r.ExtraStartArgs)
	return r
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)([-.+]?[A-Za-z][0-9A-Za-z.+-]*|[-.+][0-9A-Za-z.+-]+)?$`)

// managedStartArgs are the ray start flags raydeploy sets itself.
var managedStartArgs = []string{
	"--head", "--address", "--port", "--block", "--node-ip-address",
	"--dashboard-host", "--dashboard-port", "--metrics-export-port",
	"--min-worker-port", "--max-worker-port", "--ray-client-server-port",
	"--dashboard-agent-listen-port", "--num-cpus", "--num-gpus", "--memory",
	"--resources", "--labels",
}

// secretEnv are variables that must not be set through Env.
var secretEnv = map[string]bool{"RAY_AUTH_TOKEN": true}

func (r *RayConfig) validate(p *problems) {
	if r.Version != "" && !versionRE.MatchString(r.Version) {
		p.add("ray.version", "%q is not a release version like %s", r.Version, DefaultRayVersion)
	}
	if r.Image != "" && (strings.ContainsAny(r.Image, " \t\r\n") || strings.HasPrefix(r.Image, "-")) {
		p.add("ray.image", "%q is not an image reference", r.Image)
	}
	r.Ports.validate(p)
	validateResources(p, "ray.resources", r.Resources)
	if r.ShmSize < 0 {
		p.add("ray.shm_size", "%d must not be negative", r.ShmSize)
	}
	for _, k := range sortedKeys(r.Env) {
		switch {
		case !envNameRE.MatchString(k):
			p.add("ray.env", "%q is not an environment variable name", k)
		case secretEnv[k]:
			p.add("ray.env."+k, "secrets do not belong in the config: set ray.token_auth.enabled and name the variable holding the token in ray.token_auth.token_env")
		}
	}
	if r.TokenAuth.TokenEnv != "" {
		validateEnvName(p, "ray.token_auth.token_env", r.TokenAuth.TokenEnv)
		if !r.TokenAuth.Enabled {
			p.add("ray.token_auth.token_env", "set, but ray.token_auth.enabled is false")
		}
	}
	if r.TokenAuth.Enabled && versionRE.MatchString(r.Version) && CompareVersions(r.Version, MinTokenAuthVersion) < 0 {
		p.add("ray.token_auth.enabled", "needs Ray >= %s, ray.version is %s", MinTokenAuthVersion, r.Version)
	}
	for i, a := range r.ExtraStartArgs {
		flag, _, _ := strings.Cut(a, "=")
		if slices.Contains(managedStartArgs, flag) {
			p.add(fmt.Sprintf("ray.extra_start_args[%d]", i), "%s is set by raydeploy from the cluster config", flag)
		}
	}
}

func (ps RayPorts) validate(p *problems) {
	eff := ps
	d := DefaultRayPorts()
	named := []struct {
		name string
		v    *int
		d    int
	}{
		{"gcs", &eff.GCS, d.GCS}, {"dashboard", &eff.Dashboard, d.Dashboard},
		{"client", &eff.Client, d.Client}, {"metrics", &eff.Metrics, d.Metrics},
		{"dashboard_agent", &eff.DashboardAgent, d.DashboardAgent}, {"serve_http", &eff.ServeHTTP, d.ServeHTTP},
		{"min_worker_port", &eff.MinWorkerPort, d.MinWorkerPort}, {"max_worker_port", &eff.MaxWorkerPort, d.MaxWorkerPort},
	}
	bad := false
	for _, n := range named {
		if *n.v != 0 && (*n.v < 1 || *n.v > 65535) {
			p.add("ray.ports."+n.name, "%d out of range 1-65535", *n.v)
			bad = true
		}
		if *n.v == 0 {
			*n.v = n.d
		}
	}
	if bad {
		return
	}
	if eff.MinWorkerPort > eff.MaxWorkerPort {
		p.add("ray.ports.min_worker_port", "%d greater than ray.ports.max_worker_port %d", eff.MinWorkerPort, eff.MaxWorkerPort)
	}
	seen := map[int]string{}
	for _, n := range named[:6] {
		if prev, ok := seen[*n.v]; ok {
			p.add("ray.ports."+n.name, "%d collides with ray.ports.%s", *n.v, prev)
			continue
		}
		seen[*n.v] = n.name
		if eff.MinWorkerPort <= eff.MaxWorkerPort && *n.v >= eff.MinWorkerPort && *n.v <= eff.MaxWorkerPort {
			p.add("ray.ports."+n.name, "%d inside the worker port range %d-%d", *n.v, eff.MinWorkerPort, eff.MaxWorkerPort)
		}
	}
}

// CompareVersions compares two x.y.z versions numerically (pre-release
// suffixes are ignored): -1, 0 or +1. Unparsable parts count as 0.
func CompareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if c := cmp.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return 0
}

func versionParts(v string) [3]int {
	var out [3]int
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return out
	}
	for i := range out {
		out[i], _ = strconv.Atoi(m[i+1])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
