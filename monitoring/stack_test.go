package monitoring

import (
	"bytes"
	"encoding/json"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/raydeploy/sdk/service"
	"go.yaml.in/yaml/v3"
)

var threeNodes = []Target{
	{Name: "head", Address: "10.0.0.1", Head: true},
	{Name: "w1", Address: "10.0.0.2"},
	{Name: "w2", Address: "10.0.0.3"},
}

func services(t *testing.T, s Stack) map[string]service.Spec {
	t.Helper()
	out := map[string]service.Spec{}
	for _, sp := range s.Services("prod", threeNodes) {
		if err := sp.Validate(); err != nil {
			t.Errorf("spec %s invalid: %v", sp.Name, err)
		}
		out[sp.Name] = sp
	}
	return out
}

func mountTargets(sp service.Spec) map[string]service.Mount {
	m := map[string]service.Mount{}
	for _, x := range sp.Mounts {
		m[x.Target] = x
	}
	return m
}

func TestServicesPlacementAndHealth(t *testing.T) {
	specs := services(t, Stack{})
	want := map[string]struct {
		placement service.Placement
		image     string
		health    string
	}{
		ServiceNodeExporter: {service.OnAll, DefaultNodeExporterImage, "http://127.0.0.1:9100/metrics"},
		ServiceCAdvisor:     {service.OnAll, DefaultCAdvisorImage, "http://127.0.0.1:8081/healthz"},
		ServicePrometheus:   {service.OnHead, DefaultPrometheusImage, "http://127.0.0.1:9090/-/ready"},
		ServiceGrafana:      {service.OnHead, DefaultGrafanaImage, "http://127.0.0.1:3000/api/health"},
	}
	if len(specs) != len(want) {
		t.Fatalf("services %v, want %d", slices.Sorted(func(y func(string) bool) {
			for k := range specs {
				y(k)
			}
		}), len(want))
	}
	for name, w := range want {
		sp := specs[name]
		if !cmp.Equal(sp.Placement, w.placement) || sp.Image != w.image || sp.Health == nil || sp.Health.HTTP != w.health {
			t.Errorf("%s: placement %+v image %s health %+v; want %+v", name, sp.Placement, sp.Image, sp.Health, w)
		}
		if sp.NetworkMode != "host" {
			t.Errorf("%s: network %q, want host", name, sp.NetworkMode)
		}
		if strings.HasSuffix(sp.Image, ":latest") || !strings.Contains(sp.Image, ":") {
			t.Errorf("%s: image %q is not pinned", name, sp.Image)
		}
	}
	// Ports follow the stack.
	sp := services(t, Stack{GrafanaPort: 3300, CAdvisorPort: 8181})
	if sp[ServiceGrafana].Env["GF_SERVER_HTTP_PORT"] != "3300" || sp[ServiceGrafana].Health.HTTP != "http://127.0.0.1:3300/api/health" {
		t.Errorf("grafana port not applied: %+v %+v", sp[ServiceGrafana].Env, sp[ServiceGrafana].Health)
	}
	if !slices.Contains(sp[ServiceCAdvisor].Command, "--port=8181") {
		t.Errorf("cadvisor port not applied: %v", sp[ServiceCAdvisor].Command)
	}
}

func TestNodeExporterSpec(t *testing.T) {
	ne := services(t, Stack{})[ServiceNodeExporter]
	if ne.PIDMode != "host" {
		t.Errorf("pid mode %q, want host", ne.PIDMode)
	}
	m := mountTargets(ne)
	for target, source := range map[string]string{"/host/root": "/", "/host/proc": "/proc", "/host/sys": "/sys"} {
		if x := m[target]; x.Source != source || !x.ReadOnly || x.Type != "bind" {
			t.Errorf("mount %s = %+v, want read-only bind of %s", target, x, source)
		}
	}
	for _, f := range []string{"--path.rootfs=/host/root", "--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--web.listen-address=:9100"} {
		if !slices.Contains(ne.Command, f) {
			t.Errorf("command %v lacks %s", ne.Command, f)
		}
	}
}

func TestCAdvisorSpec(t *testing.T) {
	ca := services(t, Stack{})[ServiceCAdvisor]
	if !ca.Privileged {
		t.Error("cadvisor not privileged")
	}
	m := mountTargets(ca)
	for target, source := range map[string]string{"/rootfs": "/", "/var/run": "/var/run", "/sys": "/sys", "/var/lib/docker": "/var/lib/docker", "/dev/disk": "/dev/disk"} {
		if x := m[target]; x.Source != source || !x.ReadOnly {
			t.Errorf("mount %s = %+v, want read-only bind of %s", target, x, source)
		}
	}
	if !slices.Contains(ca.Command, "--port=8081") {
		t.Errorf("command %v lacks --port=8081", ca.Command)
	}
}

func TestPrometheusAndGrafanaSpecs(t *testing.T) {
	specs := services(t, Stack{Retention: 30 * 24 * time.Hour})
	pr := specs[ServicePrometheus]
	for _, f := range []string{"--web.enable-lifecycle", "--storage.tsdb.retention.time=30d", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"} {
		if !slices.Contains(pr.Command, f) {
			t.Errorf("prometheus command %v lacks %s", pr.Command, f)
		}
	}
	pm := mountTargets(pr)
	if x := pm["/etc/prometheus"]; x.Source != "/var/lib/raydeploy/prod/prometheus/config" || !x.ReadOnly {
		t.Errorf("prometheus config mount %+v", x)
	}
	if x := pm["/prometheus"]; x.Source != "/var/lib/raydeploy/prod/prometheus/data" || x.ReadOnly {
		t.Errorf("prometheus data mount %+v (must be writable, persistent)", x)
	}
	if x := pm["/tmp/ray"]; x.Source != "/tmp/ray" || !x.ReadOnly {
		t.Errorf("ray temp dir mount %+v", x)
	}

	gr := specs[ServiceGrafana]
	gm := mountTargets(gr)
	if x := gm["/etc/grafana/provisioning"]; x.Source != "/var/lib/raydeploy/prod/grafana/provisioning" {
		t.Errorf("provisioning mount %+v", x)
	}
	if x := gm["/var/lib/grafana"]; x.Source != "/var/lib/raydeploy/prod/grafana/data" || x.ReadOnly {
		t.Errorf("grafana data mount %+v", x)
	}
	pwFile := gr.Env["GF_SECURITY_ADMIN_PASSWORD__FILE"]
	secretMount, ok := gm[path.Dir(pwFile)]
	if pwFile == "" || !ok || !secretMount.ReadOnly {
		t.Errorf("password file %q is not in a read-only mount (%+v)", pwFile, gr.Mounts)
	}
	if _, ok := gr.Env["GF_SECURITY_ADMIN_PASSWORD"]; ok {
		t.Error("admin password in the environment")
	}
	if gr.Env["GF_AUTH_ANONYMOUS_ENABLED"] != "false" {
		t.Errorf("anonymous access: %q", gr.Env["GF_AUTH_ANONYMOUS_ENABLED"])
	}
	// Every head file lands in a mounted directory.
	files, err := Stack{}.HeadFiles("prod", threeNodes, "correct-horse-battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		mounted := false
		for _, sp := range []service.Spec{pr, gr} {
			for _, m := range sp.Mounts {
				mounted = mounted || strings.HasPrefix(f.Path, m.Source+"/")
			}
		}
		if !mounted {
			t.Errorf("head file %s is in no mounted directory", f.Path)
		}
	}
}

func TestDataDirAndDirs(t *testing.T) {
	s := Stack{DataDir: "/srv/mon/"}
	pr := services(t, s)[ServicePrometheus]
	if x := mountTargets(pr)["/prometheus"]; x.Source != "/srv/mon/prometheus/data" {
		t.Errorf("data dir not applied: %+v", x)
	}
	dirs := s.Dirs("prod")
	owners := map[string]int{}
	for i, d := range dirs {
		owners[d.Path] = d.UID
		if i > 0 && !slices.ContainsFunc(dirs[:i], func(p Dir) bool { return p.Path == path.Dir(d.Path) }) {
			t.Errorf("dir %s listed before its parent", d.Path)
		}
	}
	if owners["/srv/mon/prometheus/data"] != PrometheusUID || owners["/srv/mon/grafana/data"] != GrafanaUID {
		t.Errorf("data dirs not owned by the containers' users: %v", owners)
	}
}

func TestValidate(t *testing.T) {
	if err := (Stack{}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	err := Stack{GrafanaPort: 9090, ScrapeInterval: time.Millisecond, DataDir: "relative", GrafanaPasswordEnv: "1BAD", RayMetricsPort: 70000}.Validate()
	if err == nil {
		t.Fatal("bad stack accepted")
	}
	for _, field := range []string{"monitoring.grafana_port", "monitoring.scrape_interval", "monitoring.data_dir", "monitoring.grafana_password_env", "monitoring.ray_metrics_port"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	terr := ValidateTargets([]Target{{Name: "a", Address: "10.0.0.1:22", Head: true}, {Name: "a", Address: ""}, {Name: "b c", Address: "x", Head: true}})
	for _, want := range []string{"targets[0].address", "targets[1].name", "targets[1].address", "targets[2].name", "2 head nodes"} {
		if terr == nil || !strings.Contains(terr.Error(), want) {
			t.Errorf("targets error does not mention %s:\n%v", want, terr)
		}
	}
	if err := ValidateTargets(threeNodes); err != nil {
		t.Errorf("good targets refused: %v", err)
	}
}

func TestPrometheusConfig(t *testing.T) {
	s := Stack{}
	cfg, err := s.PrometheusConfig("prod", threeNodes)
	if err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(threeNodes)
	slices.Reverse(reversed)
	again, err := s.PrometheusConfig("prod", reversed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg, again) || ConfigDigest(cfg) != ConfigDigest(again) {
		t.Error("config depends on the order of targets")
	}
	more := append(slices.Clone(threeNodes), Target{Name: "w3", Address: "10.0.0.4"})
	grown, _ := s.PrometheusConfig("prod", more)
	if ConfigDigest(grown) == ConfigDigest(cfg) {
		t.Error("adding a node does not change the digest")
	}

	var parsed struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
			FileSDConfigs []struct {
				Files []string `yaml:"files"`
			} `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.Global.ScrapeInterval != "10s" {
		t.Errorf("scrape interval %q", parsed.Global.ScrapeInterval)
	}
	got := map[string][]string{}
	for _, sc := range parsed.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				got[sc.JobName] = append(got[sc.JobName], st.Labels["node"]+"="+tg+"/"+st.Labels["role"])
			}
		}
		for _, f := range sc.FileSDConfigs {
			got[sc.JobName] = append(got[sc.JobName], f.Files...)
		}
	}
	want := map[string][]string{
		JobPrometheus:   {"head=localhost:9090/head"},
		JobNodeExporter: {"head=10.0.0.1:9100/head", "w1=10.0.0.2:9100/worker", "w2=10.0.0.3:9100/worker"},
		JobCAdvisor:     {"head=10.0.0.1:8081/head", "w1=10.0.0.2:8081/worker", "w2=10.0.0.3:8081/worker"},
		JobRay:          {"head=10.0.0.1:8080/head", "w1=10.0.0.2:8080/worker", "w2=10.0.0.3:8080/worker"},
		JobRayDiscovery: {"/tmp/ray/prom_metrics_service_discovery.json"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("scrape targets (-want +got):\n%s", d)
	}
	if _, err := s.PrometheusConfig("prod", []Target{{Name: "x", Address: "1.2.3.4"}}); err == nil {
		t.Error("config without a head accepted")
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "10s", 15 * 24 * time.Hour: "15d", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1s500ms",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestHeadFilesLogNoSecret(t *testing.T) {
	files, err := Stack{}.HeadFiles("prod", threeNodes, "correct-horse-battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := 0
	for _, f := range files {
		b, _ := json.Marshal(f.LogValue().Resolve().String())
		if strings.Contains(string(b), "correct-horse") {
			t.Errorf("LogValue of %s shows the content", f.Path)
		}
		if f.Secret {
			secrets++
			if string(f.Data) != "correct-horse-battery" || f.Mode&0o077 != 0 || f.UID != GrafanaUID {
				t.Errorf("password file %s: mode %o uid %d", f.Path, f.Mode, f.UID)
			}
		} else if bytes.Contains(f.Data, []byte("correct-horse")) {
			t.Errorf("%s contains the password", f.Path)
		}
	}
	if secrets != 1 {
		t.Errorf("%d secret files, want 1", secrets)
	}
	if _, err := (Stack{}).HeadFiles("prod", threeNodes, "admin123", nil); err == nil {
		t.Error("a short password (the seed's admin123) accepted")
	}
}
