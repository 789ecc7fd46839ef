// Package monitoring describes the monitoring stack (Prometheus, Grafana,
// node-exporter, cAdvisor) as services, generates its configuration from the
// cluster, and holds the deployer's own Prometheus metrics.
//
// The deployer's monitoring-deployment checkpoint uses it like this:
//
//   - Stack.Validate and ValidateTargets check the configuration, naming fields.
//   - Stack.Dirs lists the head's directories to create (owner and mode),
//     Stack.HeadFiles the files to upload there: prometheus.yml
//     (Stack.PrometheusConfig), Grafana's provisioning (Stack.GrafanaFiles and
//     Ray's own dashboards through RayDashboards) and the admin password file.
//   - Stack.Services returns the service.Specs to ensure: node-exporter and
//     cAdvisor on every node, Prometheus and Grafana on the head.
//   - When prometheus.yml changed (ConfigDigest), upload it and call Reload.
//   - Stack.Check verifies every endpoint; Report.Err names the bad ones.
//
// The Grafana admin password (AdminPassword, Stack.AdminPassword) is random
// and kept in the state dir with mode 0600; it reaches Grafana as a mounted
// file (GF_SECURITY_ADMIN_PASSWORD__FILE), never through the container's
// environment or command, and is never logged. Grafana applies it when its
// database is created; changing it later needs grafana cli.
//
// Metrics are the deployer's own metrics on a caller's registry; Observe
// consumes package checkpoint's events.
package monitoring
