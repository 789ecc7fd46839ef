package hollow

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/stdcopy"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// What the hollow Engine says it is: Debian 12's docker.io, as on the
// testenv nodes.
const (
	engineVersion = "20.10.24+dfsg1"
	engineAPI     = "1.41"
	engineMinAPI  = "1.12"
)

// Image labels that tell a hollow node what `ray --version` and
// `python --version` print in a container of the image.
const (
	LabelRayVersion    = "io.raydeploy.hollow.ray-version"
	LabelPythonVersion = "io.raydeploy.hollow.python-version"
)

// engine is a node's Docker Engine: containers and images in memory.
type engine struct {
	node *Node

	mu         sync.Mutex
	containers map[string]*hcontainer // by ID
	names      map[string]string      // name -> ID
	images     map[string]*himage     // by ID
	tags       map[string]string      // reference -> image ID
	seq        int
}

type himage struct {
	id     string
	tags   []string
	config dockerspec.DockerOCIImageConfig
	raw    []byte // the docker-save archive it came in
	size   int64
}

type hcontainer struct {
	id, name string
	imageRef string
	imageID  string
	cfg      *container.Config
	hc       *container.HostConfig
	created  time.Time
	started  time.Time
	finished time.Time
	status   container.ContainerState
	exitCode int
	logs     bytes.Buffer // stdcopy-framed output
	exited   chan struct{}
	ray      *rayInfo
}

func newEngine(n *Node) *engine {
	return &engine{node: n, containers: map[string]*hcontainer{}, names: map[string]string{},
		images: map[string]*himage{}, tags: map[string]string{}}
}

// serve answers Engine API requests on the connections l delivers.
func (e *engine) serve(l *chanListener) {
	srv := &http.Server{Handler: http.HandlerFunc(e.handle), ReadHeaderTimeout: time.Minute}
	_ = srv.Serve(l)
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// apiError writes the Engine's error body.
func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(types.ErrorResponse{Message: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (e *engine) handle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Api-Version", engineAPI)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Docker/"+engineVersion+" (linux)")
	p := r.URL.Path
	if loc := versionPrefix.FindStringIndex(p); loc != nil {
		p = p[loc[1]-1:]
	}
	switch {
	case p == "/_ping":
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		h.Set("Pragma", "no-cache")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodHead {
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		_, _ = io.WriteString(w, "OK")
	case p == "/version" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, types.Version{
			Version: engineVersion, APIVersion: engineAPI, MinAPIVersion: engineMinAPI,
			GitCommit: "5d6db84", GoVersion: "go1.19.8", Os: "linux", Arch: "amd64", KernelVersion: "6.1.0-hollow",
			Components: []types.ComponentVersion{{Name: "Engine", Version: engineVersion,
				Details: map[string]string{"ApiVersion": engineAPI, "MinAPIVersion": engineMinAPI, "Os": "linux", "Arch": "amd64"}}},
		})
	case p == "/containers/json" && r.Method == http.MethodGet:
		e.list(w, r)
	case p == "/containers/create" && r.Method == http.MethodPost:
		e.create(w, r)
	case strings.HasPrefix(p, "/containers/"):
		e.containerOp(w, r, strings.TrimPrefix(p, "/containers/"))
	case p == "/images/load" && r.Method == http.MethodPost:
		e.load(w, r)
	case p == "/images/get" && r.Method == http.MethodGet:
		e.save(w, r)
	case strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/json") && r.Method == http.MethodGet:
		e.inspectImage(w, strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json"))
	default:
		apiError(w, http.StatusNotFound, "page not found")
	}
}

// lookup finds a container by ID, ID prefix or name; e.mu is held.
func (e *engine) lookup(ref string) *hcontainer {
	ref = strings.TrimPrefix(ref, "/")
	if id, ok := e.names[ref]; ok {
		return e.containers[id]
	}
	if c := e.containers[ref]; c != nil {
		return c
	}
	if len(ref) >= 3 {
		var found *hcontainer
		for id, c := range e.containers {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil
				}
				found = c
			}
		}
		return found
	}
	return nil
}

// imageByRef finds an image by reference, ID or "sha256:" ID; e.mu is held.
func (e *engine) imageByRef(ref string) *himage {
	if id, ok := e.tags[ref]; ok {
		return e.images[id]
	}
	if !strings.Contains(ref, ":") {
		if id, ok := e.tags[ref+":latest"]; ok {
			return e.images[id]
		}
	}
	if img := e.images[ref]; img != nil {
		return img
	}
	return e.images["sha256:"+ref]
}

func (e *engine) list(w http.ResponseWriter, r *http.Request) {
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	all := r.URL.Query().Get("all") == "1" || r.URL.Query().Get("all") == "true"
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []container.Summary{}
	ids := make([]string, 0, len(e.containers))
	for id := range e.containers {
		ids = append(ids, id)
	}
	// Newest first, as the Engine lists them.
	slices.SortFunc(ids, func(a, b string) int { return e.containers[b].created.Compare(e.containers[a].created) })
	for _, id := range ids {
		c := e.containers[id]
		if !all && c.status != container.StateRunning {
			continue
		}
		if !args.MatchKVList("label", c.cfg.Labels) {
			continue
		}
		if args.Contains("name") && !args.Match("name", c.name) {
			continue
		}
		if args.Contains("ancestor") {
			ok := false
			for _, a := range args.Get("ancestor") {
				if img := e.imageByRef(a); (img != nil && img.id == c.imageID) || a == c.imageRef {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		s := container.Summary{
			ID: c.id, Names: []string{"/" + c.name}, Image: c.imageRef, ImageID: c.imageID,
			Command: strings.Join(c.args(), " "), Created: c.created.Unix(), Ports: []container.Port{},
			Labels: c.cfg.Labels, State: c.status, Status: c.statusText(), Mounts: []container.MountPoint{},
		}
		s.HostConfig.NetworkMode = string(c.hc.NetworkMode)
		if s.HostConfig.NetworkMode == "" {
			s.HostConfig.NetworkMode = "default"
		}
		out = append(out, s)
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *hcontainer) args() []string {
	return append(slices.Clone([]string(c.cfg.Entrypoint)), c.cfg.Cmd...)
}

func (c *hcontainer) statusText() string {
	switch c.status {
	case container.StateRunning:
		return "Up " + time.Since(c.started).Round(time.Second).String()
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, time.Since(c.finished).Round(time.Second))
	}
	return "Created"
}

var containerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (e *engine) create(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Config == nil || req.Config.Image == "" {
		apiError(w, http.StatusBadRequest, "No command specified")
		return
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	name := r.URL.Query().Get("name")
	e.mu.Lock()
	defer e.mu.Unlock()
	img := e.imageByRef(req.Config.Image)
	if img == nil {
		apiError(w, http.StatusNotFound, "No such image: %s", req.Config.Image)
		return
	}
	e.seq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", e.node.Address, e.seq, time.Now().UnixNano()))
	id := hex.EncodeToString(sum[:])
	if name == "" {
		name = "hollow_" + id[:8]
	}
	name = strings.TrimPrefix(name, "/")
	if !containerName.MatchString(name) {
		apiError(w, http.StatusBadRequest, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		return
	}
	if old, ok := e.names[name]; ok {
		apiError(w, http.StatusConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, old)
		return
	}
	cfg := req.Config
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	// The image's labels and defaults apply where the request sets none.
	for k, v := range img.config.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = img.config.Entrypoint
	}
	if len(cfg.Cmd) == 0 {
		cfg.Cmd = img.config.Cmd
	}
	c := &hcontainer{id: id, name: name, imageRef: req.Config.Image, imageID: img.id, cfg: cfg, hc: req.HostConfig,
		created: time.Now(), status: container.StateCreated, exited: make(chan struct{})}
	e.containers[id] = c
	e.names[name] = id
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: []string{}})
}

func (e *engine) containerOp(w http.ResponseWriter, r *http.Request, rest string) {
	ref, op, _ := strings.Cut(rest, "/")
	e.mu.Lock()
	c := e.lookup(ref)
	if c == nil {
		e.mu.Unlock()
		apiError(w, http.StatusNotFound, "No such container: %s", ref)
		return
	}
	switch {
	case op == "json" && r.Method == http.MethodGet:
		resp := e.inspect(c)
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, resp)
	case op == "start" && r.Method == http.MethodPost:
		if c.status == container.StateRunning {
			e.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		e.start(c)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case op == "stop" && r.Method == http.MethodPost:
		if c.status != container.StateRunning {
			e.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		e.exit(c, 143)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case op == "" && r.Method == http.MethodDelete:
		force := r.URL.Query().Get("force") == "1" || r.URL.Query().Get("force") == "true"
		if c.status == container.StateRunning && !force {
			e.mu.Unlock()
			apiError(w, http.StatusConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.id)
			return
		}
		if c.status == container.StateRunning {
			e.exit(c, 137)
		}
		delete(e.containers, c.id)
		delete(e.names, c.name)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case op == "wait" && r.Method == http.MethodPost:
		exited := c.exited
		running := c.status == container.StateRunning || r.URL.Query().Get("condition") == string(container.WaitConditionNextExit)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if running {
			select {
			case <-exited:
			case <-r.Context().Done():
				return
			}
		}
		e.mu.Lock()
		code := c.exitCode
		e.mu.Unlock()
		_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(code)})
	case op == "logs" && r.Method == http.MethodGet:
		b := bytes.Clone(c.logs.Bytes())
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	default:
		e.mu.Unlock()
		apiError(w, http.StatusNotFound, "page not found")
	}
}

// start runs the container: one that asks for `ray --version` prints its
// image's versions and exits; a `ray start` one runs a Ray node until it is
// stopped; anything else runs doing nothing. e.mu is held.
func (e *engine) start(c *hcontainer) {
	c.status, c.started, c.exitCode = container.StateRunning, time.Now(), 0
	select {
	case <-c.exited: // a restart: waiters from now on wait for the next exit
		c.exited = make(chan struct{})
	default:
	}
	cmd := strings.Join(c.args(), " ")
	switch {
	case strings.Contains(cmd, "ray --version"):
		img := e.images[c.imageID]
		rv, pv := img.config.Labels[LabelRayVersion], img.config.Labels[LabelPythonVersion]
		if rv == "" || pv == "" {
			w := stdcopy.NewStdWriter(&c.logs, stdcopy.Stderr)
			_, _ = io.WriteString(w, "sh: 1: ray: not found\n")
			e.exit(c, 127)
			return
		}
		w := stdcopy.NewStdWriter(&c.logs, stdcopy.Stdout)
		fmt.Fprintf(w, "ray, version %s\nPython %s\n", rv, pv)
		e.exit(c, 0)
	case slices.Contains(c.args(), "ray") && slices.Contains(c.args(), "start"):
		c.ray = parseRayStart(c, e.node)
	}
}

// exit ends a running container with code; e.mu is held.
func (e *engine) exit(c *hcontainer, code int) {
	c.status, c.exitCode, c.finished, c.ray = container.StateExited, code, time.Now(), nil
	close(c.exited)
}

func (e *engine) inspect(c *hcontainer) container.InspectResponse {
	args := c.args()
	st := &container.State{Status: c.status, Running: c.status == container.StateRunning, ExitCode: c.exitCode,
		StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z"}
	if !c.started.IsZero() {
		st.StartedAt = c.started.UTC().Format(time.RFC3339Nano)
	}
	if !c.finished.IsZero() {
		st.FinishedAt = c.finished.UTC().Format(time.RFC3339Nano)
	}
	if st.Running {
		st.Pid = 4000 + len(c.name)
	}
	base := &container.ContainerJSONBase{
		ID: c.id, Created: c.created.UTC().Format(time.RFC3339Nano), State: st, Image: c.imageID,
		Name: "/" + c.name, Driver: "overlay2", Platform: "linux", HostConfig: c.hc,
		ResolvConfPath: "/var/lib/docker/containers/" + c.id + "/resolv.conf",
		HostnamePath:   "/var/lib/docker/containers/" + c.id + "/hostname",
		HostsPath:      "/var/lib/docker/containers/" + c.id + "/hosts",
		LogPath:        "/var/lib/docker/containers/" + c.id + "/" + c.id + "-json.log",
	}
	if len(args) > 0 {
		base.Path, base.Args = args[0], args[1:]
	}
	return container.InspectResponse{ContainerJSONBase: base, Config: c.cfg, Mounts: []container.MountPoint{},
		NetworkSettings: &container.NetworkSettings{}}
}

func (e *engine) inspectImage(w http.ResponseWriter, ref string) {
	e.mu.Lock()
	img := e.imageByRef(ref)
	e.mu.Unlock()
	if img == nil {
		apiError(w, http.StatusNotFound, "No such image: %s", ref)
		return
	}
	cfg := img.config
	writeJSON(w, http.StatusOK, image.InspectResponse{
		ID: img.id, RepoTags: img.tags, RepoDigests: []string{}, Created: "2026-01-01T00:00:00Z",
		Config: &cfg, Architecture: "amd64", Os: "linux", Size: img.size,
		RootFS: image.RootFS{Type: "layers"},
	})
}

// load reads a docker-save archive: manifest.json names each image's config
// blob, whose sha256 is the image ID; a blob that does not match is refused,
// as the Engine does.
func (e *engine) load(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	imgs, err := parseArchive(raw)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		// The Engine reports a bad archive in the progress stream, after 200.
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
		return
	}
	e.mu.Lock()
	var msgs []string
	for _, img := range imgs {
		if old := e.images[img.id]; old != nil {
			img.tags = append(old.tags, img.tags...)
			slices.Sort(img.tags)
			img.tags = slices.Compact(img.tags)
		}
		e.images[img.id] = img
		for _, t := range img.tags {
			if prev, ok := e.tags[t]; ok && prev != img.id {
				if p := e.images[prev]; p != nil {
					p.tags = slices.DeleteFunc(p.tags, func(s string) bool { return s == t })
				}
			}
			e.tags[t] = img.id
			msgs = append(msgs, "Loaded image: "+t+"\n")
		}
		if len(img.tags) == 0 {
			msgs = append(msgs, "Loaded image ID: "+img.id+"\n")
		}
	}
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, m := range msgs {
		_ = enc.Encode(map[string]string{"stream": m})
	}
}

func (e *engine) save(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["names"]
	e.mu.Lock()
	var img *himage
	if len(names) == 1 {
		img = e.imageByRef(names[0])
	}
	e.mu.Unlock()
	if img == nil {
		apiError(w, http.StatusNotFound, "No such image: %s", strings.Join(names, ", "))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(img.raw)
}

// parseArchive reads the images of a docker-save archive.
func parseArchive(raw []byte) ([]*himage, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid tar header: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[path.Clean(h.Name)] = b
	}
	mb, ok := files["manifest.json"]
	if !ok {
		return nil, errors.New("open /var/lib/docker/tmp/docker-import/manifest.json: no such file or directory")
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(mb, &manifest); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []*himage
	for _, m := range manifest {
		cb, ok := files[path.Clean(m.Config)]
		if !ok {
			return nil, fmt.Errorf("config %s is not in the archive", m.Config)
		}
		sum := sha256.Sum256(cb)
		id := "sha256:" + hex.EncodeToString(sum[:])
		if want := strings.TrimSuffix(path.Base(m.Config), ".json"); want != hex.EncodeToString(sum[:]) {
			return nil, fmt.Errorf("invalid digest for config %s: got %s", m.Config, id)
		}
		var cfg dockerspec.DockerOCIImage
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", m.Config, err)
		}
		size := int64(0)
		for _, l := range m.Layers {
			lb, ok := files[path.Clean(l)]
			if !ok {
				return nil, fmt.Errorf("layer %s is not in the archive", l)
			}
			size += int64(len(lb))
		}
		out = append(out, &himage{id: id, tags: slices.Clone(m.RepoTags), config: cfg.Config, raw: raw, size: size})
	}
	return out, nil
}

// rayInfo is a running `ray start` container as the simulated Ray sees it.
type rayInfo struct {
	head       bool
	ip         string
	gcsPort    int
	dashPort   int
	address    string // the head's host:port a worker joins
	cpus       float64
	memory     float64
	ports      []int
	nodeID     string
	token      string // RAY_AUTH_TOKEN when RAY_AUTH_MODE=token
	rayVersion string
}

func parseRayStart(c *hcontainer, n *Node) *rayInfo {
	ri := &rayInfo{ip: n.Address, gcsPort: 6379, dashPort: 8265, cpus: float64(n.facts.CPUs),
		memory: float64(n.facts.MemTotalKB) * 1024 * 0.7}
	for _, a := range c.args() {
		k, v, _ := strings.Cut(a, "=")
		num, _ := strconv.Atoi(v)
		switch k {
		case "--head":
			ri.head = true
		case "--port":
			ri.gcsPort = num
		case "--dashboard-port":
			ri.dashPort = num
		case "--address":
			ri.address = v
		case "--node-ip-address":
			ri.ip = v
		case "--num-cpus":
			ri.cpus = float64(num)
		case "--memory":
			ri.memory, _ = strconv.ParseFloat(v, 64)
		case "--metrics-export-port", "--dashboard-agent-listen-port", "--ray-client-server-port":
			ri.ports = append(ri.ports, num)
		}
	}
	if ri.head {
		ri.ports = append(ri.ports, ri.gcsPort, ri.dashPort)
	}
	env := map[string]string{}
	for _, kv := range c.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["RAY_AUTH_MODE"] == "token" {
		ri.token = env["RAY_AUTH_TOKEN"]
	}
	ri.rayVersion = c.cfg.Labels[LabelRayVersion]
	sum := sha256.Sum256([]byte(c.id + ri.ip))
	ri.nodeID = hex.EncodeToString(sum[:28])
	return ri
}

// rayNode returns the node's running Ray container, if any.
func (e *engine) rayNode() (rayInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		if c.ray != nil {
			return *c.ray, true
		}
	}
	return rayInfo{}, false
}
