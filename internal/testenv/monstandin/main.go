// Command monstandin stands in for the monitoring programs that cannot be had
// on the test machines (no registry): Grafana and cAdvisor. It answers in the
// shapes of the real programs for what the deployer and the tests use.
//
// Grafana (-mode=grafana): configured like the upstream image, through the
// environment (GF_SERVER_HTTP_PORT, GF_PATHS_PROVISIONING, GF_PATHS_DATA,
// GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD__FILE). It serves
// GET /api/health like Grafana 12.1.1 and, with basic auth checked against the
// admin password file (401 otherwise), Grafana's API for what provisioning
// created: GET /api/user, /api/datasources/uid/{uid}, /api/search and
// /api/dashboards/uid/{uid}, read from the provisioning files (datasources/
// and the file providers of dashboards/) at the time of the request. Tests
// use only endpoints the real Grafana has, so they pass against it too.
// It writes grafana.db into the data dir once, like Grafana creating its
// database, so tests can see the data dir persist.
//
// cAdvisor (-mode=cadvisor): takes the upstream binary's flags (--port=8081
// and the others the monitoring spec passes) and serves GET /healthz ("ok")
// and GET /metrics with a few of cAdvisor's metric names.
//
// Test use only; never used by library code.
package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// grafanaVersion is the release the stand-in claims (monitoring.DefaultGrafanaImage's).
const grafanaVersion = "12.1.1"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		log.Error("monstandin", "err", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	flags := flag.NewFlagSet("monstandin", flag.ContinueOnError)
	mode := flags.String("mode", "", "grafana or cadvisor")
	port := flags.Int("port", 0, "listen port (cAdvisor's --port; Grafana reads GF_SERVER_HTTP_PORT)")
	// cAdvisor's flags as the monitoring spec passes them; accepted, not used.
	flags.Bool("docker_only", false, "cAdvisor: only Docker containers")
	flags.Duration("housekeeping_interval", time.Second, "cAdvisor: housekeeping interval")
	flags.Bool("store_container_labels", true, "cAdvisor: store all labels")
	flags.String("whitelisted_container_labels", "", "cAdvisor: labels to keep")
	flags.Bool("logtostderr", true, "cAdvisor: log to stderr")
	if err := flags.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch *mode {
	case "grafana":
		p, err := strconv.Atoi(envOr("GF_SERVER_HTTP_PORT", "3000"))
		if err != nil {
			return fmt.Errorf("GF_SERVER_HTTP_PORT: %w", err)
		}
		*port = p
		g, err := newGrafana()
		if err != nil {
			return err
		}
		h = g.handler()
	case "cadvisor":
		if *port == 0 {
			*port = 8080 // cAdvisor's default
		}
		h = cadvisorHandler()
	default:
		return fmt.Errorf("-mode %q: want grafana or cadvisor", *mode)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		return err
	}
	log.Info("monstandin listening", "mode", *mode, "addr", ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type grafana struct {
	provisioning string
	user         string
	passwordFile string
}

func newGrafana() (*grafana, error) {
	g := &grafana{
		provisioning: envOr("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
		user:         envOr("GF_SECURITY_ADMIN_USER", "admin"),
		passwordFile: os.Getenv("GF_SECURITY_ADMIN_PASSWORD__FILE"),
	}
	// Like Grafana: the admin password file must be readable at start.
	if g.passwordFile != "" {
		if _, err := os.ReadFile(g.passwordFile); err != nil {
			return nil, fmt.Errorf("admin password file: %w", err)
		}
	}
	// Like Grafana creating its database on first start: the data dir must be writable.
	data := envOr("GF_PATHS_DATA", "/var/lib/grafana")
	db := filepath.Join(data, "grafana.db")
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(db, []byte("grafana stand-in database, created "+time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
			return nil, fmt.Errorf("create database: %w", err)
		}
	}
	return g, nil
}

func (g *grafana) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"commit": "standin", "database": "ok", "version": grafanaVersion})
	})
	mux.HandleFunc("GET /api/user", g.authed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "login": g.user, "isGrafanaAdmin": true})
	}))
	mux.HandleFunc("GET /api/datasources/uid/{uid}", g.authed(func(w http.ResponseWriter, r *http.Request) {
		sources, err := g.datasources()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		for i, ds := range sources {
			if ds.UID == r.PathValue("uid") {
				writeJSON(w, http.StatusOK, map[string]any{
					"id": i + 1, "uid": ds.UID, "orgId": max(ds.OrgID, 1), "name": ds.Name, "type": ds.Type,
					"typeLogoUrl": "public/plugins/" + ds.Type + "/img/logo.svg", "access": ds.Access,
					"url": ds.URL, "user": "", "database": "", "basicAuth": false, "withCredentials": false,
					"isDefault": ds.IsDefault, "jsonData": ds.JSONData, "secureJsonFields": map[string]any{},
					"version": 1, "readOnly": true,
				})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Data source not found"})
	}))
	mux.HandleFunc("GET /api/search", g.authed(func(w http.ResponseWriter, r *http.Request) {
		boards, err := g.dashboards()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		out := []map[string]any{}
		if t := r.URL.Query().Get("type"); t != "" && t != "dash-db" {
			writeJSON(w, http.StatusOK, out)
			return
		}
		for i, b := range boards {
			out = append(out, map[string]any{
				"id": i + 1, "uid": b.UID, "orgId": 1, "title": b.Title, "uri": "db/" + b.slug(),
				"url": "/d/" + b.UID + "/" + b.slug(), "slug": "", "type": "dash-db",
				"tags": []string{}, "isStarred": false, "sortMeta": 0, "isDeleted": false,
			})
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("GET /api/dashboards/uid/{uid}", g.authed(func(w http.ResponseWriter, r *http.Request) {
		boards, err := g.dashboards()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		for _, b := range boards {
			if b.UID == r.PathValue("uid") {
				writeJSON(w, http.StatusOK, map[string]any{"dashboard": b.raw, "meta": map[string]any{
					"type": "db", "slug": b.slug(), "url": "/d/" + b.UID + "/" + b.slug(),
					"provisioned": true, "provisionedExternalId": b.file, "canSave": false,
				}})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Dashboard not found"})
	}))
	return mux
}

// authed requires the admin's basic auth, checked against the password
// file, as Grafana does for its API (401 otherwise).
func (g *grafana) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		want, err := os.ReadFile(g.passwordFile)
		if !ok || err != nil || user != g.user ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(strings.TrimSpace(string(want)))) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password"})
			return
		}
		h(w, r)
	}
}

// provisionedDatasource is one entry of a datasources provisioning file.
type provisionedDatasource struct {
	Name      string         `yaml:"name"`
	UID       string         `yaml:"uid"`
	Type      string         `yaml:"type"`
	Access    string         `yaml:"access"`
	OrgID     int            `yaml:"orgId"`
	URL       string         `yaml:"url"`
	IsDefault bool           `yaml:"isDefault"`
	JSONData  map[string]any `yaml:"jsonData"`
}

// yamlFiles lists the .yaml/.yml files of a provisioning subdirectory.
func (g *grafana) yamlFiles(sub string) ([]string, error) {
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(g.provisioning, sub, pat))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// datasources reads provisioning/datasources/*.yaml as Grafana does at start
// (the stand-in rereads them per request).
func (g *grafana) datasources() ([]provisionedDatasource, error) {
	files, err := g.yamlFiles("datasources")
	if err != nil {
		return nil, err
	}
	var out []provisionedDatasource
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Datasources []provisionedDatasource `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, doc.Datasources...)
	}
	return out, nil
}

// provisionedBoard is a dashboard file a file provider points at.
type provisionedBoard struct {
	UID, Title, file string
	raw              map[string]any
}

func (b provisionedBoard) slug() string {
	return strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, b.Title), "-")
}

// dashboards reads the file providers of provisioning/dashboards/*.yaml and
// the dashboard JSON files under their options.path.
func (g *grafana) dashboards() ([]provisionedBoard, error) {
	files, err := g.yamlFiles("dashboards")
	if err != nil {
		return nil, err
	}
	var out []provisionedBoard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, p := range doc.Providers {
			if p.Type != "file" || p.Options.Path == "" {
				continue
			}
			err := filepath.WalkDir(p.Options.Path, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				var raw map[string]any
				if err := json.Unmarshal(data, &raw); err != nil {
					return nil // Grafana logs and skips a broken dashboard file
				}
				uid, _ := raw["uid"].(string)
				title, _ := raw["title"].(string)
				out = append(out, provisionedBoard{UID: uid, Title: title, file: path, raw: raw})
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// cadvisorMetrics are a few of cAdvisor's series (names and labels as the
// real /metrics has them).
const cadvisorMetrics = `# HELP cadvisor_version_info A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.
# TYPE cadvisor_version_info gauge
cadvisor_version_info{cadvisorRevision="standin",cadvisorVersion="v0.52.1",dockerVersion="",kernelVersion="",osVersion=""} 1
# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{cpu="total",id="/",image="",name=""} %[1]g
# HELP container_memory_working_set_bytes Current working set in bytes.
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{id="/",image="",name=""} 1.048576e+08
# HELP container_network_receive_bytes_total Cumulative count of bytes received
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{id="/",image="",interface="eth0",name=""} %[1]g
# HELP container_last_seen Last time a container was seen by the exporter
# TYPE container_last_seen gauge
container_last_seen{id="/",image="",name=""} %[2]d
`

func cadvisorHandler() http.Handler {
	start := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, cadvisorMetrics, time.Since(start).Seconds(), time.Now().Unix())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
