package tts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

// Dashboard says how to reach the Ray dashboard (head, port 8265) whose Serve
// REST API deploys the service.
type Dashboard struct {
	// BaseURL is e.g. "http://10.0.0.1:8265".
	BaseURL string
	// Token is the Ray auth token, "" without token authentication.
	Token string
	// HTTPClient carries the requests (its transport may tunnel, e.g. over SSH).
	HTTPClient *http.Client
}

// serveAPI is the part of the dashboard client the Service uses.
type serveAPI interface {
	PutServeApplications(ctx context.Context, config json.RawMessage) error
	ServeApplications(ctx context.Context) (raydash.ServeInstanceDetails, error)
}

func (d Dashboard) client() (serveAPI, error) {
	return raydash.New(raydash.Config{BaseURL: d.BaseURL, Token: d.Token, HTTPClient: d.HTTPClient})
}

// Plan actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionNone   = "none"
)

// Plan is what Deploy would change on Serve.
type Plan struct {
	// App is the application's name.
	App string `json:"app"`
	// Action is create, update or none.
	Action string `json:"action"`
	// Changes lists what differs from the deployed application, one line
	// each ("deployments[0].autoscaling_config.max_replicas: 2 -> 3").
	Changes []string `json:"changes,omitempty"`
	// Status is the application's Serve status now ("" when absent).
	Status string `json:"status,omitempty"`
	// Others are the other applications the PUT keeps, by name.
	Others []string `json:"others,omitempty"`
	// Config is the whole Serve config Deploy sends.
	Config json.RawMessage `json:"config"`
	// othersSeen and selfSeen are the configs the plan was made from.
	othersSeen map[string]json.RawMessage
	selfSeen   json.RawMessage
}

// Empty reports whether Deploy would change nothing.
func (p Plan) Empty() bool { return p.Action == ActionNone }

// String renders the plan for people.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Serve application %q: %s", p.App, p.Action)
	if p.Status != "" {
		fmt.Fprintf(&b, " (now %s)", p.Status)
	}
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "\n  %s", c)
	}
	if len(p.Others) > 0 {
		fmt.Fprintf(&b, "\n  keeps: %s", strings.Join(p.Others, ", "))
	}
	return b.String()
}

// DeployError is a deploy that Serve reports as failed (DEPLOY_FAILED,
// UNHEALTHY) or that did not become RUNNING in time.
type DeployError struct {
	// App is the application's name.
	App string
	// Status is its last Serve status.
	Status string
	// Message is Serve's explanation (the import traceback of a failed deploy).
	Message string
}

// Error describes the failure with Serve's message.
func (e *DeployError) Error() string {
	s := fmt.Sprintf("tts: Serve application %q is %s", e.App, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrStalePlan is returned by Deploy when Serve changed since the plan was made.
var ErrStalePlan = errors.New("tts: the Serve applications changed since the plan was made; plan again")

// Plan compares s with what Serve runs.
func (s Service) Plan(ctx context.Context, d Dashboard) (Plan, error) {
	c, err := d.client()
	if err != nil {
		return Plan{}, err
	}
	return s.plan(ctx, c)
}

func (s Service) plan(ctx context.Context, c serveAPI) (Plan, error) {
	if err := s.Validate(); err != nil {
		return Plan{}, err
	}
	s = s.WithDefaults()
	st, err := c.ServeApplications(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("tts: plan: %w", err)
	}
	if st.HTTPOptions != nil && st.HTTPOptions.Port != 0 && st.HTTPOptions.Port != s.HTTPPort {
		return Plan{}, fmt.Errorf("tts.http_port: Serve already runs its proxies on port %d, and a running Serve keeps its http_options; "+
			"set http_port %d or shut Serve down first", st.HTTPOptions.Port, st.HTTPOptions.Port)
	}
	p := Plan{App: s.Name, othersSeen: map[string]json.RawMessage{}}
	var others []json.RawMessage
	names := make([]string, 0, len(st.Applications))
	for name := range st.Applications {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		app := st.Applications[name]
		if name == s.Name {
			continue
		}
		if len(app.DeployedAppConfig) == 0 || string(app.DeployedAppConfig) == "null" {
			return Plan{}, fmt.Errorf("tts: Serve application %q was not deployed through the REST API (no deployed_app_config); "+
				"a declarative PUT would delete it, so the TTS service is not deployed next to it", name)
		}
		others = append(others, app.DeployedAppConfig)
		p.Others = append(p.Others, name)
		p.othersSeen[name] = app.DeployedAppConfig
	}
	cfg, err := s.Config(others)
	if err != nil {
		return Plan{}, err
	}
	if p.Config, err = json.Marshal(cfg); err != nil {
		return Plan{}, err
	}
	mine, _ := json.Marshal(s.App())
	cur, ok := st.Applications[s.Name]
	switch {
	case !ok:
		p.Action = ActionCreate
		p.Changes = []string{fmt.Sprintf("deploy %s at route %s, %d to %d replicas, port %d", ImportPath, s.RoutePrefix,
			s.Autoscaling.MinReplicas, s.Autoscaling.MaxReplicas, s.HTTPPort)}
	default:
		p.Status, p.selfSeen = cur.Status, cur.DeployedAppConfig
		p.Changes = diffJSON(cur.DeployedAppConfig, mine)
		p.Action = ActionNone
		if len(p.Changes) > 0 {
			p.Action = ActionUpdate
		}
	}
	return p, nil
}

// Deploy applies a plan made by Plan: it sends the Serve config (PUT
// /api/serve/applications/) unless the plan is empty, and waits until the
// application is RUNNING with this config. A failed deploy returns a
// *DeployError with Serve's message. Serve must not have changed since the
// plan (ErrStalePlan).
func (s Service) Deploy(ctx context.Context, d Dashboard, p Plan) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	return s.deploy(ctx, c, p, time.Second)
}

func (s Service) deploy(ctx context.Context, c serveAPI, p Plan, every time.Duration) error {
	s = s.WithDefaults()
	if p.App != s.Name || p.Config == nil {
		return fmt.Errorf("tts: the plan is for application %q, not %q", p.App, s.Name)
	}
	now, err := s.plan(ctx, c)
	if err != nil {
		return err
	}
	if !slices.Equal(now.Others, p.Others) || !bytes.Equal(now.Config, p.Config) ||
		(now.selfSeen == nil) != (p.selfSeen == nil) || (p.selfSeen != nil && !jsonEqual(now.selfSeen, p.selfSeen)) {
		return ErrStalePlan
	}
	for name, cfg := range p.othersSeen {
		if !jsonEqual(now.othersSeen[name], cfg) {
			return ErrStalePlan
		}
	}
	if !p.Empty() {
		if err := c.PutServeApplications(ctx, p.Config); err != nil {
			return fmt.Errorf("tts: deploy %q: %w", s.Name, err)
		}
	}
	mine, _ := json.Marshal(s.App())
	return s.waitRunning(ctx, c, mine, every)
}

// waitRunning polls Serve until the application runs config (RUNNING),
// failed (DEPLOY_FAILED) or ctx ends.
func (s Service) waitRunning(ctx context.Context, c serveAPI, config json.RawMessage, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	last := &DeployError{App: s.Name, Status: "absent"}
	for {
		st, err := c.ServeApplications(ctx)
		if err == nil {
			app, ok := st.Applications[s.Name]
			switch {
			case !ok:
			case !jsonEqual(app.DeployedAppConfig, config):
				last = &DeployError{App: s.Name, Status: app.Status, Message: "still the previous config"}
			case app.Status == raydash.AppRunning:
				return nil
			case app.Status == raydash.AppDeployFailed:
				return &DeployError{App: s.Name, Status: app.Status, Message: app.Message}
			default:
				last = &DeployError{App: s.Name, Status: app.Status, Message: app.Message}
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("tts: waiting for %q: %w (last answer: %v)", s.Name, ctx.Err(), err)
			}
			return fmt.Errorf("%w (waited: %v)", last, ctx.Err())
		case <-t.C:
		}
	}
}

// Remove deletes the service's application and only it: the other
// applications are sent back unchanged. It waits until Serve no longer lists it.
func (s Service) Remove(ctx context.Context, d Dashboard) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	return s.remove(ctx, c, time.Second)
}

func (s Service) remove(ctx context.Context, c serveAPI, every time.Duration) error {
	s = s.WithDefaults()
	st, err := c.ServeApplications(ctx)
	if err != nil {
		return fmt.Errorf("tts: remove: %w", err)
	}
	if _, ok := st.Applications[s.Name]; !ok {
		return nil
	}
	cfg := ServeConfig{ProxyLocation: st.ProxyLocation, Applications: []json.RawMessage{}}
	if cfg.ProxyLocation == "" {
		cfg.ProxyLocation = "EveryNode"
	}
	if st.HTTPOptions != nil {
		cfg.HTTPOptions = HTTPOptions{Host: st.HTTPOptions.Host, Port: st.HTTPOptions.Port}
	}
	names := make([]string, 0, len(st.Applications))
	for name := range st.Applications {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == s.Name {
			continue
		}
		app := st.Applications[name]
		if len(app.DeployedAppConfig) == 0 || string(app.DeployedAppConfig) == "null" {
			return fmt.Errorf("tts: remove: Serve application %q has no deployed_app_config; a declarative PUT would delete it", name)
		}
		cfg.Applications = append(cfg.Applications, app.DeployedAppConfig)
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := c.PutServeApplications(ctx, body); err != nil {
		return fmt.Errorf("tts: remove %q: %w", s.Name, err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := c.ServeApplications(ctx)
		if err == nil {
			if _, ok := st.Applications[s.Name]; !ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tts: remove %q: still listed: %w", s.Name, ctx.Err())
		case <-t.C:
		}
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// diffJSON lists the leaves that differ between two JSON documents.
func diffJSON(from, to json.RawMessage) []string {
	var a, b any
	_ = json.Unmarshal(from, &a)
	_ = json.Unmarshal(to, &b)
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		va, oka := fa[k]
		vb, okb := fb[k]
		switch {
		case !oka:
			out = append(out, fmt.Sprintf("%s: (unset) -> %s", k, vb))
		case !okb:
			out = append(out, fmt.Sprintf("%s: %s -> (unset)", k, va))
		case va != vb:
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, va, vb))
		}
	}
	sort.Strings(out)
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x, out)
		}
	case []any:
		for i, x := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}
