// Command monstandin stands in for the monitoring programs that cannot be had
// on the test machines (no registry): Grafana and cAdvisor. It answers in the
// shapes of the real programs for what the deployer and the tests use.
//
// Grafana (-mode=grafana): configured like the upstream image, through the
// environment (GF_SERVER_HTTP_PORT, GF_PATHS_PROVISIONING, GF_PATHS_DATA,
// GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD__FILE). It serves
// GET /api/health like Grafana 12.1.1, GET /api/user with basic auth checked
// against the admin password file (so a test can prove the password arrived
// without anyone printing it), and GET /api/standin/provisioning: the files of
// the provisioning dir, by relative path, as read at the time of the request.
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
	mux.HandleFunc("GET /api/user", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		want, err := os.ReadFile(g.passwordFile)
		if !ok || err != nil || user != g.user ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(strings.TrimSpace(string(want)))) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "login": g.user, "isGrafanaAdmin": true})
	})
	mux.HandleFunc("GET /api/standin/provisioning", func(w http.ResponseWriter, r *http.Request) {
		files := map[string]string{}
		err := filepath.WalkDir(g.provisioning, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(g.provisioning, p)
			files[filepath.ToSlash(rel)] = string(b)
			return nil
		})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, files)
	})
	return mux
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
