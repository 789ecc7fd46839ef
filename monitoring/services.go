package monitoring

import (
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/raydeploy/sdk/service"
)

// Service names (the container on a node is "<cluster>-<name>").
const (
	ServiceNodeExporter = "node-exporter"
	ServiceCAdvisor     = "cadvisor"
	ServicePrometheus   = "prometheus"
	ServiceGrafana      = "grafana"
)

// Services returns the stack's services: node-exporter and cAdvisor on every
// node, Prometheus and Grafana on the head. The specs hold no secret: Grafana
// reads its admin password from a file (see HeadFiles).
func (s Stack) Services(cluster string, targets []Target) []service.Spec {
	s = s.WithDefaults()
	_ = targets // every service is placed by role; the node list does not change the specs
	return []service.Spec{
		s.nodeExporter(),
		s.cadvisor(),
		s.prometheus(cluster),
		s.grafana(cluster),
	}
}

func localURL(port int, p string) string {
	return "http://" + hostPort("127.0.0.1", port) + p
}

func (s Stack) nodeExporter() service.Spec {
	return service.Spec{
		Name:       ServiceNodeExporter,
		Image:      s.NodeExporterImage,
		Placement:  service.OnAll,
		Entrypoint: []string{"/bin/node_exporter"},
		// The flags node-exporter documents for running in a container.
		Command: []string{
			"--path.rootfs=/host/root",
			"--path.procfs=/host/proc",
			"--path.sysfs=/host/sys",
			"--web.listen-address=:" + strconv.Itoa(s.NodeExporterPort),
			"--no-collector.systemd",
			"--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run|var/lib/docker/.+|var/lib/containers/.+)($|/)",
		},
		NetworkMode: "host",
		PIDMode:     "host",
		User:        "65534:65534",
		Mounts: []service.Mount{
			{Type: "bind", Source: "/", Target: "/host/root", ReadOnly: true},
			{Type: "bind", Source: "/proc", Target: "/host/proc", ReadOnly: true},
			{Type: "bind", Source: "/sys", Target: "/host/sys", ReadOnly: true},
		},
		Health: &service.HealthCheck{HTTP: localURL(s.NodeExporterPort, "/metrics"), Timeout: time.Minute},
	}
}

func (s Stack) cadvisor() service.Spec {
	return service.Spec{
		Name:      ServiceCAdvisor,
		Image:     s.CAdvisorImage,
		Placement: service.OnAll,
		Command: []string{
			"--port=" + strconv.Itoa(s.CAdvisorPort),
			"--docker_only=true",
			"--housekeeping_interval=" + s.ScrapeInterval.String(),
			"--store_container_labels=false",
			"--whitelisted_container_labels=io.raydeploy.cluster,io.raydeploy.role",
		},
		NetworkMode: "host",
		Privileged:  true,
		Mounts: []service.Mount{
			{Type: "bind", Source: "/", Target: "/rootfs", ReadOnly: true},
			{Type: "bind", Source: "/var/run", Target: "/var/run", ReadOnly: true},
			{Type: "bind", Source: "/sys", Target: "/sys", ReadOnly: true},
			{Type: "bind", Source: "/var/lib/docker", Target: "/var/lib/docker", ReadOnly: true},
			{Type: "bind", Source: "/dev/disk", Target: "/dev/disk", ReadOnly: true},
		},
		Health: &service.HealthCheck{HTTP: localURL(s.CAdvisorPort, "/healthz"), Timeout: 2 * time.Minute},
	}
}

// prometheusArgs are the Prometheus flags; the tests run the real binary with them.
func (s Stack) prometheusArgs() []string {
	return []string{
		"--config.file=" + path.Join(prometheusConfigMount, PrometheusConfigFile),
		"--storage.tsdb.path=" + prometheusDataMount,
		"--storage.tsdb.retention.time=" + promDuration(s.Retention),
		"--web.listen-address=:" + strconv.Itoa(s.PrometheusPort),
		"--web.enable-lifecycle",
	}
}

func (s Stack) prometheus(cluster string) service.Spec {
	return service.Spec{
		Name:        ServicePrometheus,
		Image:       s.PrometheusImage,
		Placement:   service.OnHead,
		Entrypoint:  []string{"/bin/prometheus"},
		Command:     s.prometheusArgs(),
		NetworkMode: "host",
		User:        fmt.Sprintf("%d:%d", PrometheusUID, PrometheusUID),
		Mounts: []service.Mount{
			{Type: "bind", Source: s.prometheusConfigDir(cluster), Target: prometheusConfigMount, ReadOnly: true},
			{Type: "bind", Source: s.prometheusDataDir(cluster), Target: prometheusDataMount},
			{Type: "bind", Source: s.RayTempDir, Target: rayTempMount, ReadOnly: true},
		},
		Health: &service.HealthCheck{HTTP: localURL(s.PrometheusPort, "/-/ready"), Timeout: 2 * time.Minute},
	}
}

func (s Stack) grafana(cluster string) service.Spec {
	return service.Spec{
		Name:        ServiceGrafana,
		Image:       s.GrafanaImage,
		Placement:   service.OnHead,
		NetworkMode: "host",
		User:        strconv.Itoa(GrafanaUID),
		Env: map[string]string{
			"GF_SERVER_HTTP_PORT":                       strconv.Itoa(s.GrafanaPort),
			"GF_PATHS_PROVISIONING":                     grafanaProvisionMount,
			"GF_PATHS_DATA":                             grafanaDataMount,
			"GF_SECURITY_ADMIN_USER":                    "admin",
			"GF_SECURITY_ADMIN_PASSWORD__FILE":          path.Join(grafanaSecretMount, AdminPasswordFile),
			"GF_AUTH_ANONYMOUS_ENABLED":                 "false",
			"GF_USERS_ALLOW_SIGN_UP":                    "false",
			"GF_ANALYTICS_REPORTING_ENABLED":            "false",
			"GF_ANALYTICS_CHECK_FOR_UPDATES":            "false",
			"GF_SECURITY_DISABLE_GRAVATAR":              "true",
			"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": path.Join(grafanaProvisionMount, "dashboards", "raydeploy", "nodes.json"),
		},
		Mounts: []service.Mount{
			{Type: "bind", Source: s.grafanaProvisioningDir(cluster), Target: grafanaProvisionMount, ReadOnly: true},
			{Type: "bind", Source: s.grafanaDataDir(cluster), Target: grafanaDataMount},
			{Type: "bind", Source: s.grafanaSecretDir(cluster), Target: grafanaSecretMount, ReadOnly: true},
		},
		Health: &service.HealthCheck{HTTP: localURL(s.GrafanaPort, "/api/health"), Timeout: 2 * time.Minute},
	}
}

// promDuration formats d the way Prometheus flags and configs accept
// (e.g. 15d, 10s, 1h30m).
func promDuration(d time.Duration) string {
	units := []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}}
	if d <= 0 {
		return "0s"
	}
	out := ""
	for _, u := range units {
		if n := d / u.d; n > 0 {
			out += strconv.FormatInt(int64(n), 10) + u.name
			d -= n * u.d
		}
	}
	return out
}
