package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// serveStore is the stand-in's Serve: the REST API on the dashboard, a
// controller that imports each application's code and runs its replicas as
// processes on the head (`python3 -m ray.serve._standin_replica`, see
// python/ray/serve), and an HTTP proxy on http_options' port that routes by
// route_prefix to the replicas. Applications go DEPLOYING -> RUNNING when
// every replica has imported the code and serves HTTP, DEPLOY_FAILED with the
// traceback when the import (or the replica) fails.
type serveStore struct {
	h *head

	mu         sync.Mutex
	running    bool // Serve started by a PUT, until DELETE
	httpOpts   map[string]any
	proxyLoc   string
	controller actorInfo
	proxy      *serveProxy
	apps       map[string]*serveApp
}

// actorInfo identifies a Serve actor the way Ray reports it.
type actorInfo struct {
	ActorID, WorkerID, LogPath string
}

func newActorInfo(logPath string) actorInfo {
	return actorInfo{ActorID: randHex(16), WorkerID: randHex(28), LogPath: logPath}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serveApp is one application and its replicas.
type serveApp struct {
	name       string
	cfg        map[string]any // as submitted
	route      any            // route_prefix: string, or nil for none
	status     string
	message    string
	deployedAt float64
	docsPath   any
	deps       map[string]*serveDeployment
	replicas   []*replica
	// previous are the replicas of the version this one replaces: they
	// serve until this one is RUNNING, then drain (Serve's rolling update).
	previous []*replica
	// code is the code's deployment name and options (from the import),
	// kept for updates that change only the deployment's settings.
	code        string
	codeOptions map[string]any
	ctx         context.Context
	cancel      context.CancelFunc
	next        atomic.Uint64 // round robin
}

// serveDeployment is one deployment of an application.
type serveDeployment struct {
	name    string
	status  string
	message string
	trigger string
	config  map[string]any // filled in like Ray's deployment_config
	target  int
}

// replica is one replica process.
type replica struct {
	id, deployment string
	actor          actorInfo
	state          string
	pid            int
	start          float64
	port           int
	cmd            *exec.Cmd
	exited         chan struct{}
	events         chan replicaEvent // the process's stdout lines
	ongoing        atomic.Int64      // requests in flight through the proxy
	graceful       time.Duration     // graceful_shutdown_timeout_s
}

func newServeStore(h *head) *serveStore {
	return &serveStore{h: h, apps: map[string]*serveApp{}}
}

func (s *serveStore) routes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /api/serve/applications/{$}", s.put)
	mux.HandleFunc("GET /api/serve/applications/{$}", s.get)
	mux.HandleFunc("DELETE /api/serve/applications/{$}", func(w http.ResponseWriter, r *http.Request) {
		s.stopAll()
		w.WriteHeader(http.StatusOK)
	})
}

// validationError formats like pydantic's error in Ray's 400 answer.
func validationError(loc, msg string) string {
	return fmt.Sprintf("1 validation error for ServeDeploySchema\n%s\n  %s (type=value_error)", loc, msg)
}

// Keys Ray's schemas accept (python/ray/serve/schema.py; extra keys are forbidden).
var (
	deployKeys = []string{"proxy_location", "http_options", "grpc_options", "logging_config", "applications", "target_capacity"}
	appKeys    = []string{"name", "route_prefix", "import_path", "runtime_env", "host", "port", "args",
		"deployments", "logging_config", "external_scaler_enabled", "autoscaling_policy"}
	depKeys = []string{"name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "user_config",
		"autoscaling_config", "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s",
		"health_check_period_s", "health_check_timeout_s", "ray_actor_options", "placement_group_bundles",
		"placement_group_strategy", "max_replicas_per_node", "logging_config", "request_router_config"}
	autoscalingKeys = []string{"min_replicas", "initial_replicas", "max_replicas", "target_ongoing_requests",
		"metrics_interval_s", "look_back_period_s", "smoothing_factor", "upscale_smoothing_factor",
		"downscale_smoothing_factor", "upscaling_factor", "downscaling_factor", "downscale_delay_s",
		"downscale_to_zero_delay_s", "upscale_delay_s", "aggregation_function", "policy"}
)

func extraKey(m map[string]any, allowed []string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return k
		}
	}
	return ""
}

// checkConfig validates a Serve config like Ray's schema does; it returns the
// applications or the 400 text.
func checkConfig(cfg map[string]any) ([]map[string]any, string) {
	if k := extraKey(cfg, deployKeys); k != "" {
		return nil, validationError(k, "extra fields not permitted")
	}
	rawApps, _ := cfg["applications"].([]any)
	if _, ok := cfg["applications"]; ok && rawApps == nil {
		return nil, validationError("applications", "value is not a valid list")
	}
	var apps []map[string]any
	names, routes := map[string]bool{}, map[string]string{}
	for i, ra := range rawApps {
		loc := fmt.Sprintf("applications -> %d", i)
		app, ok := ra.(map[string]any)
		if !ok {
			return nil, validationError(loc, "value is not a valid dict")
		}
		if k := extraKey(app, appKeys); k != "" {
			return nil, validationError(loc+" -> "+k, "extra fields not permitted")
		}
		if s, _ := app["import_path"].(string); s == "" {
			return nil, validationError(loc+" -> import_path", "field required")
		}
		name, _ := app["name"].(string)
		if name == "" {
			name = "default"
			app["name"] = name
		}
		if names[name] {
			return nil, validationError("applications", fmt.Sprintf("Found multiple applications with the name %s. Application names must be unique.", name))
		}
		names[name] = true
		route, hasRoute := app["route_prefix"]
		if !hasRoute {
			route = "/"
			app["route_prefix"] = route
		}
		if rp, ok := route.(string); ok {
			switch {
			case !strings.HasPrefix(rp, "/"):
				return nil, validationError(loc+" -> route_prefix", fmt.Sprintf("Got \"%s\" for route_prefix. Route prefix must start with \"/\".", rp))
			case len(rp) > 1 && strings.HasSuffix(rp, "/"):
				return nil, validationError(loc+" -> route_prefix", fmt.Sprintf("Got \"%s\" for route_prefix. Route prefix cannot end with \"/\" unless the entire prefix is just \"/\".", rp))
			case strings.ContainsAny(rp, "{}"):
				return nil, validationError(loc+" -> route_prefix", "Route prefix cannot contain wildcards")
			}
			if other, dup := routes[rp]; dup {
				return nil, validationError("applications", fmt.Sprintf("Found duplicate route prefix %s in applications %s and %s. Each application must have a unique route_prefix.", rp, other, name))
			}
			routes[rp] = name
		}
		if re, ok := app["runtime_env"].(map[string]any); ok {
			if wd, ok := re["working_dir"].(string); ok && !strings.Contains(wd, "://") {
				return nil, validationError(loc+" -> runtime_env",
					fmt.Sprintf("runtime_envs in the Serve config support only remote URIs in working_dir and py_modules. Got error when parsing URI: Invalid working_dir %s", wd))
			}
		}
		deps, _ := app["deployments"].([]any)
		for k, rd := range deps {
			d, _ := rd.(map[string]any)
			dloc := fmt.Sprintf("%s -> deployments -> %d", loc, k)
			if d == nil {
				return nil, validationError(dloc, "value is not a valid dict")
			}
			if x := extraKey(d, depKeys); x != "" {
				return nil, validationError(dloc+" -> "+x, "extra fields not permitted")
			}
			if n, _ := d["name"].(string); n == "" {
				return nil, validationError(dloc+" -> name", "field required")
			}
			nr, hasNR := d["num_replicas"]
			ac, hasAC := d["autoscaling_config"]
			if hasNR && nr != nil && nr != "auto" && hasAC && ac != nil {
				return nil, validationError(dloc+" -> __root__", "Manually setting num_replicas is not allowed when autoscaling_config is provided.")
			}
			if acm, ok := ac.(map[string]any); ok {
				if x := extraKey(acm, autoscalingKeys); x != "" {
					return nil, validationError(dloc+" -> autoscaling_config -> "+x, "extra fields not permitted")
				}
				minR, maxR := num(acm["min_replicas"], 1), num(acm["max_replicas"], 1)
				if minR > maxR {
					return nil, validationError(dloc+" -> autoscaling_config -> __root__", "max_replicas must be greater than or equal to min_replicas.")
				}
				if ir, ok := acm["initial_replicas"].(float64); ok && (ir < minR || ir > maxR) {
					return nil, validationError(dloc+" -> autoscaling_config -> __root__", "initial_replicas must be between min_replicas and max_replicas.")
				}
			}
		}
		apps = append(apps, app)
	}
	return apps, ""
}

func num(v any, def float64) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	return def
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
	apps, bad := checkConfig(cfg)
	if bad != "" {
		http.Error(w, bad, http.StatusBadRequest)
		return
	}
	httpOpts := map[string]any{"host": "0.0.0.0", "port": 8000.0, "root_path": "", "request_timeout_s": nil, "keep_alive_timeout_s": 5.0}
	if ho, ok := cfg["http_options"].(map[string]any); ok {
		for k, v := range ho {
			httpOpts[k] = v
		}
	}
	loc, _ := cfg["proxy_location"].(string)
	if loc == "" {
		loc = "EveryNode"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		// The proxy binds http_options.host like Ray's (0.0.0.0: every address).
		port := int(num(httpOpts["port"], 8000))
		host, _ := httpOpts["host"].(string)
		if host == "" {
			host = s.h.rec.NodeIP
		}
		p, err := startProxy(s, host, port)
		if err != nil {
			http.Error(w, fmt.Sprintf("Failed to start the Serve proxy on port %d: %v", port, err), http.StatusInternalServerError)
			return
		}
		s.running, s.proxy, s.httpOpts, s.proxyLoc = true, p, httpOpts, loc
		s.controller = newActorInfo(fmt.Sprintf("/serve/controller_%d.log", os.Getpid()))
	}
	// http_options cannot change while Serve runs; Ray keeps the running
	// ones (and warns), so does the stand-in.
	keep := map[string]bool{}
	now := float64(time.Now().UnixMilli()) / 1000
	for _, cfgApp := range apps {
		name := cfgApp["name"].(string)
		keep[name] = true
		old := s.apps[name]
		if old != nil && reflect.DeepEqual(old.cfg, cfgApp) {
			continue // unchanged: its replicas stay
		}
		if old != nil && old.status == "RUNNING" && settingsOnly(old.cfg, cfgApp) {
			// Like Serve's lightweight update: the replicas stay and only
			// their number changes.
			s.rescale(old, cfgApp)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		a := &serveApp{name: name, cfg: cfgApp, route: cfgApp["route_prefix"], status: "DEPLOYING",
			deployedAt: now, deps: map[string]*serveDeployment{}, ctx: ctx, cancel: cancel}
		if old != nil {
			// The old version serves until the new one runs.
			old.cancel()
			for _, rep := range old.replicas {
				if rep.state == "RUNNING" {
					a.previous = append(a.previous, rep)
				} else {
					go rep.stop() // still starting: it has served nothing
				}
			}
			a.previous = append(a.previous, old.previous...)
		}
		s.apps[name] = a
		go s.deploy(ctx, a)
	}
	for name, a := range s.apps {
		if !keep[name] {
			go drain(s.stopApp(a))
			delete(s.apps, name)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Deployment settings Serve applies to running replicas (a "lightweight"
// update): a change of only these keeps the replicas.
var lightweightKeys = []string{"num_replicas", "autoscaling_config", "max_ongoing_requests", "max_queued_requests",
	"graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s", "health_check_period_s", "health_check_timeout_s"}

// settingsOnly reports whether two configs of an application differ only in
// lightweight deployment settings.
func settingsOnly(old, cfg map[string]any) bool {
	strip := func(app map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range app {
			out[k] = v
		}
		deps, _ := app["deployments"].([]any)
		var kept []any
		for _, rd := range deps {
			d, _ := rd.(map[string]any)
			nd := map[string]any{}
			for k, v := range d {
				if !slices.Contains(lightweightKeys, k) {
					nd[k] = v
				}
			}
			kept = append(kept, nd)
		}
		out["deployments"] = kept
		return out
	}
	return reflect.DeepEqual(strip(old), strip(cfg))
}

// rescale applies a lightweight update to a RUNNING application (s.mu
// held): the deployment config is recomputed, then replicas are started or
// drained until the new target runs (DEPLOYING meanwhile; the running
// replicas keep serving).
func (s *serveStore) rescale(a *serveApp, cfg map[string]any) {
	a.cfg = cfg
	merged := s.mergedOptions(a)
	dcfg, target := fillDeploymentConfig(a.code, merged)
	d := a.deps[a.code]
	d.config, d.target, d.status, d.trigger = dcfg, target, "UPDATING", "CONFIG_UPDATE_STARTED"
	a.status = "DEPLOYING"
	graceful := gracefulTimeout(dcfg)
	var extra []*replica
	for len(a.replicas) > target {
		rep := a.replicas[len(a.replicas)-1]
		a.replicas = a.replicas[:len(a.replicas)-1]
		rep.state = "STOPPING"
		extra = append(extra, rep)
	}
	for _, rep := range a.replicas {
		rep.graceful = graceful
	}
	more := target - len(a.replicas)
	if more <= 0 {
		// Fewer replicas: the rest drain, the app runs on.
		a.status, d.status, d.trigger = "RUNNING", "HEALTHY", "CONFIG_UPDATE_COMPLETED"
		go drain(extra)
		return
	}
	ctx := a.ctx
	go func() {
		var reps []*replica
		for range more {
			rep, _, err := s.startReplica(ctx, a, a.code)
			if err == nil {
				err = rep.waitReady(ctx)
			}
			if err != nil {
				if rep != nil {
					rep.stop()
				}
				s.mu.Lock()
				if ctx.Err() == nil {
					msg := fmt.Sprintf("The deployment failed to start replicas: %s", err)
					a.status, a.message = "UNHEALTHY", msg
					d.status, d.trigger, d.message = "UNHEALTHY", "REPLICA_STARTUP_FAILED", msg
				}
				s.mu.Unlock()
				drain(reps)
				return
			}
			reps = append(reps, rep)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if ctx.Err() != nil {
			go drain(reps)
			return
		}
		for _, rep := range reps {
			rep.state, rep.graceful = "RUNNING", graceful
			a.replicas = append(a.replicas, rep)
			go s.watch(ctx, a, rep)
		}
		a.status, a.message = "RUNNING", ""
		d.status, d.trigger, d.message = "HEALTHY", "CONFIG_UPDATE_COMPLETED", ""
	}()
}

// mergedOptions are the code's deployment options with the config's
// overrides, as deploy computes them.
func (s *serveStore) mergedOptions(a *serveApp) map[string]any {
	merged := map[string]any{}
	for k, v := range a.codeOptions {
		if v != nil {
			merged[k] = v
		}
	}
	var override map[string]any
	deps, _ := a.cfg["deployments"].([]any)
	for _, rd := range deps {
		if d := rd.(map[string]any); d["name"] == a.code {
			override = d
		}
	}
	for k, v := range override {
		merged[k] = v
	}
	if nr, ok := merged["num_replicas"]; ok && nr != nil && nr != "auto" && merged["autoscaling_config"] != nil && override["autoscaling_config"] != nil {
		delete(merged, "num_replicas") // the config's autoscaling replaces the code's count
	}
	return merged
}

func gracefulTimeout(dcfg map[string]any) time.Duration {
	return time.Duration(num(dcfg["graceful_shutdown_timeout_s"], 20) * float64(time.Second))
}

// stopApp takes an application's replicas (those of the version it
// replaces too) out of routing and returns them to drain (s.mu held).
func (s *serveStore) stopApp(a *serveApp) []*replica {
	a.cancel()
	reps := append(a.replicas, a.previous...)
	for _, rep := range reps {
		rep.state = "STOPPING"
	}
	a.replicas, a.previous = nil, nil
	return reps
}

// drain stops replicas the way Serve does: once no request is in flight
// on them (they get no new ones), or after their graceful shutdown timeout.
func drain(reps []*replica) {
	var wg sync.WaitGroup
	for _, rep := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(rep.graceful)
			for rep.ongoing.Load() > 0 && time.Now().Before(deadline) {
				select {
				case <-rep.exited:
					return
				case <-time.After(10 * time.Millisecond): // requests in flight have no event to wait on
				}
			}
			rep.stop()
		}()
	}
	wg.Wait()
}

// stopAll shuts Serve down: replicas (drained), proxy, applications.
func (s *serveStore) stopAll() {
	s.mu.Lock()
	var reps []*replica
	for _, a := range s.apps {
		reps = append(reps, s.stopApp(a)...)
	}
	proxy := s.proxy
	s.apps, s.running, s.proxy, s.httpOpts = map[string]*serveApp{}, false, nil, nil
	s.mu.Unlock()
	drain(reps)
	if proxy != nil {
		proxy.close()
	}
}

func (rep *replica) stop() {
	if rep.cmd == nil || rep.cmd.Process == nil {
		return
	}
	_ = rep.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rep.exited:
	case <-time.After(5 * time.Second):
		_ = rep.cmd.Process.Kill()
		<-rep.exited
	}
}

// replicaEvent is one line a replica process writes on stdout.
type replicaEvent struct {
	Event       string `json:"event"`
	Error       string `json:"error"`
	PID         int    `json:"pid"`
	DocsPath    any    `json:"docs_path"`
	Deployments []struct {
		Name    string         `json:"name"`
		Options map[string]any `json:"options"`
	} `json:"deployments"`
}

// deploy imports the app's code in its first replica, fills in the
// deployment configs, starts the other replicas and waits for all.
func (s *serveStore) deploy(ctx context.Context, a *serveApp) {
	fail := func(msg string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ctx.Err() != nil {
			return // replaced or deleted meanwhile
		}
		a.status, a.message = "DEPLOY_FAILED", msg
		for _, d := range a.deps {
			d.status, d.trigger, d.message = "DEPLOY_FAILED", "REPLICA_STARTUP_FAILED", msg
		}
		for _, rep := range a.replicas {
			rep.stop()
		}
		go drain(a.previous)
		a.replicas, a.previous = nil, nil
	}
	if re, ok := a.cfg["runtime_env"].(map[string]any); ok {
		for _, k := range []string{"working_dir", "py_modules", "pip", "conda", "uv"} {
			if v, ok := re[k]; ok && v != nil {
				fail(fmt.Sprintf("Deploying app '%s' failed with exception:\nRuntimeEnvSetupError: the Ray stand-in cannot set up runtime_env.%s (it has no network and installs nothing); put the code in the image", a.name, k))
				return
			}
		}
	}
	first, ev, err := s.startReplica(ctx, a, "")
	if err != nil {
		fail(fmt.Sprintf("Deploying app '%s' failed with exception:\n%s", a.name, err))
		return
	}
	// The code's deployment, with the config's overrides (by name).
	if len(ev.Deployments) != 1 {
		fail(fmt.Sprintf("Deploying app '%s' failed with exception:\nthe Ray stand-in runs applications of one deployment, got %d", a.name, len(ev.Deployments)))
		return
	}
	code := ev.Deployments[0]
	overrides := map[string]map[string]any{}
	deps, _ := a.cfg["deployments"].([]any)
	for _, rd := range deps {
		d := rd.(map[string]any)
		overrides[d["name"].(string)] = d
	}
	for name := range overrides {
		if name != code.Name {
			fail(fmt.Sprintf("Deploying app '%s' failed with exception:\nValueError: Deployment '%s' does not exist. Available: ['%s']", a.name, name, code.Name))
			return
		}
	}
	a.code, a.codeOptions = code.Name, code.Options // set once, before the app is RUNNING
	dcfg, target := fillDeploymentConfig(code.Name, s.mergedOptions(a))
	graceful := gracefulTimeout(dcfg)
	first.deployment = code.Name
	first.id = fmt.Sprintf("%s#%s#%s", a.name, code.Name, randomSuffix(8))
	first.actor = newActorInfo(fmt.Sprintf("/serve/replica_%s_%s.log", a.name, first.id))

	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		first.stop()
		return
	}
	a.docsPath = ev.DocsPath
	a.deps[code.Name] = &serveDeployment{name: code.Name, status: "UPDATING", trigger: "CONFIG_UPDATE_STARTED", config: dcfg, target: target}
	a.replicas = append(a.replicas, first)
	s.mu.Unlock()

	reps := []*replica{first}
	if target == 0 {
		first.stop()
		reps = nil
		s.mu.Lock()
		a.replicas = nil
		s.mu.Unlock()
	}
	for i := 1; i < target; i++ {
		rep, _, err := s.startReplica(ctx, a, code.Name)
		if err != nil {
			fail(fmt.Sprintf("Deploying app '%s' failed with exception:\n%s", a.name, err))
			return
		}
		s.mu.Lock()
		a.replicas = append(a.replicas, rep)
		s.mu.Unlock()
		reps = append(reps, rep)
	}
	for _, rep := range reps {
		if err := rep.waitReady(ctx); err != nil {
			fail(fmt.Sprintf("Deploying app '%s' failed with exception:\n%s", a.name, err))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	a.status, a.message = "RUNNING", ""
	d := a.deps[code.Name]
	d.status, d.trigger = "HEALTHY", "CONFIG_UPDATE_COMPLETED"
	for _, rep := range reps {
		rep.state, rep.graceful = "RUNNING", graceful
		go s.watch(ctx, a, rep)
	}
	// The version this one replaced stops once its requests are done.
	go drain(a.previous)
	a.previous = nil
}

// watch marks the app UNHEALTHY when a running replica's process dies.
func (s *serveStore) watch(ctx context.Context, a *serveApp, rep *replica) {
	select {
	case <-ctx.Done():
	case <-rep.exited:
		s.mu.Lock()
		defer s.mu.Unlock()
		if ctx.Err() != nil || rep.state == "STOPPING" {
			return // stopped on purpose
		}
		rep.state = "STOPPING"
		msg := fmt.Sprintf("The deployment failed to start replicas: replica %s exited", rep.id)
		a.status, a.message = "UNHEALTHY", msg
		if d := a.deps[rep.deployment]; d != nil {
			d.status, d.trigger, d.message = "UNHEALTHY", "HEALTH_CHECK_FAILED", msg
		}
	}
}

// Ray's defaults for what a deployment does not set (serve/config.py, constants.py).
func fillDeploymentConfig(name string, d map[string]any) (map[string]any, int) {
	out := map[string]any{
		"name": name, "max_ongoing_requests": 5.0, "max_queued_requests": -1.0, "user_config": nil,
		"graceful_shutdown_wait_loop_s": 2.0, "graceful_shutdown_timeout_s": 20.0,
		"health_check_period_s": 10.0, "health_check_timeout_s": 30.0, "is_driver_deployment": false,
	}
	for _, k := range []string{"max_ongoing_requests", "max_queued_requests", "user_config", "graceful_shutdown_wait_loop_s",
		"graceful_shutdown_timeout_s", "health_check_period_s", "health_check_timeout_s"} {
		if v, ok := d[k]; ok && v != nil {
			out[k] = v
		}
	}
	rao := map[string]any{"runtime_env": map[string]any{}, "num_cpus": 1.0}
	if given, ok := d["ray_actor_options"].(map[string]any); ok {
		for k, v := range given {
			rao[k] = v
		}
	}
	out["ray_actor_options"] = rao
	target := 1
	if ac, ok := d["autoscaling_config"].(map[string]any); ok {
		filled := map[string]any{
			"min_replicas": 1.0, "initial_replicas": nil, "max_replicas": 1.0, "target_ongoing_requests": 2.0,
			"metrics_interval_s": 10.0, "look_back_period_s": 30.0, "smoothing_factor": 1.0,
			"upscale_smoothing_factor": nil, "downscale_smoothing_factor": nil, "upscaling_factor": nil,
			"downscaling_factor": nil, "downscale_delay_s": 600.0, "upscale_delay_s": 30.0,
		}
		for k, v := range ac {
			filled[k] = v
		}
		out["autoscaling_config"] = filled
		target = int(num(filled["min_replicas"], 1))
		if ir, ok := filled["initial_replicas"].(float64); ok {
			target = int(ir)
		}
	} else {
		if n, ok := d["num_replicas"].(float64); ok {
			target = int(n)
		}
		out["num_replicas"] = float64(target)
	}
	return out, target
}

// startReplica runs one replica process and waits until it has imported the
// code (or failed). dep is "" for the first replica (name not known yet).
func (s *serveStore) startReplica(ctx context.Context, a *serveApp, dep string) (*replica, replicaEvent, error) {
	port, err := freeLocalPort()
	if err != nil {
		return nil, replicaEvent{}, err
	}
	route, _ := a.route.(string)
	spec, _ := json.Marshal(map[string]any{
		"import_path": a.cfg["import_path"], "args": a.cfg["args"],
		"host": "127.0.0.1", "port": port, "route_prefix": route,
	})
	py := os.Getenv("RAY_STANDIN_PYTHON")
	if py == "" {
		py = "python3"
	}
	logDir := filepath.Join(s.h.sessionDir, "logs", "serve")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, replicaEvent{}, err
	}
	logf, err := os.CreateTemp(logDir, "replica_"+a.name+"_*.log")
	if err != nil {
		return nil, replicaEvent{}, err
	}
	cmd := exec.Command(py, "-m", "ray.serve._standin_replica")
	cmd.Env = append(os.Environ(),
		"RAY_STANDIN_NODE_ID="+s.h.rec.NodeID, "RAY_STANDIN_NODE_IP="+s.h.rec.NodeIP,
		"RAY_ADDRESS="+s.h.gcsAddr, "RAY_SERVE_APP_NAME="+a.name)
	cmd.Dir = s.h.sessionDir
	cmd.Stdin = strings.NewReader(string(spec))
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, replicaEvent{}, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, replicaEvent{}, fmt.Errorf("start replica: %w", err)
	}
	rep := &replica{deployment: dep, state: "STARTING", pid: cmd.Process.Pid, port: port, cmd: cmd,
		exited: make(chan struct{}), start: float64(time.Now().UnixMilli()) / 1000}
	if dep != "" {
		rep.id = fmt.Sprintf("%s#%s#%s", a.name, dep, randomSuffix(8))
		rep.actor = newActorInfo(fmt.Sprintf("/serve/replica_%s_%s.log", a.name, rep.id))
	}
	events := make(chan replicaEvent, 4)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var ev replicaEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(events)
		close(rep.exited)
	}()
	rep.events = events
	select {
	case ev, ok := <-events:
		switch {
		case !ok:
			return nil, replicaEvent{}, fmt.Errorf("replica process exited before importing the application: %s", tail(readFile(logf.Name()), 4000))
		case ev.Event == "error":
			rep.stop()
			return nil, ev, fmt.Errorf("%s", strings.TrimSpace(ev.Error))
		case ev.Event != "imported":
			rep.stop()
			return nil, ev, fmt.Errorf("replica reported %q before importing", ev.Event)
		}
		return rep, ev, nil
	case <-ctx.Done():
		rep.stop()
		return nil, replicaEvent{}, ctx.Err()
	}
}

// waitReady waits for the replica's "ready" line.
func (rep *replica) waitReady(ctx context.Context) error {
	select {
	case ev, ok := <-rep.events:
		if !ok {
			return fmt.Errorf("replica %s exited before serving", rep.id)
		}
		if ev.Event == "error" {
			return fmt.Errorf("%s", strings.TrimSpace(ev.Error))
		}
		if ev.Event != "ready" {
			return fmt.Errorf("replica %s reported %q, want ready", rep.id, ev.Event)
		}
		if ev.PID != 0 {
			rep.pid = ev.PID
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func freeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serveProxy is Serve's HTTP proxy on the head.
type serveProxy struct {
	srv   *http.Server
	actor actorInfo
}

func startProxy(s *serveStore, host string, port int) (*serveProxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	p := &serveProxy{actor: newActorInfo("/serve/http_proxy_" + s.h.rec.NodeIP + ".log")}
	p.srv = &http.Server{Handler: http.HandlerFunc(s.proxyHTTP), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *serveProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

// proxyHTTP routes a request to a replica of the app with the longest
// matching route_prefix (prefix stripped, as Serve's proxy does).
func (s *serveStore) proxyHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/-/healthz":
		_, _ = io.WriteString(w, "success")
		return
	case "/-/routes":
		s.mu.Lock()
		routes := map[string]string{}
		for _, a := range s.apps {
			if rp, ok := a.route.(string); ok && a.status == "RUNNING" {
				routes[rp] = a.name
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, routes)
		return
	}
	s.mu.Lock()
	var best *serveApp
	bestLen := -1
	for _, a := range s.apps {
		rp, ok := a.route.(string)
		if !ok || (a.status != "RUNNING" && a.status != "UNHEALTHY" && !(a.status == "DEPLOYING" && len(a.live()) > 0)) {
			continue
		}
		if (r.URL.Path == rp || strings.HasPrefix(r.URL.Path, strings.TrimSuffix(rp, "/")+"/")) && len(rp) > bestLen {
			best, bestLen = a, len(rp)
		}
	}
	var rep *replica
	if best != nil {
		if live := best.live(); len(live) > 0 {
			// Least ongoing requests, round robin among equals.
			start := int(best.next.Add(1))
			for i := range live {
				c := live[(start+i)%len(live)]
				if rep == nil || c.ongoing.Load() < rep.ongoing.Load() {
					rep = c
				}
			}
			// Counted before the lock is released, so that a drain
			// that starts now waits for this request.
			rep.ongoing.Add(1)
		}
	}
	s.mu.Unlock()
	if best == nil {
		http.Error(w, fmt.Sprintf("Path '%s' not found. Ping http://.../-/routes for available routes.", r.URL.Path), http.StatusNotFound)
		return
	}
	if rep == nil {
		http.Error(w, "No replicas of application "+best.name+" are running.", http.StatusServiceUnavailable)
		return
	}
	defer rep.ongoing.Add(-1)
	prefix := strings.TrimSuffix(best.route.(string), "/")
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(rep.port)}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			p := strings.TrimPrefix(pr.In.URL.Path, prefix)
			if p == "" {
				p = "/"
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath = p, ""
			pr.SetXForwarded()
		},
		FlushInterval: -1, // stream chunked answers as they come
	}
	// Go's server closes a request body when the answer starts (HTTP/1),
	// and the upstream request may still be reading it then: its final
	// read fails, the transport closes the upstream connection and the
	// streamed answer breaks off ("use of closed network connection").
	// Full duplex leaves the body open until the handler returns.
	_ = http.NewResponseController(w).EnableFullDuplex()
	rp.ServeHTTP(w, r)
}

// live are the replicas requests go to (s.mu held): the running ones of this
// version, else those of the version it replaces.
func (a *serveApp) live() []*replica {
	var live []*replica
	for _, set := range [][]*replica{a.replicas, a.previous} {
		for _, c := range set {
			if c.state == "RUNNING" {
				live = append(live, c)
			}
		}
		if len(live) > 0 {
			break
		}
	}
	return live
}

func (s *serveStore) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{
		"controller_info": map[string]any{}, "proxy_location": nil, "http_options": nil, "grpc_options": nil,
		"proxies": map[string]any{}, "deploy_mode": "MULTI_APP", "applications": map[string]any{}, "target_capacity": nil,
	}
	if !s.running {
		writeJSON(w, http.StatusOK, out)
		return
	}
	h := s.h
	out["controller_info"] = map[string]any{
		"node_id": h.rec.NodeID, "node_ip": h.rec.NodeIP, "actor_id": s.controller.ActorID,
		"actor_name": "SERVE_CONTROLLER_ACTOR", "worker_id": s.controller.WorkerID, "log_file_path": s.controller.LogPath,
	}
	out["proxy_location"] = s.proxyLoc
	out["http_options"] = s.httpOpts
	out["grpc_options"] = map[string]any{"port": 9000, "grpc_servicer_functions": []any{}, "request_timeout_s": nil}
	// Replicas run on the head only, so the head is the only node with a
	// proxy (EveryNode means every node that has replicas, and the head).
	out["proxies"] = map[string]any{h.rec.NodeID: map[string]any{
		"node_id": h.rec.NodeID, "node_ip": h.rec.NodeIP, "actor_id": s.proxy.actor.ActorID,
		"actor_name": "SERVE_CONTROLLER_ACTOR:SERVE_PROXY_ACTOR-" + h.rec.NodeID, "worker_id": s.proxy.actor.WorkerID,
		"log_file_path": s.proxy.actor.LogPath, "status": "HEALTHY",
	}}
	apps := map[string]any{}
	for name, a := range s.apps {
		deps := map[string]any{}
		for dn, d := range a.deps {
			reps := []map[string]any{}
			for _, rep := range a.replicas {
				if rep.deployment != dn {
					continue
				}
				reps = append(reps, map[string]any{
					"node_id": h.rec.NodeID, "node_ip": h.rec.NodeIP, "actor_id": rep.actor.ActorID,
					"actor_name": "SERVE_REPLICA::" + rep.id, "worker_id": rep.actor.WorkerID,
					"log_file_path": rep.actor.LogPath, "replica_id": rep.id, "state": rep.state,
					"pid": rep.pid, "start_time_s": rep.start,
				})
			}
			rao, _ := d.config["ray_actor_options"].(map[string]any)
			deps[dn] = map[string]any{
				"name": dn, "status": d.status, "status_trigger": d.trigger, "message": d.message,
				"deployment_config": d.config, "target_num_replicas": d.target, "replicas": reps,
				"required_resources": map[string]any{"CPU": rao["num_cpus"]},
			}
		}
		apps[name] = map[string]any{
			"name": name, "route_prefix": a.route, "docs_path": a.docsPath, "status": a.status, "message": a.message,
			"last_deployed_time_s": a.deployedAt, "deployed_app_config": a.cfg, "source": "declarative",
			"deployments": deps,
		}
	}
	out["applications"] = apps
	writeJSON(w, http.StatusOK, out)
}
