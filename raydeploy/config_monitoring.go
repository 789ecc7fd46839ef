package raydeploy

import "strings"

// MonitoringConfig is the cluster file's monitoring section: whether the
// monitoring stack (Prometheus and Grafana on the head, node-exporter and
// cAdvisor on every node) is deployed, from which images, on which ports,
// and where the Grafana admin password comes from. Zero values mean the
// defaults of package monitoring. Options.Monitoring, when set, wins over
// this section; Options.NoMonitoring turns monitoring off whatever it says.
type MonitoringConfig struct {
	// Enabled deploys and checks the monitoring stack (default true).
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Images of the four services, e.g. a site's own registry mirror, or
	// images side-loaded from the controller's Docker Engine.
	Images MonitoringImages `json:"images,omitzero" yaml:"images,omitempty"`
	// Ports of the four services (host networking: the same on every node).
	Ports MonitoringPorts `json:"ports,omitzero" yaml:"ports,omitempty"`
	// GrafanaPasswordEnv names an environment variable holding the Grafana
	// admin password.
	GrafanaPasswordEnv string `json:"grafana_password_env,omitempty" yaml:"grafana_password_env,omitempty"`
	// GrafanaPasswordFile is a file (mode 0600 or stricter) holding the
	// Grafana admin password. Without either, a password is generated into
	// the state directory.
	GrafanaPasswordFile string `json:"grafana_password_file,omitempty" yaml:"grafana_password_file,omitempty"`
}

// MonitoringImages are the images of the monitoring services.
type MonitoringImages struct {
	// Prometheus is its image reference (empty:
	// monitoring.DefaultPrometheusImage).
	Prometheus string `json:"prometheus,omitempty" yaml:"prometheus,omitempty"`
	// Grafana is its image reference (empty: monitoring.DefaultGrafanaImage).
	Grafana string `json:"grafana,omitempty" yaml:"grafana,omitempty"`
	// NodeExporter is its image reference (empty:
	// monitoring.DefaultNodeExporterImage).
	NodeExporter string `json:"node_exporter,omitempty" yaml:"node_exporter,omitempty"`
	// CAdvisor is its image reference (empty:
	// monitoring.DefaultCAdvisorImage).
	CAdvisor string `json:"cadvisor,omitempty" yaml:"cadvisor,omitempty"`
}

// MonitoringPorts are the ports of the monitoring services.
type MonitoringPorts struct {
	// Prometheus is its port on the head (0:
	// monitoring.DefaultPrometheusPort).
	Prometheus int `json:"prometheus,omitempty" yaml:"prometheus,omitempty"`
	// Grafana is its port on the head (0: monitoring.DefaultGrafanaPort).
	Grafana int `json:"grafana,omitempty" yaml:"grafana,omitempty"`
	// NodeExporter is its port on every node (0:
	// monitoring.DefaultNodeExporterPort).
	NodeExporter int `json:"node_exporter,omitempty" yaml:"node_exporter,omitempty"`
	// CAdvisor is its port on every node (0: monitoring.DefaultCAdvisorPort).
	CAdvisor int `json:"cadvisor,omitempty" yaml:"cadvisor,omitempty"`
}

// MonitoringEnabled reports whether the cluster file asks for the
// monitoring stack (it does unless monitoring.enabled is false).
func (c *Cluster) MonitoringEnabled() bool {
	return c.Monitoring.Enabled == nil || *c.Monitoring.Enabled
}

func (m MonitoringConfig) validate(p *problems) {
	for _, im := range []struct{ field, ref string }{
		{"prometheus", m.Images.Prometheus}, {"grafana", m.Images.Grafana},
		{"node_exporter", m.Images.NodeExporter}, {"cadvisor", m.Images.CAdvisor},
	} {
		if im.ref != "" && (strings.ContainsAny(im.ref, " \t\r\n") || strings.HasPrefix(im.ref, "-")) {
			p.add("monitoring.images."+im.field, "%q is not an image reference", im.ref)
		}
	}
	seen := map[int]string{}
	for _, pt := range []struct {
		field string
		port  int
	}{
		{"prometheus", m.Ports.Prometheus}, {"grafana", m.Ports.Grafana},
		{"node_exporter", m.Ports.NodeExporter}, {"cadvisor", m.Ports.CAdvisor},
	} {
		field := "monitoring.ports." + pt.field
		validatePort(p, field, pt.port)
		if pt.port == 0 {
			continue
		}
		if prev, ok := seen[pt.port]; ok {
			p.add(field, "%d collides with %s", pt.port, prev)
		}
		seen[pt.port] = field
	}
	validateEnvName(p, "monitoring.grafana_password_env", m.GrafanaPasswordEnv)
	if m.GrafanaPasswordEnv != "" && m.GrafanaPasswordFile != "" {
		p.add("monitoring.grafana_password_file", "exclusive with grafana_password_env")
	}
	validatePathField(p, "monitoring.grafana_password_file", m.GrafanaPasswordFile)
}

// validatePathField checks a file name of the config for what no file name
// may hold.
func validatePathField(p *problems, field, path string) {
	if strings.ContainsAny(path, "\x00\n") {
		p.add(field, "must not contain NUL or newline")
	}
}
