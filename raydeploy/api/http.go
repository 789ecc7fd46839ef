package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/raydeploy/sdk/approval"
)

// route is one endpoint: who may call it, and whether it changes anything
// (then it is recorded in the audit log).
type route struct {
	Method, Pattern string
	Role            Role // "" = no token needed
	Mutating        bool
	h               func(w http.ResponseWriter, r *http.Request, p Principal)
}

// Route describes one endpoint for documentation and tests.
type Route struct {
	// Method and Path are the HTTP method and the URL pattern ({name} is a
	// path parameter).
	Method, Path string
	// Role is the least role that may call it; "" means no token is needed.
	Role Role
	// Mutating is true when the endpoint changes something; its calls
	// (those not refused for the rate limit) are recorded in the audit log.
	Mutating bool
}

// Routes lists every endpoint the server answers (the UI's static files excepted).
func (s *Server) Routes() []Route {
	out := make([]Route, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, Route{Method: rt.Method, Path: rt.Pattern, Role: rt.Role, Mutating: rt.Mutating})
	}
	return out
}

// ErrorBody is the JSON of every error answer (the seed's Error schema). It
// never carries a stack trace or an internal path.
type ErrorBody struct {
	// Error is a machine-readable code such as "UNAUTHORIZED" or
	// "CHECKPOINT_NOT_FOUND".
	Error string `json:"error"`
	// Message says what went wrong for people, with the state directory and
	// home directory shortened.
	Message string `json:"message"`
	// Timestamp is when the error was answered, UTC.
	Timestamp time.Time `json:"timestamp"`
	// Details is the seed's; this server leaves it out.
	Details any `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"INTERNAL","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: code, Message: s.clean(msg), Timestamp: time.Now().UTC()})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.fail(w, http.StatusInternalServerError, "INTERNAL", "internal error; the server log has the details")
}

// decode reads a JSON object strictly (unknown keys refused, one value only)
// into v. An empty body leaves v as it is when optional.
func decode(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return errors.New("a JSON body is required")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errMediaType
		}
	}
	return strictUnmarshal(body, v)
}

var (
	errTooLarge  = errors.New("request body too large")
	errMediaType = errors.New("want Content-Type: application/json")
)

// strictUnmarshal decodes exactly one JSON value, refusing unknown keys.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("invalid JSON at byte %d", se.Offset)
		case errors.As(err, &te):
			return fmt.Errorf("field %q: want %s", te.Field, te.Type)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("invalid JSON: unexpected end")
		}
		return fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("invalid JSON: more than one value")
	}
	return nil
}

func (s *Server) badBody(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errTooLarge):
		s.fail(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes))
	case errors.Is(err, errMediaType):
		s.fail(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", err.Error())
	default:
		s.fail(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
	}
}

// statusWriter remembers the status code; Flush passes through for SSE.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP answers one request: CORS, body limit, authentication with a
// rate limit on failures, the role check, the handler, metrics and the audit
// record of mutating requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var p Principal
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if sw.status == 0 {
					s.fail(sw, http.StatusInternalServerError, "INTERNAL", "internal error; the server log has the details")
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			s.metrics.observe(rt.Method, rt.Pattern, sw.status, time.Since(start))
			if rt.Mutating && sw.status != http.StatusTooManyRequests {
				s.auditRequest(r, p, sw.status)
			}
		}()
		s.cors(sw, r)
		sw.Header().Set("X-Content-Type-Options", "nosniff")
		sw.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
		if rt.Role != "" {
			var ok bool
			p, ok = s.authenticate(sw, r)
			if !ok {
				return
			}
			if !p.Role.Allows(rt.Role) {
				s.fail(sw, http.StatusForbidden, "FORBIDDEN", fmt.Sprintf("role %s may not do this; it needs %s", p.Role, rt.Role))
				return
			}
		}
		d, _ := s.deployer()
		if d == nil && rt.Role != "" {
			s.fail(sw, http.StatusServiceUnavailable, "NOT_READY", "the server is not attached to a cluster yet")
			return
		}
		rt.h(sw, r, p)
	}
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	ip := remoteIP(r)
	if s.limits.exhausted(ip) {
		w.Header().Set("Retry-After", "60")
		s.fail(w, http.StatusTooManyRequests, "RATE_LIMITED", "too many failed authentications from this address; wait and retry")
		return Principal{}, false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if ok {
		if p, ok := s.cfg.Tokens.Authenticate(strings.TrimSpace(tok)); ok {
			return p, true
		}
	}
	s.limits.failed(ip)
	s.metrics.authFailures.Inc()
	w.Header().Set("WWW-Authenticate", `Bearer realm="raydeploy"`)
	msg := "missing bearer token (Authorization: Bearer <token>)"
	if h != "" {
		msg = "invalid bearer token"
	}
	s.fail(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
	return Principal{}, false
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) auditRequest(r *http.Request, p Principal, status int) {
	rec := approval.AuditRecord{Kind: approval.AuditAPI, Checkpoint: r.PathValue("checkpoint_name"), Actor: &approval.Actor{
		Principal: p.Name, Remote: r.RemoteAddr, Method: r.Method, Path: r.URL.Path, Status: status,
	}}
	if err := s.cfg.Audit.Append(context.WithoutCancel(r.Context()), rec); err != nil {
		s.log.Error("audit record of an API request not written", "path", r.URL.Path, "err", err)
	}
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.cfg.CORSOrigins, origin) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Max-Age", "600")
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.cfg.CORSOrigins, origin) {
		s.fail(w, http.StatusForbidden, "CORS_FORBIDDEN", "origin not in the CORS allow-list")
		return
	}
	s.cors(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// authLimiter bounds failed authentications per remote IP.
type authLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byIP  map[string]*rate.Limiter
}

func newAuthLimiter(l rate.Limit, burst int) *authLimiter {
	return &authLimiter{limit: l, burst: burst, byIP: map[string]*rate.Limiter{}}
}

func (a *authLimiter) get(ip string) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.byIP[ip]
	if !ok {
		if len(a.byIP) >= 10000 { // bound memory; forget everyone at once
			a.byIP = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(a.limit, a.burst)
		a.byIP[ip] = l
	}
	return l
}

func (a *authLimiter) exhausted(ip string) bool { return a.get(ip).Tokens() < 1 }
func (a *authLimiter) failed(ip string)         { a.get(ip).Allow() }

// httpMetrics are the server's own metrics.
type httpMetrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures prometheus.Counter
	sseClients   prometheus.Gauge
	sseDropped   prometheus.Counter
	webhooks     *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raydeploy_api_requests_total",
			Help: "API requests by method, route and status code."}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "raydeploy_api_request_duration_seconds",
			Help: "API request durations by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"route"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "raydeploy_api_auth_failures_total",
			Help: "Requests refused for a missing or invalid token."}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "raydeploy_api_event_stream_clients",
			Help: "Clients connected to the event stream."}),
		sseDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "raydeploy_api_event_stream_cutoffs_total",
			Help: "Event stream clients cut off because they fell behind."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raydeploy_api_webhook_deliveries_total",
			Help: "Webhook deliveries by result (ok, failed)."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.authFailures, m.sseClients, m.sseDropped, m.webhooks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *httpMetrics) webhookDone(ok bool) {
	if ok {
		m.webhooks.WithLabelValues("ok").Inc()
	} else {
		m.webhooks.WithLabelValues("failed").Inc()
	}
}
