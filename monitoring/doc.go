// Package monitoring describes the monitoring stack (Prometheus, Grafana,
// node-exporter, cAdvisor) as services, generates its configuration from the
// cluster, and holds the deployer's own Prometheus metrics.
package monitoring
