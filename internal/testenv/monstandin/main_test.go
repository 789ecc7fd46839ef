package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/monitoring"
)

// TestGrafanaAPI provisions the monitoring stack's real Grafana files and
// checks the API answers the monitoring integration test relies on, with
// and without the admin password.
func TestGrafanaAPI(t *testing.T) {
	files, err := (monitoring.Stack{}).GrafanaFiles([]monitoring.Target{{Name: "node0", Address: "10.0.0.1", Head: true}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prov := filepath.Join(dir, "provisioning")
	for rel, b := range files {
		// The provider points at the container's mount; point it here.
		b = []byte(strings.ReplaceAll(string(b), "/etc/grafana/provisioning", prov))
		p := filepath.Join(prov, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GF_PATHS_PROVISIONING", prov)
	t.Setenv("GF_PATHS_DATA", dir)
	t.Setenv("GF_SECURITY_ADMIN_PASSWORD__FILE", pw)
	g, err := newGrafana()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.handler())
	defer srv.Close()
	get := func(path, pass string, v any) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		if pass != "" {
			req.SetBasicAuth("admin", pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	if code := get("/api/search", "", nil); code != 401 {
		t.Errorf("search without the password: %d, want 401", code)
	}
	var ds struct{ UID, Type, URL string }
	if code := get("/api/datasources/uid/"+monitoring.DatasourceUID, "s3cret", &ds); code != 200 || ds.Type != "prometheus" || ds.URL != "http://10.0.0.1:9090" {
		t.Errorf("datasource: %d %+v", code, ds)
	}
	if code := get("/api/datasources/uid/nope", "s3cret", nil); code != 404 {
		t.Errorf("unknown datasource: %d, want 404", code)
	}
	var boards []struct{ UID string }
	get("/api/search?type=dash-db", "s3cret", &boards)
	uids := map[string]bool{}
	for _, b := range boards {
		uids[b.UID] = true
	}
	for _, u := range []string{monitoring.DashboardNodesUID, monitoring.DashboardContainersUID, monitoring.DashboardRayUID} {
		if !uids[u] {
			t.Errorf("search lacks %s: %+v", u, boards)
		}
	}
	var board struct {
		Dashboard struct{ UID string }       `json:"dashboard"`
		Meta      struct{ Provisioned bool } `json:"meta"`
	}
	if code := get("/api/dashboards/uid/"+monitoring.DashboardNodesUID, "s3cret", &board); code != 200 || board.Dashboard.UID != monitoring.DashboardNodesUID || !board.Meta.Provisioned {
		t.Errorf("dashboard: %d %+v", code, board)
	}
}
