package testenv

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestPrometheusImageServesUI runs Prometheus from its image and loads its
// web UI as a browser would: the graph page and every script and style it
// names (the recipe removes files of the packages the UI links to).
func TestPrometheusImageServesUI(t *testing.T) {
	pool := RequireDocker(t)
	t.Setenv(PrometheusImageEnv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tag, err := PrometheusImage(ctx, pool, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctr := startInImage(ctx, t, pool, tag, "promimage",
		": > /tmp/prometheus.yml && exec /bin/prometheus --config.file=/tmp/prometheus.yml --storage.tsdb.path=/tmp/data")
	info, err := pool.Client.InspectContainer(ctr.ID)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + info.NetworkSettings.IPAddress + ":9090"
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	var page string
	for {
		code, body, err := get("/classic/graph")
		if err == nil && code == http.StatusOK {
			page = body
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus' graph page: status %d, %v", code, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	assets := regexp.MustCompile(`(?:src|href)="(/classic/static/[^"?]+)`).FindAllStringSubmatch(page, -1)
	var scripts int
	for _, m := range assets {
		code, body, err := get(m[1])
		if err != nil || code != http.StatusOK || body == "" {
			t.Errorf("%s: status %d, %d bytes, %v", m[1], code, len(body), err)
		}
		if strings.HasSuffix(m[1], ".js") {
			scripts++
		}
	}
	if scripts == 0 || !strings.Contains(page, "moment-timezone-with-data") {
		t.Errorf("the graph page names %d scripts, moment-timezone's among them: %v; want it to load them\n%s", scripts, strings.Contains(page, "moment-timezone-with-data"), page)
	}
}
