package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// Deployer is what the server needs of a *raydeploy.Deployer (which
// satisfies it). List reads the ledger only; Plan and Deploy reach the nodes.
type Deployer interface {
	Cluster() *raydeploy.Cluster
	List(ctx context.Context) ([]checkpoint.Info, error)
	Plan(ctx context.Context, o checkpoint.RunOptions) ([]checkpoint.Plan, error)
	Deploy(ctx context.Context, o checkpoint.RunOptions) (*checkpoint.Report, error)
}

// Config configures a Server. Tokens is required; Audit too unless the
// Deployer keeps the audit log itself (an Audit() *approval.AuditLog method).
type Config struct {
	// Tokens authenticate callers (see LoadTokens, CreateToken).
	Tokens *Tokens
	// Audit is the cluster's audit log: the server appends a record of every
	// mutating request (principal, remote address, method, path, status),
	// approval requests and decisions go to it, and GET /api/v1/audit reads it.
	// A Deployer with an Audit method supplies it instead.
	Audit *approval.AuditLog
	// Registry is where the server registers its HTTP metrics and what
	// /metrics serves; register the deployer's monitoring.Metrics on it too.
	// Nil: a new registry.
	Registry *prometheus.Registry
	// ApprovalTimeout is how long a pending approval request waits before the
	// run fails with approval.ErrTimeout (default 1 hour).
	ApprovalTimeout time.Duration
	// AllowSelfApproval lets the principal who started a run approve its
	// steps. Off by default: approver != requester.
	AllowSelfApproval bool
	// CORSOrigins are the origins allowed to call the API from a browser
	// (exact match, e.g. "https://ops.example.org"). Empty: none.
	CORSOrigins []string
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// FailedAuthRate and FailedAuthBurst bound failed authentications per
	// remote IP (default one per 2 s, burst 10); beyond that the answer is 429.
	FailedAuthRate  rate.Limit
	FailedAuthBurst int // failures allowed at once per IP (default 10)
	// Webhooks are told about approvals pending and decided and runs finished.
	Webhooks []Webhook
	// WebhookClient sends webhook deliveries (default: 10 s timeout).
	WebhookClient *http.Client
	// WebhookMaxElapsed bounds the retries of one delivery (default 5 minutes).
	WebhookMaxElapsed time.Duration
	// EventHistory is how many events the stream keeps for Last-Event-ID
	// resumption (default 4096).
	EventHistory int
	// SubscriberBuffer is how many events one stream client may fall behind
	// before it is cut off and told to reconnect (default 256).
	SubscriberBuffer int
	// Logger receives structured logs (default: discard). Tokens are never logged.
	Logger *slog.Logger
	// ContainerRefresh is how often a Deployer that lists containers
	// (raydeploy.Deployer.Containers) is asked for each node's containers in
	// the background, besides at Attach and after each execution and plan
	// (default 1 minute; negative: only then). Status requests read the last
	// answers and never reach a node.
	ContainerRefresh time.Duration
}

// Server is the REST API and web UI of one cluster. Create it with New, give
// its Approver and EventSink to the raydeploy.Deployer, then Attach the
// Deployer; ServeHTTP answers 503 until then.
type Server struct {
	cfg     Config
	log     *slog.Logger
	queue   *approval.Queue
	hub     *hub
	hooks   *webhooks
	metrics *httpMetrics
	limits  *authLimiter
	mux     *http.ServeMux
	routes  []route

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	d       Deployer
	execs   *execStore
	current *running // the execution or plan in progress
	// approvalAudit records approval requests and decisions when the
	// Deployer does not.
	approvalAudit *approval.AuditLog
	infos         []checkpoint.Info // the checkpoints (names, flags), listed once
	ledgers       ledgerCache
	closed        bool
	watch         *containerWatch // nil unless the Deployer lists containers
}

type running struct {
	execID string // "" for a plan
	cancel context.CancelCauseFunc
}

//go:embed openapi.yaml
var openapiYAML []byte

//go:embed ui
var uiFiles embed.FS

// OpenAPI returns the server's OpenAPI 3 document (served at /api/v1/openapi.yaml).
func OpenAPI() []byte { return append([]byte(nil), openapiYAML...) }

var (
	errShutdown = errors.New("server shut down")
	errCancel   = errors.New("cancelled through the API")
)

// New returns a Server that is not yet attached to a Deployer.
func New(cfg Config) (*Server, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("api: Config.Tokens is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.FailedAuthRate <= 0 {
		cfg.FailedAuthRate = rate.Every(2 * time.Second)
	}
	if cfg.FailedAuthBurst <= 0 {
		cfg.FailedAuthBurst = 10
	}
	if cfg.WebhookClient == nil {
		cfg.WebhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.WebhookMaxElapsed <= 0 {
		cfg.WebhookMaxElapsed = 5 * time.Minute
	}
	if cfg.EventHistory <= 0 {
		cfg.EventHistory = 4096
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = 256
	}
	for i, h := range cfg.Webhooks {
		if len(h.Secret) == 0 {
			return nil, fmt.Errorf("api: Webhooks[%d]: Secret is required", i)
		}
		if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
			return nil, fmt.Errorf("api: Webhooks[%d].URL: want an http or https URL", i)
		}
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		queue:   approval.NewQueue(cfg.ApprovalTimeout),
		hub:     newHub(approval.NewID()[:8], cfg.EventHistory),
		metrics: m,
		limits:  newAuthLimiter(cfg.FailedAuthRate, cfg.FailedAuthBurst),
	}
	s.hooks = newWebhooks("", cfg.Webhooks, cfg.WebhookClient, cfg.WebhookMaxElapsed, cfg.Logger, m.webhookDone)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.buildRoutes()
	return s, nil
}

// Attach binds the server to d and opens the executions kept in d's state
// directory; executions a previous server left running are marked INTERRUPTED.
func (s *Server) Attach(d Deployer) error {
	if d == nil || d.Cluster() == nil {
		return errors.New("api: Attach: nil deployer")
	}
	st, err := openExecStore(filepath.Join(d.Cluster().StateDir, "api", "executions"), time.Now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d != nil {
		return errors.New("api: Attach called twice")
	}
	s.approvalAudit = s.cfg.Audit
	if a, ok := d.(auditor); ok && a.Audit() != nil {
		s.cfg.Audit, s.approvalAudit = a.Audit(), nil // the Deployer records approvals
	}
	if s.cfg.Audit == nil {
		return errors.New("api: no audit log: set Config.Audit (every mutating request is recorded)")
	}
	s.d, s.execs = d, st
	s.hooks.cluster = d.Cluster().Name
	if l, ok := d.(containerLister); ok {
		interval := s.cfg.ContainerRefresh
		if interval == 0 {
			interval = defaultContainerRefresh
		}
		var nodes []string
		for _, n := range d.Cluster().Nodes() {
			nodes = append(nodes, n.ID())
		}
		s.watch = newContainerWatch(l, nodes, interval)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch.loop(s.ctx, func(node string, err error) {
				s.log.Warn("listing containers failed", "node", node, "err", err)
			})
		}()
	}
	return nil
}

// Queue is the approval queue the server answers (GET /api/v1/approval-requests).
func (s *Server) Queue() *approval.Queue { return s.queue }

// Approver is the Approver to give the Deployer (raydeploy.Options.Approver):
// requests wait in the server's queue; the requester is the principal who
// started the execution (checkpoint.WithRequester); decisions are checked by
// approval.Policy (approver != requester unless AllowSelfApproval). Requests
// and decisions are recorded in the audit log here unless the Deployer
// records them itself (it has an Audit method returning its log).
func (s *Server) Approver() approval.Approver {
	checked := approval.Policy{DistinctApprover: !s.cfg.AllowSelfApproval}.Wrap(s.queue)
	return approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
		s.mu.Lock()
		audit := s.approvalAudit
		s.mu.Unlock()
		if audit != nil {
			return approval.Audited(checked, audit).Approve(ctx, r)
		}
		return checked.Approve(ctx, r)
	})
}

// auditor is implemented by Deployers that keep the audit log themselves.
type auditor interface {
	Audit() *approval.AuditLog
}

// EventSink is the sink to give the Deployer (raydeploy.Options.Events): the
// events feed the stream, the webhooks and the executions. It never blocks.
func (s *Server) EventSink() checkpoint.EventSink { return s.observe }

// Close cancels what runs (an interrupted execution is recorded as such),
// waits for it and stops webhook deliveries. It does not close the Deployer.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel(errShutdown)
	s.wg.Wait()
	s.hooks.close()
	return nil
}

func (s *Server) deployer() (Deployer, *execStore) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d, s.execs
}

func (s *Server) containers() *containerWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watch
}

func (s *Server) currentExec() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return ""
	}
	return s.current.execID
}

func (s *Server) stateDir() string {
	d, _ := s.deployer()
	if d == nil {
		return ""
	}
	return d.Cluster().StateDir
}

// clean removes internal paths from a message shown to API callers.
func (s *Server) clean(msg string) string {
	if dir := s.stateDir(); dir != "" {
		msg = strings.ReplaceAll(msg, dir+string(os.PathSeparator), "<state-dir>/")
		msg = strings.ReplaceAll(msg, dir, "<state-dir>")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "/" && home != "" {
		msg = strings.ReplaceAll(msg, home, "~")
	}
	return msg
}

func subFS() fs.FS {
	f, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory exists at compile time
	}
	return f
}
