package monitoring

import (
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
)

// File is a file the deployer writes on the head node (atomically, then
// chown UID and chmod Mode). Secret files hold the admin password: never log
// or print Data (LogValue leaves it out).
type File struct {
	// Path is the file's absolute path on the head node.
	Path string
	// Mode is its permission bits, e.g. 0o644.
	Mode uint32
	// UID is the uid that owns it (0: root).
	UID int
	// Data is its content.
	Data []byte
	// Secret is true for the admin password file: Data must not be shown.
	Secret bool
}

// LogValue logs a File without its content.
func (f File) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("path", f.Path),
		slog.String("mode", fmt.Sprintf("%04o", f.Mode)),
		slog.Int("bytes", len(f.Data)),
		slog.String("digest", ConfigDigest(f.Data)[:12]),
	)
}

// HeadFiles returns every file of the stack on the head node, sorted by path:
// Prometheus' configuration, Grafana's provisioning (plus Ray's dashboards,
// as returned by RayDashboards, may be nil) and the admin password file.
// Prometheus' configuration changes need a Reload; provisioning changes are
// picked up by Grafana within 30 s.
func (s Stack) HeadFiles(cluster string, targets []Target, adminPassword string, rayDashboards map[string][]byte) ([]File, error) {
	s = s.WithDefaults()
	if len(adminPassword) < minPasswordLen {
		return nil, fmt.Errorf("monitoring: head files: admin password shorter than %d characters", minPasswordLen)
	}
	prom, err := s.PrometheusConfig(cluster, targets)
	if err != nil {
		return nil, err
	}
	graf, err := s.GrafanaFiles(targets)
	if err != nil {
		return nil, err
	}
	files := []File{
		{Path: path.Join(s.prometheusConfigDir(cluster), PrometheusConfigFile), Mode: 0o644, Data: prom},
		{Path: path.Join(s.grafanaSecretDir(cluster), AdminPasswordFile), Mode: 0o400, UID: GrafanaUID, Data: []byte(adminPassword), Secret: true},
	}
	for rel, data := range graf {
		files = append(files, File{Path: path.Join(s.grafanaProvisioningDir(cluster), rel), Mode: 0o644, Data: data})
	}
	for rel, data := range rayDashboards {
		if !strings.HasPrefix(rel, GrafanaRayDashboardDir+"/") || strings.Contains(rel, "..") {
			return nil, fmt.Errorf("monitoring: head files: ray dashboard %q is not under %s (use RayDashboards)", rel, GrafanaRayDashboardDir)
		}
		files = append(files, File{Path: path.Join(s.grafanaProvisioningDir(cluster), rel), Mode: 0o644, Data: data})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// PrometheusConfigPath is where the head's Prometheus configuration lives on
// the node (the file to compare by ConfigDigest before a Reload).
func (s Stack) PrometheusConfigPath(cluster string) string {
	return path.Join(s.WithDefaults().prometheusConfigDir(cluster), PrometheusConfigFile)
}

// RayDashboardsSource is the directory on the head node where Ray writes
// its version-matched Grafana dashboards (input of RayDashboards).
func (s Stack) RayDashboardsSource() string {
	return path.Join(s.WithDefaults().RayTempDir, "session_latest", "metrics", "grafana", "dashboards")
}
