package testenv

import (
	"context"

	"github.com/ory/dockertest/v3"
)

// PrometheusRecipe is an image with Debian's Prometheus, laid out like the
// upstream prom/prometheus image where the monitoring specs rely on it: the
// binary at /bin/prometheus (the spec's entrypoint), /etc/prometheus and
// /prometheus present. It runs the real program in place of the upstream
// image on test nodes that have no registry. Debian's console templates are
// not needed: the stack uses the HTTP API only.
func PrometheusRecipe() ImageRecipe {
	return ImageRecipe{
		Name:     "prometheus",
		Packages: []string{"prometheus", "ca-certificates"},
		Commands: []string{
			"[ -e /bin/prometheus ] || ln -s /usr/bin/prometheus /bin/prometheus",
			"[ -e /bin/promtool ] || ln -s /usr/bin/promtool /bin/promtool",
			"mkdir -p /etc/prometheus /prometheus && chown 65534:65534 /prometheus",
			// moment-timezone's source data (212 MB, two thirds of the
			// image): the web UI loads the bundled
			// moment-timezone-with-data.min.js, never these files.
			"rm -rf /usr/share/javascript/moment-timezone/data",
		},
	}
}

// NodeExporterRecipe is an image with Debian's node-exporter, its binary also
// at /bin/node_exporter (the upstream image's path, the spec's entrypoint).
func NodeExporterRecipe() ImageRecipe {
	return ImageRecipe{
		Name:     "node-exporter",
		Packages: []string{"prometheus-node-exporter"},
		Commands: []string{
			"[ -e /bin/node_exporter ] || ln -s /usr/bin/prometheus-node-exporter /bin/node_exporter",
		},
	}
}

// PrometheusImage returns the tag of the Prometheus image, building it when missing.
func PrometheusImage(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (string, error) {
	return DebianImage(ctx, pool, PrometheusRecipe(), logf)
}

// NodeExporterImage returns the tag of the node-exporter image, building it when missing.
func NodeExporterImage(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (string, error) {
	return DebianImage(ctx, pool, NodeExporterRecipe(), logf)
}
