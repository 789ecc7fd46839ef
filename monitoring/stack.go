package monitoring

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"
	"time"
)

// Default images: upstream images pinned to a release, never "latest".
const (
	DefaultPrometheusImage   = "prom/prometheus:v3.5.0"
	DefaultGrafanaImage      = "grafana/grafana:12.1.1"
	DefaultNodeExporterImage = "prom/node-exporter:v1.9.1"
	DefaultCAdvisorImage     = "gcr.io/cadvisor/cadvisor:v0.52.1"
)

// Default ports (the seed's) and settings.
const (
	DefaultNodeExporterPort = 9100
	DefaultCAdvisorPort     = 8081
	DefaultPrometheusPort   = 9090
	DefaultGrafanaPort      = 3000
	DefaultRayMetricsPort   = 8080
	DefaultScrapeInterval   = 10 * time.Second
	DefaultRetention        = 15 * 24 * time.Hour
	DefaultRayTempDir       = "/tmp/ray"
	// DefaultDataRoot is the parent of each cluster's data directory on a node.
	DefaultDataRoot = "/var/lib/raydeploy"
)

// Container-side paths and users. The Prometheus and Grafana containers run
// as the users of the upstream images, so their data directories on the node
// must belong to these uids (see Stack.Dirs).
const (
	prometheusConfigMount = "/etc/prometheus"
	prometheusDataMount   = "/prometheus"
	grafanaProvisionMount = "/etc/grafana/provisioning"
	grafanaDataMount      = "/var/lib/grafana"
	grafanaSecretMount    = "/run/secrets/raydeploy"
	rayTempMount          = "/tmp/ray"

	// PrometheusUID is the uid the Prometheus container runs as (nobody).
	PrometheusUID = 65534
	// GrafanaUID is the uid the Grafana container runs as (upstream's grafana user).
	GrafanaUID = 472
)

// Target is one node of the cluster as monitoring sees it.
type Target struct {
	// Name is the node's name; every series scraped from the node carries
	// it as the label "node".
	Name string `json:"name"`
	// Address is the node's host name or IP address, without a port.
	Address string `json:"address"`
	// Head marks the Ray head node, where Prometheus and Grafana run.
	Head bool `json:"head,omitempty"`
}

// Role is "head" or "worker".
func (t Target) Role() string {
	if t.Head {
		return "head"
	}
	return "worker"
}

// Stack configures the monitoring stack. The zero value is usable: every
// empty field takes its default (see WithDefaults).
type Stack struct {
	// Images.
	PrometheusImage   string `json:"prometheus_image,omitempty"`    // default DefaultPrometheusImage
	GrafanaImage      string `json:"grafana_image,omitempty"`       // default DefaultGrafanaImage
	NodeExporterImage string `json:"node_exporter_image,omitempty"` // default DefaultNodeExporterImage
	CAdvisorImage     string `json:"cadvisor_image,omitempty"`      // default DefaultCAdvisorImage

	// Ports, the same on every node (host networking).
	NodeExporterPort int `json:"node_exporter_port,omitempty"` // default DefaultNodeExporterPort
	CAdvisorPort     int `json:"cadvisor_port,omitempty"`      // default DefaultCAdvisorPort
	PrometheusPort   int `json:"prometheus_port,omitempty"`    // on the head; default DefaultPrometheusPort
	GrafanaPort      int `json:"grafana_port,omitempty"`       // on the head; default DefaultGrafanaPort
	// RayMetricsPort is Ray's --metrics-export-port on every node.
	RayMetricsPort int `json:"ray_metrics_port,omitempty"`
	// DCGMExporterPort, when not 0, adds a scrape job for an NVIDIA DCGM
	// exporter the user runs on every GPU node (usually 9400). The GPU
	// panels use its metrics, and Ray's own GPU metrics otherwise.
	DCGMExporterPort int `json:"dcgm_exporter_port,omitempty"`

	// ScrapeInterval is Prometheus' global scrape and evaluation interval.
	ScrapeInterval time.Duration `json:"scrape_interval,omitempty"`
	// Retention is how long Prometheus keeps samples.
	Retention time.Duration `json:"retention,omitempty"`
	// DataDir is the persistent directory on the head node holding
	// prometheus/ and grafana/; empty means /var/lib/raydeploy/<cluster>.
	DataDir string `json:"data_dir,omitempty"`
	// RayTempDir is Ray's temp dir on the nodes (file service discovery
	// and Ray's generated dashboards live there).
	RayTempDir string `json:"ray_temp_dir,omitempty"`
	// GrafanaPasswordEnv names an environment variable holding the Grafana
	// admin password; empty or unset means a generated one (AdminPassword).
	GrafanaPasswordEnv string `json:"grafana_password_env,omitempty"`
	// GrafanaPasswordFile is a file (mode 0600 or stricter) holding the
	// Grafana admin password; exclusive with GrafanaPasswordEnv.
	GrafanaPasswordFile string `json:"grafana_password_file,omitempty"`
}

// DefaultStack returns the stack with every default filled in.
func DefaultStack() Stack { return Stack{}.WithDefaults() }

// WithDefaults returns s with every empty field set to its default.
// DataDir stays empty: it depends on the cluster name (see Dirs).
func (s Stack) WithDefaults() Stack {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.PrometheusImage, DefaultPrometheusImage)
	def(&s.GrafanaImage, DefaultGrafanaImage)
	def(&s.NodeExporterImage, DefaultNodeExporterImage)
	def(&s.CAdvisorImage, DefaultCAdvisorImage)
	def(&s.RayTempDir, DefaultRayTempDir)
	defInt(&s.NodeExporterPort, DefaultNodeExporterPort)
	defInt(&s.CAdvisorPort, DefaultCAdvisorPort)
	defInt(&s.PrometheusPort, DefaultPrometheusPort)
	defInt(&s.GrafanaPort, DefaultGrafanaPort)
	defInt(&s.RayMetricsPort, DefaultRayMetricsPort)
	if s.ScrapeInterval == 0 {
		s.ScrapeInterval = DefaultScrapeInterval
	}
	if s.Retention == 0 {
		s.Retention = DefaultRetention
	}
	return s
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate returns every problem of the stack (after defaults), each naming
// its field.
func (s Stack) Validate() error {
	s = s.WithDefaults()
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("monitoring.%s: %s", field, fmt.Sprintf(format, a...)))
	}
	for _, img := range []struct{ field, v string }{
		{"prometheus_image", s.PrometheusImage}, {"grafana_image", s.GrafanaImage},
		{"node_exporter_image", s.NodeExporterImage}, {"cadvisor_image", s.CAdvisorImage},
	} {
		if strings.ContainsAny(img.v, " \t\n") {
			bad(img.field, "%q is not an image reference", img.v)
		}
	}
	ports := []struct {
		field string
		v     int
	}{
		{"node_exporter_port", s.NodeExporterPort}, {"cadvisor_port", s.CAdvisorPort},
		{"prometheus_port", s.PrometheusPort}, {"grafana_port", s.GrafanaPort},
		{"ray_metrics_port", s.RayMetricsPort}, {"dcgm_exporter_port", s.DCGMExporterPort},
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.v == 0 && p.field == "dcgm_exporter_port" {
			continue
		}
		if p.v < 1 || p.v > 65535 {
			bad(p.field, "%d is not in 1-65535", p.v)
			continue
		}
		if other, ok := seen[p.v]; ok {
			bad(p.field, "port %d is also %s (host networking: ports must differ)", p.v, other)
		}
		seen[p.v] = p.field
	}
	if s.ScrapeInterval < time.Second {
		bad("scrape_interval", "%s is shorter than 1s", s.ScrapeInterval)
	}
	if s.Retention < time.Hour {
		bad("retention", "%s is shorter than 1h", s.Retention)
	}
	if s.DataDir != "" && (!path.IsAbs(s.DataDir) || path.Clean(s.DataDir) == "/") {
		bad("data_dir", "%q must be an absolute path below /", s.DataDir)
	}
	if !path.IsAbs(s.RayTempDir) {
		bad("ray_temp_dir", "%q must be an absolute path", s.RayTempDir)
	}
	if s.GrafanaPasswordEnv != "" && !envNameRE.MatchString(s.GrafanaPasswordEnv) {
		bad("grafana_password_env", "%q is not an environment variable name", s.GrafanaPasswordEnv)
	}
	return errors.Join(errs...)
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)

// ValidateTargets checks the node list: names unique and label-safe,
// addresses set and without a port, exactly one head.
func ValidateTargets(targets []Target) error {
	var errs []error
	names, addrs := map[string]int{}, map[string]int{}
	heads := 0
	for i, t := range targets {
		field := fmt.Sprintf("targets[%d]", i)
		if !nodeNameRE.MatchString(t.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q must be letters, digits, '.', '_' or '-' (at most 63)", field, t.Name))
		} else if j, dup := names[t.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also targets[%d]", field, t.Name, j))
		}
		names[t.Name] = i
		switch {
		case t.Address == "":
			errs = append(errs, fmt.Errorf("%s.address: must not be empty", field))
		case strings.ContainsAny(t.Address, " /\"'\\") || (strings.Count(t.Address, ":") == 1):
			errs = append(errs, fmt.Errorf("%s.address: %q must be a host name or IP address without a port", field, t.Address))
		default:
			if j, dup := addrs[t.Address]; dup {
				errs = append(errs, fmt.Errorf("%s.address: %q is also targets[%d]", field, t.Address, j))
			}
			addrs[t.Address] = i
		}
		if t.Head {
			heads++
		}
	}
	if len(targets) == 0 {
		errs = append(errs, errors.New("targets: no nodes"))
	} else if heads != 1 {
		errs = append(errs, fmt.Errorf("targets: %d head nodes, want exactly 1", heads))
	}
	return errors.Join(errs...)
}

func head(targets []Target) Target {
	for _, t := range targets {
		if t.Head {
			return t
		}
	}
	return Target{}
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// dataDir is the cluster's data directory on the head node.
func (s Stack) dataDir(cluster string) string {
	if s.DataDir != "" {
		return path.Clean(s.DataDir)
	}
	return path.Join(DefaultDataRoot, cluster)
}

// Node paths of the head's monitoring files.
func (s Stack) prometheusConfigDir(cluster string) string {
	return path.Join(s.dataDir(cluster), "prometheus", "config")
}
func (s Stack) prometheusDataDir(cluster string) string {
	return path.Join(s.dataDir(cluster), "prometheus", "data")
}
func (s Stack) grafanaProvisioningDir(cluster string) string {
	return path.Join(s.dataDir(cluster), "grafana", "provisioning")
}
func (s Stack) grafanaDataDir(cluster string) string {
	return path.Join(s.dataDir(cluster), "grafana", "data")
}
func (s Stack) grafanaSecretDir(cluster string) string {
	return path.Join(s.dataDir(cluster), "grafana", "secrets")
}

// Dir is a directory the deployer creates on the head node before starting
// the stack, owned by UID with mode Mode.
type Dir struct {
	// Path is the directory's absolute path on the head node.
	Path string
	// Mode is its permission bits, e.g. 0o750.
	Mode uint32
	// UID is the uid that owns it (0: root).
	UID int
}

// Dirs lists the head node's directories of the stack, parents first.
func (s Stack) Dirs(cluster string) []Dir {
	s = s.WithDefaults()
	return []Dir{
		{Path: s.dataDir(cluster), Mode: 0o755, UID: 0},
		{Path: path.Join(s.dataDir(cluster), "prometheus"), Mode: 0o755, UID: 0},
		{Path: s.prometheusConfigDir(cluster), Mode: 0o755, UID: 0},
		{Path: s.prometheusDataDir(cluster), Mode: 0o750, UID: PrometheusUID},
		{Path: path.Join(s.dataDir(cluster), "grafana"), Mode: 0o755, UID: 0},
		{Path: s.grafanaProvisioningDir(cluster), Mode: 0o755, UID: 0},
		{Path: s.grafanaDataDir(cluster), Mode: 0o750, UID: GrafanaUID},
		{Path: s.grafanaSecretDir(cluster), Mode: 0o700, UID: GrafanaUID},
	}
}
