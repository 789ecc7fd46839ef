package raydash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raydeploy/sdk/internal/baseurl"
)

// ErrUnauthorized is matched (errors.Is) by an *HTTPError with status 401 or 403:
// the token is missing or wrong.
var ErrUnauthorized = errors.New("dashboard: unauthorized")

// ErrNotFound is matched (errors.Is) by an *HTTPError with status 404.
var ErrNotFound = errors.New("dashboard: not found")

// maxErrorBody bounds how much of a response body an HTTPError keeps.
const maxErrorBody = 1024

// maxBody bounds how much of a response body the client reads at all.
const maxBody = 64 << 20

// Config configures a Client.
type Config struct {
	// BaseURL is the dashboard's address, e.g. "http://10.0.0.1:8265".
	BaseURL string
	// Token is the Ray auth token (RAY_AUTH_MODE=token); empty when the
	// cluster has no token authentication.
	Token string
	// HTTPClient performs the requests; nil means a client with a 60 s timeout.
	// Its transport may tunnel (e.g. over SSH): the client never dials itself.
	HTTPClient *http.Client
	// Logger receives debug lines for each request; nil discards them.
	Logger *slog.Logger
}

// String describes the Config with the token redacted.
func (c Config) String() string {
	tok := ""
	if c.Token != "" {
		tok = "REDACTED"
	}
	return fmt.Sprintf("raydash.Config{BaseURL: %q, Token: %q}", c.BaseURL, tok)
}

// LogValue makes slog print the Config with the token redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.Bool("token_set", c.Token != ""),
	)
}

// Client talks to one Ray dashboard. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	token  string
	hc     *http.Client
	logger *slog.Logger
}

// New checks cfg and returns a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	u, err := baseurl.Parse(cfg.BaseURL)
	if err != nil {
		if errors.Is(err, baseurl.ErrCredentials) {
			return nil, fmt.Errorf("dashboard: %w; use Config.Token", err)
		}
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Client{base: u, token: cfg.Token, hc: hc, logger: lg}, nil
}

// BaseURL returns the dashboard address the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// HTTPError is a response from the dashboard with a non-2xx status.
type HTTPError struct {
	// Method and Path name the request (the path without the host).
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body (Ray puts its error text there).
	Body string
}

// Error describes the failed request.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("dashboard: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// Is reports ErrUnauthorized for 401/403 and ErrNotFound for 404.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// request sends one request and returns the body of a 2xx response.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, in any) ([]byte, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		var b []byte
		switch v := in.(type) {
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(in); err != nil {
				return nil, fmt.Errorf("dashboard: %s %s: encode request: %w", method, path, err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.logger.DebugContext(ctx, "dashboard request", "method", method, "path", path,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("dashboard: %s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := string(data)
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody] + "...(truncated)"
		}
		return nil, &HTTPError{Method: method, Path: path, Status: resp.StatusCode, Body: b}
	}
	return data, nil
}

// doJSON sends a request and decodes the JSON answer into out (when non-nil).
func (c *Client) doJSON(ctx context.Context, method, path string, query url.Values, in, out any) error {
	data, err := c.request(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("dashboard: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// envelope is the {"result": bool, "msg": "...", "data": {...}} wrapper of the
// dashboard's older and state endpoints.
type envelope[T any] struct {
	Result bool   `json:"result"`
	Msg    string `json:"msg"`
	Data   T      `json:"data"`
}

// getEnvelope GETs path and returns the data of an enveloped answer, failing
// when the envelope says result=false.
func getEnvelope[T any](ctx context.Context, c *Client, path string, query url.Values) (T, error) {
	var env envelope[T]
	if err := c.doJSON(ctx, http.MethodGet, path, query, nil, &env); err != nil {
		return env.Data, err
	}
	if !env.Result {
		return env.Data, &APIError{Path: path, Msg: env.Msg}
	}
	return env.Data, nil
}

// APIError is a 200 answer whose envelope says result=false.
type APIError struct {
	// Path is the request path.
	Path string
	// Msg is the envelope's msg field.
	Msg string
}

// Error describes the failure.
func (e *APIError) Error() string {
	return fmt.Sprintf("dashboard: GET %s: request failed: %s", e.Path, e.Msg)
}
