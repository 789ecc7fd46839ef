package monitoring

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PrometheusConfigFile is the name of the configuration file in Prometheus'
// config directory.
const PrometheusConfigFile = "prometheus.yml"

// RayServiceDiscoveryFile is the file Ray's head writes (inside Ray's temp
// dir) with the metrics endpoints of every alive node.
const RayServiceDiscoveryFile = "prom_metrics_service_discovery.json"

// Scrape job names.
const (
	JobPrometheus   = "prometheus"
	JobNodeExporter = "node"
	JobCAdvisor     = "cadvisor"
	JobRay          = "ray"
	// JobRayDiscovery is the job reading Ray's file SD. Ray's file sets
	// job="ray" on its targets, so their series carry job "ray" and
	// role "discovered".
	JobRayDiscovery = "ray-discovered"
	JobDCGM         = "dcgm"
)

type promConfig struct {
	Global        promGlobal     `yaml:"global"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type promGlobal struct {
	ScrapeInterval     string            `yaml:"scrape_interval"`
	EvaluationInterval string            `yaml:"evaluation_interval"`
	ExternalLabels     map[string]string `yaml:"external_labels,omitempty"`
}

type scrapeConfig struct {
	JobName        string          `yaml:"job_name"`
	StaticConfigs  []staticConfig  `yaml:"static_configs,omitempty"`
	FileSDConfigs  []fileSDConfig  `yaml:"file_sd_configs,omitempty"`
	RelabelConfigs []relabelConfig `yaml:"relabel_configs,omitempty"`
}

type staticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels,omitempty"`
}

type fileSDConfig struct {
	Files           []string `yaml:"files"`
	RefreshInterval string   `yaml:"refresh_interval,omitempty"`
}

type relabelConfig struct {
	SourceLabels []string `yaml:"source_labels,omitempty,flow"`
	Regex        string   `yaml:"regex,omitempty"`
	TargetLabel  string   `yaml:"target_label,omitempty"`
	Replacement  string   `yaml:"replacement,omitempty"`
	Action       string   `yaml:"action,omitempty"`
}

// PrometheusConfig returns Prometheus' configuration (prometheus.yml) for the
// nodes: jobs for Prometheus itself, node-exporter, cAdvisor and Ray on every
// node (each series labelled node=<name>, role=head|worker), and Ray's file
// service discovery for nodes Ray knows that are not in targets. The output
// depends only on s and the set of targets (not their order); ConfigDigest of
// it decides whether to upload and reload.
func (s Stack) PrometheusConfig(cluster string, targets []Target) ([]byte, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateTargets(targets); err != nil {
		return nil, err
	}
	targets = slices.Clone(targets)
	slices.SortFunc(targets, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	h := head(targets)

	perNode := func(port int) []staticConfig {
		var out []staticConfig
		for _, t := range targets {
			out = append(out, staticConfig{
				Targets: []string{hostPort(t.Address, port)},
				Labels:  map[string]string{"node": t.Name, "role": t.Role()},
			})
		}
		return out
	}
	cfg := promConfig{
		Global: promGlobal{
			ScrapeInterval:     promDuration(s.ScrapeInterval),
			EvaluationInterval: promDuration(s.ScrapeInterval),
			ExternalLabels:     map[string]string{"cluster": cluster},
		},
	}
	if cluster == "" {
		cfg.Global.ExternalLabels = nil
	}
	cfg.ScrapeConfigs = append(cfg.ScrapeConfigs,
		scrapeConfig{JobName: JobPrometheus, StaticConfigs: []staticConfig{{
			Targets: []string{hostPort("localhost", s.PrometheusPort)},
			Labels:  map[string]string{"node": h.Name, "role": h.Role()},
		}}},
		scrapeConfig{JobName: JobNodeExporter, StaticConfigs: perNode(s.NodeExporterPort)},
		scrapeConfig{JobName: JobCAdvisor, StaticConfigs: perNode(s.CAdvisorPort)},
		scrapeConfig{JobName: JobRay, StaticConfigs: perNode(s.RayMetricsPort)},
	)

	// Ray's file SD lists every alive node's metrics endpoint as ip:port.
	// Nodes already scraped statically are dropped (no duplicate series);
	// the others (joined outside this deployment) get a node label from
	// their address. Ray lists IP addresses: a Target given by host name
	// is not recognized here and its node would be scraped twice.
	var known []string
	for _, t := range targets {
		known = append(known, regexp.QuoteMeta(hostPort(t.Address, s.RayMetricsPort)))
	}
	cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, scrapeConfig{
		JobName:       JobRayDiscovery,
		FileSDConfigs: []fileSDConfig{{Files: []string{path.Join(rayTempMount, RayServiceDiscoveryFile)}}},
		RelabelConfigs: []relabelConfig{
			{SourceLabels: []string{"__address__"}, Regex: strings.Join(known, "|"), Action: "drop"},
			{SourceLabels: []string{"__address__"}, Regex: `(.+):\d+`, TargetLabel: "node", Replacement: "$1"},
			{TargetLabel: "role", Replacement: "discovered"},
		},
	})
	if s.DCGMExporterPort != 0 {
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, scrapeConfig{JobName: JobDCGM, StaticConfigs: perNode(s.DCGMExporterPort)})
	}

	var buf bytes.Buffer
	buf.WriteString("# Generated by raydeploy; changes are overwritten on the next deployment.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("monitoring: encode prometheus config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("monitoring: encode prometheus config: %w", err)
	}
	return buf.Bytes(), nil
}

// ConfigDigest is the hex SHA-256 of a generated file: equal digests mean
// nothing to upload and no reload.
func ConfigDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Reload asks the Prometheus at baseURL (e.g. "http://head:9090", reached
// through the caller's client) to re-read its configuration: POST /-/reload,
// which needs --web.enable-lifecycle. A rejected configuration is an error
// carrying Prometheus' answer.
func Reload(ctx context.Context, client *http.Client, baseURL string) error {
	u := strings.TrimRight(baseURL, "/") + "/-/reload"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("monitoring: reload prometheus: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("monitoring: reload prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("monitoring: reload prometheus: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
