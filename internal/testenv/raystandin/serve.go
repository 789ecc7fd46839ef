package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// serveStore keeps the Serve config deployed through the REST API. The
// stand-in runs no replicas: applications are reported RUNNING with HEALTHY
// deployments, each with the replicas its config asks for, placed on the head.
type serveStore struct {
	mu       sync.Mutex
	config   map[string]any // the whole config as PUT; nil when Serve is not running
	apps     []map[string]any
	deployed map[string]float64 // app name -> last_deployed_time_s
}

func (s *serveStore) routes(mux *http.ServeMux, h *head) {
	mux.HandleFunc("PUT /api/serve/applications/{$}", s.put)
	mux.HandleFunc("GET /api/serve/applications/{$}", func(w http.ResponseWriter, r *http.Request) { s.get(w, h) })
	mux.HandleFunc("DELETE /api/serve/applications/{$}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.config, s.apps, s.deployed = nil, nil, nil
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
}

// validationError formats like pydantic's error in Ray's 400 answer.
func validationError(loc, msg string) string {
	return fmt.Sprintf("1 validation error for ServeDeploySchema\n%s\n  %s (type=value_error)", loc, msg)
}

func (s *serveStore) put(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var cfg map[string]any
	if err := json.Unmarshal(body, &cfg); err != nil {
		http.Error(w, "Expecting value: "+err.Error(), http.StatusBadRequest)
		return
	}
	rawApps, _ := cfg["applications"].([]any)
	if _, ok := cfg["applications"]; ok && rawApps == nil {
		http.Error(w, validationError("applications", "value is not a valid list"), http.StatusBadRequest)
		return
	}
	var apps []map[string]any
	names := map[string]bool{}
	for i, ra := range rawApps {
		app, ok := ra.(map[string]any)
		if !ok {
			http.Error(w, validationError(fmt.Sprintf("applications -> %d", i), "value is not a valid dict"), http.StatusBadRequest)
			return
		}
		if s, _ := app["import_path"].(string); s == "" {
			http.Error(w, validationError(fmt.Sprintf("applications -> %d -> import_path", i), "field required"), http.StatusBadRequest)
			return
		}
		name, _ := app["name"].(string)
		if name == "" {
			name = "default"
			app["name"] = name
		}
		if names[name] {
			http.Error(w, validationError("applications", fmt.Sprintf("Found multiple applications with the name %s. Application names must be unique.", name)), http.StatusBadRequest)
			return
		}
		names[name] = true
		if re, ok := app["runtime_env"].(map[string]any); ok {
			if wd, ok := re["working_dir"].(string); ok && !strings.Contains(wd, "://") {
				http.Error(w, validationError(fmt.Sprintf("applications -> %d -> runtime_env", i),
					fmt.Sprintf("runtime_envs in the Serve config support only remote URIs in working_dir and py_modules. Got error when parsing URI: Invalid working_dir %s", wd)), http.StatusBadRequest)
				return
			}
		}
		deps, _ := app["deployments"].([]any)
		for k, rd := range deps {
			d, _ := rd.(map[string]any)
			if d == nil {
				continue
			}
			nr, hasNR := d["num_replicas"]
			ac, hasAC := d["autoscaling_config"]
			if hasNR && nr != nil && nr != "auto" && hasAC && ac != nil {
				http.Error(w, validationError(fmt.Sprintf("applications -> %d -> deployments -> %d -> __root__", i, k),
					"Manually setting num_replicas is not allowed when autoscaling_config is provided."), http.StatusBadRequest)
				return
			}
		}
		apps = append(apps, app)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := float64(time.Now().UnixMilli()) / 1000
	deployed := map[string]float64{}
	for _, a := range apps {
		deployed[a["name"].(string)] = now
	}
	s.config, s.apps, s.deployed = cfg, apps, deployed
	w.WriteHeader(http.StatusOK)
}

// replicas returns how many replicas a deployment config asks for.
func replicas(d map[string]any) int {
	if n, ok := d["num_replicas"].(float64); ok {
		return int(n)
	}
	if ac, ok := d["autoscaling_config"].(map[string]any); ok {
		for _, k := range []string{"initial_replicas", "min_replicas"} {
			if n, ok := ac[k].(float64); ok && n > 0 {
				return int(n)
			}
		}
	}
	return 1
}

func (s *serveStore) get(w http.ResponseWriter, h *head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{
		"controller_info": map[string]any{"node_id": nil, "node_ip": nil},
		"proxy_location":  nil, "http_options": nil, "grpc_options": nil,
		"proxies": map[string]any{}, "deploy_mode": "MULTI_APP", "applications": map[string]any{},
	}
	if s.config == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	out["controller_info"] = map[string]any{"node_id": h.rec.NodeID, "node_ip": h.rec.NodeIP, "actor_name": "SERVE_CONTROLLER_ACTOR"}
	loc, _ := s.config["proxy_location"].(string)
	if loc == "" {
		loc = "EveryNode"
	}
	out["proxy_location"] = loc
	httpOpts := map[string]any{"host": "0.0.0.0", "port": 8000, "root_path": "", "request_timeout_s": nil, "keep_alive_timeout_s": 5}
	if ho, ok := s.config["http_options"].(map[string]any); ok {
		for k, v := range ho {
			httpOpts[k] = v
		}
	}
	out["http_options"] = httpOpts
	proxies := map[string]any{}
	for _, n := range h.reg.snapshot() {
		if n.State == "ALIVE" && (loc == "EveryNode" || n.IsHead) {
			proxies[n.NodeID] = map[string]any{"node_id": n.NodeID, "node_ip": n.NodeIP, "status": "HEALTHY"}
		}
	}
	out["proxies"] = proxies
	apps := map[string]any{}
	for _, a := range s.apps {
		name := a["name"].(string)
		route, ok := a["route_prefix"]
		if !ok {
			route = "/"
		}
		deps := map[string]any{}
		rawDeps, _ := a["deployments"].([]any)
		for _, rd := range rawDeps {
			d, _ := rd.(map[string]any)
			dn, _ := d["name"].(string)
			if dn == "" {
				continue
			}
			n := replicas(d)
			reps := make([]map[string]any, 0, n)
			for i := range n {
				id := fmt.Sprintf("%s#%s#r%d", name, dn, i)
				reps = append(reps, map[string]any{
					"replica_id": id, "state": "RUNNING", "node_id": h.rec.NodeID, "node_ip": h.rec.NodeIP,
					"actor_name": "SERVE_REPLICA::" + id, "pid": 0, "start_time_s": s.deployed[name],
				})
			}
			deps[dn] = map[string]any{
				"name": dn, "status": "HEALTHY", "status_trigger": "CONFIG_UPDATE_COMPLETED", "message": "",
				"deployment_config": d, "target_num_replicas": n, "replicas": reps,
			}
		}
		apps[name] = map[string]any{
			"name": name, "route_prefix": route, "docs_path": nil, "status": "RUNNING", "message": "",
			"last_deployed_time_s": s.deployed[name], "deployed_app_config": a, "source": "declarative",
			"deployments": deps,
		}
	}
	out["applications"] = apps
	writeJSON(w, http.StatusOK, out)
}
