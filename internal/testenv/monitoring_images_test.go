package testenv

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMonitoringRecipeTags(t *testing.T) {
	tagRE := regexp.MustCompile(`^raydeploy-testenv/([a-z-]+):[0-9a-f]{16}$`)
	for _, tc := range []struct {
		recipe  ImageRecipe
		name    string
		pkg     string
		binLink string
	}{
		{PrometheusRecipe(), "prometheus", "prometheus", "/bin/prometheus"},
		{NodeExporterRecipe(), "node-exporter", "prometheus-node-exporter", "/bin/node_exporter"},
	} {
		tag := tc.recipe.Tag("bookworm")
		m := tagRE.FindStringSubmatch(tag)
		if m == nil || m[1] != tc.name {
			t.Errorf("%s: tag %q, want raydeploy-testenv/%s:<16 hex>", tc.name, tag, tc.name)
		}
		if tag != tc.recipe.Tag("bookworm") {
			t.Errorf("%s: tag is not stable", tc.name)
		}
		if tag == tc.recipe.Tag("trixie") {
			t.Errorf("%s: tag does not depend on the suite", tc.name)
		}
		if !slices.Contains(tc.recipe.Packages, tc.pkg) {
			t.Errorf("%s: packages %v lack %s", tc.name, tc.recipe.Packages, tc.pkg)
		}
		if !strings.Contains(strings.Join(tc.recipe.Commands, "\n"), tc.binLink) {
			t.Errorf("%s: no command provides the upstream path %s", tc.name, tc.binLink)
		}
	}
	if PrometheusRecipe().Tag("bookworm") == NodeExporterRecipe().Tag("bookworm") {
		t.Error("both recipes have the same tag")
	}
}
