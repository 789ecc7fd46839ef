package monitoring

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestGrafanaDatasourceAndProvider(t *testing.T) {
	files, err := Stack{PrometheusPort: 9999}.GrafanaFiles(threeNodes)
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(files[GrafanaDatasourceFile], &ds); err != nil {
		t.Fatal(err)
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %+v", ds)
	}
	d := ds.Datasources[0]
	if d.UID != DatasourceUID || d.Type != "prometheus" || d.URL != "http://10.0.0.1:9999" || !d.IsDefault {
		t.Errorf("datasource %+v; want uid %s, prometheus at the head's port", d, DatasourceUID)
	}
	var prov struct {
		Providers []struct {
			Type    string
			Options map[string]any
		}
	}
	if err := yaml.Unmarshal(files[GrafanaProviderFile], &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options["path"] != "/etc/grafana/provisioning/dashboards" {
		t.Errorf("provider %+v", prov)
	}
	again, _ := Stack{PrometheusPort: 9999}.GrafanaFiles(threeNodes)
	for k, v := range files {
		if string(again[k]) != string(v) {
			t.Errorf("%s differs between two calls", k)
		}
	}
}

type dashJSON struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []jsonPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Query      string         `json:"query"`
			Datasource *datasourceRef `json:"datasource"`
			Current    map[string]any `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

func TestDashboardsStructure(t *testing.T) {
	files, err := Stack{}.GrafanaFiles(threeNodes)
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	titles := map[string]bool{}
	n := 0
	for name, data := range files {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		n++
		if !strings.HasPrefix(name, GrafanaDashboardDir+"/") {
			t.Errorf("%s outside %s", name, GrafanaDashboardDir)
		}
		var d dashJSON
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: invalid JSON: %v", name, err)
		}
		if d.UID == "" || len(d.UID) > 40 {
			t.Errorf("%s: uid %q", name, d.UID)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", name, other, d.UID)
		}
		uids[d.UID] = name
		titles[d.Title] = true
		if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
			t.Errorf("%s: schemaVersion %d", name, d.SchemaVersion)
		}
		vars := map[string]int{}
		for i, v := range d.Templating.List {
			vars[v.Name] = i
		}
		dsI, ok := vars["datasource"]
		if !ok {
			t.Errorf("%s: no datasource variable", name)
		} else if v := d.Templating.List[dsI]; v.Type != "datasource" || v.Query != "prometheus" || v.Current["value"] != DatasourceUID {
			t.Errorf("%s: datasource variable %+v", name, v)
		}
		nodeI, ok := vars["node"]
		if !ok {
			t.Errorf("%s: no node variable", name)
		} else if v := d.Templating.List[nodeI]; v.Type != "query" || !strings.HasPrefix(v.Query, "label_values(") || !strings.HasSuffix(v.Query, ", node)") || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("%s: node variable %+v", name, v)
		}
		ids := map[int]bool{}
		queries := 0
		for _, p := range flattenPanels(d.Panels) {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", name, p.ID)
			}
			ids[p.ID] = true
			if len(p.GridPos) == 0 {
				t.Errorf("%s: panel %q has no gridPos", name, p.Title)
			}
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				t.Errorf("%s: panel %q datasource %+v, want ${datasource}", name, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, q := range p.Targets {
				queries++
				if q.Datasource == nil || q.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q query %s datasource %+v", name, p.Title, q.RefID, q.Datasource)
				}
				if name != GrafanaDashboardDir+"/ray-cluster.json" && !strings.Contains(q.Expr, `node=~"$node"`) {
					t.Errorf("%s: panel %q query ignores the node selector: %s", name, p.Title, q.Expr)
				}
			}
		}
		if queries == 0 {
			t.Errorf("%s: no queries", name)
		}
	}
	if n != 3 {
		t.Errorf("%d dashboards, want nodes, containers and ray", n)
	}
	// What the users asked for: CPU, memory, disk I/O, GPU and network per node.
	nodes := string(files[GrafanaDashboardDir+"/nodes.json"])
	for _, metric := range []string{"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_disk_io_time_seconds_total", "node_filesystem_avail_bytes", "node_network_receive_bytes_total", "node_load1", "DCGM_FI_DEV_GPU_UTIL", "ray_node_gpus_utilization"} {
		if !strings.Contains(nodes, metric) {
			t.Errorf("nodes dashboard does not use %s", metric)
		}
	}
	ray := string(files[GrafanaDashboardDir+"/ray-cluster.json"])
	for _, metric := range []string{"ray_cluster_active_nodes", "ray_tasks", "ray_actors", "ray_resources", "ray_object_store_memory", "ray_node_cpu_utilization", "ray_node_mem_used"} {
		if !strings.Contains(ray, metric) {
			t.Errorf("ray dashboard does not use %s", metric)
		}
	}
}

func TestRayDashboards(t *testing.T) {
	in := map[string][]byte{
		"default_grafana_dashboard.json": []byte(`{"id": 7, "uid": "rayDefaultDashboard", "title": "Default",
			"templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "current": {"text": "Prometheus", "value": "Prometheus"}},
			                        {"name": "SessionName", "type": "query"}]},
			"panels": [{"id": 1, "datasource": "${datasource}", "targets": [{"expr": "ray_tasks"}]}]}`),
		"serve_grafana_dashboard.json": []byte(`{"uid": "rayServeDashboard", "title": "Serve", "panels": []}`),
		"README":                       []byte("not a dashboard"),
	}
	out, err := RayDashboards(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("got %d files, want the two dashboards: %v", len(out), out)
	}
	for _, name := range []string{"default_grafana_dashboard.json", "serve_grafana_dashboard.json"} {
		data, ok := out[GrafanaRayDashboardDir+"/"+name]
		if !ok {
			t.Fatalf("%s not placed under %s", name, GrafanaRayDashboardDir)
		}
		var d struct {
			ID         *int   `json:"id"`
			UID        string `json:"uid"`
			Templating struct {
				List []map[string]any `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		if d.ID != nil {
			t.Errorf("%s keeps its numeric id", name)
		}
		var ds map[string]any
		for _, v := range d.Templating.List {
			if v["name"] == "datasource" {
				ds = v
			}
		}
		cur, _ := ds["current"].(map[string]any)
		if ds == nil || ds["type"] != "datasource" || cur["value"] != DatasourceUID {
			t.Errorf("%s: datasource variable %v, want current %s", name, ds, DatasourceUID)
		}
	}
	if !strings.Contains(string(out[GrafanaRayDashboardDir+"/default_grafana_dashboard.json"]), "SessionName") {
		t.Error("other variables lost")
	}
	if _, err := RayDashboards(map[string][]byte{"bad.json": []byte("{")}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("broken dashboard: err %v, want one naming bad.json", err)
	}
	if _, err := RayDashboards(map[string][]byte{"nouid.json": []byte(`{"title": "x"}`)}); err == nil {
		t.Error("dashboard without uid accepted")
	}
	files, err := Stack{}.HeadFiles("prod", threeNodes, "correct-horse-battery", out)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		found = found || f.Path == "/var/lib/raydeploy/prod/grafana/provisioning/dashboards/ray/serve_grafana_dashboard.json"
	}
	if !found {
		t.Error("HeadFiles does not place Ray's dashboards in the provisioning dir")
	}
	if _, err := (Stack{}).HeadFiles("prod", threeNodes, "correct-horse-battery", map[string][]byte{"../../etc/passwd": nil}); err == nil {
		t.Error("HeadFiles accepted a path outside the ray dashboard dir")
	}
}
