package raydeploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRayConfigDefaults(t *testing.T) {
	var r RayConfig
	r.TokenAuth.Enabled = true
	r.ApplyDefaults()
	want := RayConfig{
		Version: "2.58.0", Image: "rayproject/ray:2.58.0",
		Ports: RayPorts{GCS: 6379, Dashboard: 8265, Client: 10001, Metrics: 8080,
			MinWorkerPort: 10002, MaxWorkerPort: 19999, DashboardAgent: 52365, ServeHTTP: 8000},
		TokenAuth: TokenAuth{Enabled: true, TokenEnv: "RAY_AUTH_TOKEN"},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("ApplyDefaults (-want +got):\n%s", diff)
	}
	r = RayConfig{Version: "2.57.0", Ports: RayPorts{Dashboard: 9265}}
	r.ApplyDefaults()
	if r.Image != "rayproject/ray:2.57.0" || r.Ports.Dashboard != 9265 || r.Ports.GCS != 6379 {
		t.Errorf("ApplyDefaults kept/filled wrongly: %+v", r)
	}
}

func TestRayConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *RayConfig)
		want   []string
	}{
		{"dashboard port range", func(r *RayConfig) { r.Ports.Dashboard = 70000 }, []string{"ray.ports.dashboard: 70000 out of range 1-65535"}},
		{"collision with default", func(r *RayConfig) { r.Ports.Metrics = 8265 }, []string{"ray.ports.metrics: 8265 collides with ray.ports.dashboard"}},
		{"inside worker range", func(r *RayConfig) { r.Ports.ServeHTTP = 12000 }, []string{"ray.ports.serve_http: 12000 inside the worker port range 10002-19999"}},
		{"min above max", func(r *RayConfig) { r.Ports.MinWorkerPort = 20000 }, []string{"ray.ports.min_worker_port: 20000 greater than ray.ports.max_worker_port 19999"}},
		{"bad version", func(r *RayConfig) { r.Version = "latest" }, []string{`ray.version: "latest" is not a release version like 2.58.0`}},
		{"bad image", func(r *RayConfig) { r.Image = "ray project" }, []string{`ray.image: "ray project" is not an image reference`}},
		{"negative shm", func(r *RayConfig) { r.ShmSize = -1 }, []string{"ray.shm_size: -1 must not be negative"}},
		{"token in env", func(r *RayConfig) { r.Env = map[string]string{"RAY_AUTH_TOKEN": "t"} }, []string{"ray.env.RAY_AUTH_TOKEN: secrets do not belong in the config: set ray.token_auth.enabled and name the variable holding the token in ray.token_auth.token_env"}},
		{"bad env name", func(r *RayConfig) { r.Env = map[string]string{"A-B": "t"} }, []string{`ray.env: "A-B" is not an environment variable name`}},
		{"token env without enabled", func(r *RayConfig) { r.TokenAuth.TokenEnv = "TOK" }, []string{"ray.token_auth.token_env: set, but ray.token_auth.enabled is false"}},
		{"token auth too old", func(r *RayConfig) {
			r.Version = "2.51.2"
			r.TokenAuth.Enabled = true
		}, []string{"ray.token_auth.enabled: needs Ray >= 2.52.0, ray.version is 2.51.2"}},
		{"managed start arg", func(r *RayConfig) { r.ExtraStartArgs = []string{"--disable-usage-stats", "--port=1234"} }, []string{"ray.extra_start_args[1]: --port is set by raydeploy from the cluster config"}},
		{"resources", func(r *RayConfig) { r.Resources.CPUFraction = 0 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCluster()
			tt.mutate(&c.Ray)
			if diff := cmp.Diff(tt.want, problemStrings(t, c.Validate())); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutoShmSize(t *testing.T) {
	if got, want := AutoShmSize(100<<30), ByteSize(float64(100<<30)*0.33); got != want {
		t.Errorf("AutoShmSize(100GiB) = %d, want %d", got, want)
	}
	if got := AutoShmSize(2 << 40); got != MaxShmSize {
		t.Errorf("AutoShmSize(2TiB) = %d, want the 200 GB cap", got)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"2.58.0", "2.52.0", 1}, {"2.9.0", "2.10.0", -1}, {"2.52.0", "2.52.0", 0}, {"2.52.0rc1", "2.52.0", 0}} {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
