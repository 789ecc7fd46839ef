// Command api-server serves the REST API and web UI of one Ray cluster
// (package raydeploy/api) over HTTP or HTTPS.
//
//	api-server tokens create --tokens tokens.json --name alice --role approver
//	api-server --config cluster.yaml --tokens tokens.json
//	api-server --config cluster.yaml --tokens tokens.json --listen 0.0.0.0:8443 \
//	    --tls-cert server.pem --tls-key server.key --client-ca clients.pem
//
// It refuses a non-loopback --listen address without TLS unless
// --insecure-no-tls is given. It is a thin layer of flags over the library.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/raydeploy/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

type options struct {
	config, listen, tokens, tlsCert, tlsKey, clientCA, stateDir string
	insecure, selfApproval, verbose                             bool
	approvalTimeout                                             time.Duration
	cors                                                        multi
	webhook, webhookSecretFile                                  string
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// run is main without the process: ready, if set, receives the address
// listened on once the server accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	if len(args) > 0 && args[0] == "tokens" {
		return tokensCmd(args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("api-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "cluster definition `FILE` (YAML or an Ansible inventory.ini)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8000", "`ADDRESS` to listen on")
	fs.StringVar(&o.tokens, "tokens", "", "tokens `FILE` (0600; made by: api-server tokens create)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate `FILE` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key `FILE` (PEM)")
	fs.StringVar(&o.clientCA, "client-ca", "", "CA `FILE` (PEM): require client certificates signed by it (mTLS; needs --tls-cert)")
	fs.StringVar(&o.stateDir, "state-dir", "", "state `DIR` (overrides state_dir)")
	fs.BoolVar(&o.insecure, "insecure-no-tls", false, "allow a non-loopback --listen address without TLS (tokens then cross the network in clear text)")
	fs.BoolVar(&o.selfApproval, "allow-self-approval", false, "let the principal who started a run approve its steps")
	fs.DurationVar(&o.approvalTimeout, "approval-timeout", time.Hour, "how long an approval request waits")
	fs.Var(&o.cors, "cors-origin", "`ORIGIN` allowed to call the API from a browser (repeatable; none by default)")
	fs.StringVar(&o.webhook, "webhook", "", "`URL` told about approvals and finished runs (HMAC-signed)")
	fs.StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "`FILE` holding the webhook's HMAC secret")
	fs.BoolVar(&o.verbose, "v", false, "debug logs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "api-server:", err)
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, o, log, stdout, ready); err != nil {
		fmt.Fprintln(stderr, "api-server:", err)
		return 1
	}
	return 0
}

func (o *options) check() error {
	switch {
	case o.config == "":
		return errors.New("missing --config FILE")
	case o.tokens == "":
		return errors.New("missing --tokens FILE (create one: api-server tokens create --tokens FILE --name NAME --role admin)")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return errors.New("give --tls-cert and --tls-key together")
	case o.clientCA != "" && o.tlsCert == "":
		return errors.New("--client-ca needs --tls-cert and --tls-key")
	case (o.webhook == "") != (o.webhookSecretFile == ""):
		return errors.New("give --webhook and --webhook-secret-file together")
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", o.listen, err)
	}
	if o.tlsCert == "" && !o.insecure && !loopback(host) {
		return fmt.Errorf("--listen %s is not a loopback address: give --tls-cert and --tls-key, or --insecure-no-tls to serve tokens in clear text", o.listen)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serve(ctx context.Context, o options, log *slog.Logger, stdout io.Writer, ready chan<- string) error {
	c, warnings, err := raydeploy.Load(o.config)
	for _, w := range warnings {
		log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	if o.stateDir != "" {
		c.StateDir = o.stateDir
	}
	state := c.WithDefaults().StateDir
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	tokens, err := api.LoadTokens(o.tokens)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics, err := monitoring.NewMetrics(reg)
	if err != nil {
		return err
	}
	cfg := api.Config{Tokens: tokens, Registry: reg, ApprovalTimeout: o.approvalTimeout,
		AllowSelfApproval: o.selfApproval, CORSOrigins: o.cors, Logger: log}
	if o.webhook != "" {
		secret, err := os.ReadFile(o.webhookSecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err)
		}
		cfg.Webhooks = []api.Webhook{{URL: o.webhook, Secret: []byte(strings.TrimSpace(string(secret)))}}
	}
	srv, err := api.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	d, err := raydeploy.New(c, raydeploy.Options{Approver: srv.Approver(), Events: srv.EventSink(), // New opens the audit log; Attach shares it
		Metrics: metrics, Logger: log, ResumeCommand: "POST /api/v1/executions/{id}/resume"})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := srv.Attach(d); err != nil {
		return err
	}

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if o.clientCA != "" {
			pem, err := os.ReadFile(o.clientCA)
			if err != nil {
				return fmt.Errorf("client CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return errors.New("client CA: no certificate in the file")
			}
			hs.TLSConfig.ClientCAs, hs.TLSConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if hs.TLSConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	fmt.Fprintf(stdout, "serving cluster %s at %s://%s/ (OpenAPI: /api/v1/openapi.yaml)\n", c.Name, scheme, ln.Addr())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.Close() // interrupts a running execution (recorded as INTERRUPTED) and ends event streams
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

func tokensCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: api-server tokens create --tokens FILE --name NAME --role viewer|operator|approver|admin")
		return 2
	}
	fs := flag.NewFlagSet("api-server tokens create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("tokens", "", "tokens `FILE` (created 0600)")
	name := fs.String("name", "", "the token owner's `NAME` (the principal in the audit log)")
	role := fs.String("role", "", "`ROLE`: viewer, operator, approver or admin")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	r, err := api.ParseRole(*role)
	if err != nil || *file == "" || *name == "" {
		if err == nil {
			err = errors.New("give --tokens FILE and --name NAME")
		}
		fmt.Fprintln(stderr, "api-server tokens create:", err)
		return 2
	}
	tok, err := api.CreateToken(*file, *name, r)
	if err != nil {
		fmt.Fprintln(stderr, "api-server tokens create:", err)
		return 1
	}
	fmt.Fprintf(stderr, "token for %s (%s) added to %s; it is shown only now:\n", *name, r, *file)
	fmt.Fprintln(stdout, tok)
	return 0
}
