package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/sshx"
)

// dockerSocket is where the Docker Engine listens on every node.
const dockerSocket = "/var/run/docker.sock"

// connector holds one SSH connection and one Docker client per node for the
// life of a Deployer: every checkpoint reuses them.
type connector struct {
	cluster *Cluster
	pool    *sshx.Pool
	log     *slog.Logger

	mu      sync.Mutex
	engines map[string]*dockerx.Engine
	stdio   map[string]bool // nodes whose sshd refuses socket forwarding

	lastMu sync.Mutex
	last   map[string]*sshx.Conn // each node's latest SSH connection, for explain

	// onSSHError and onDockerError count transport failures (metrics); nil
	// when nobody counts.
	onSSHError, onDockerError func(kind string)
}

func newConnector(c *Cluster, log *slog.Logger) *connector {
	return &connector{
		cluster: c,
		pool:    sshx.NewPool(),
		log:     log,
		engines: map[string]*dockerx.Engine{},
		stdio:   map[string]bool{},
		last:    map[string]*sshx.Conn{},
	}
}

// sshConfig maps a node (with defaults applied) to the transport's config.
func (c *connector) sshConfig(n Node) (sshx.Config, error) {
	auth, err := sshAuth(n.Auth)
	if err != nil {
		return sshx.Config{}, err
	}
	cfg := sshx.Config{
		Host:            n.Address,
		Port:            n.Port,
		User:            n.User,
		Auth:            auth,
		KnownHostsFile:  c.cluster.SSH.KnownHostsFile,
		TrustOnFirstUse: c.cluster.SSH.TrustOnFirstUse,
		Logger:          c.log,
	}
	sshTimeouts(&cfg, c.cluster.SSH.Timeouts)
	if j := c.cluster.SSH.Jump; j != nil {
		jauth, err := sshAuth(j.Auth)
		if err != nil {
			return sshx.Config{}, err
		}
		cfg.Jump = &sshx.Config{Host: j.Address, Port: j.Port, User: j.User, Auth: jauth}
		sshTimeouts(cfg.Jump, c.cluster.SSH.Timeouts)
	}
	return cfg, nil
}

// sshTimeouts sets the transport's timeouts from the ssh.timeouts section
// (zero fields: the transport's defaults, which are the same).
func sshTimeouts(cfg *sshx.Config, t SSHTimeouts) {
	cfg.ConnectTimeout = time.Duration(t.Connect)
	cfg.KeepaliveInterval = time.Duration(t.KeepaliveInterval)
	cfg.KeepaliveTimeout = time.Duration(t.KeepaliveTimeout)
	cfg.Retry.MaxAttempts = t.ConnectAttempts
	cfg.Retry.MaxElapsed = time.Duration(t.ConnectTotal)
}

// sshAuth maps the config's credentials to the transport's; a
// sudo_password_file is read here, on every dial, so a changed file counts.
func sshAuth(a Auth) (sshx.Auth, error) {
	out := sshx.Auth{
		KeyFile:          a.KeyFile,
		KeyPassphraseEnv: a.KeyPassphraseEnv,
		Agent:            a.Agent,
		PasswordEnv:      a.PasswordEnv,
		Password:         sshx.Secret(a.Password.Reveal()),
		SudoPasswordEnv:  a.SudoPasswordEnv,
		SudoPassword:     sshx.Secret(a.SudoPassword.Reveal()),
	}
	if a.SudoPasswordFile != "" {
		pw, err := ReadSecretFile("sudo_password_file", a.SudoPasswordFile)
		if err != nil {
			return sshx.Auth{}, err
		}
		out.SudoPassword = sshx.Secret(pw.Reveal())
	}
	return out, nil
}

// ssh returns the node's SSH connection, dialing it on first use.
func (c *connector) ssh(ctx context.Context, n Node) (*sshx.Conn, error) {
	cfg, err := c.sshConfig(n)
	if err != nil {
		return nil, err
	}
	conn, err := c.pool.Get(ctx, cfg)
	if err != nil {
		if c.onSSHError != nil && ctx.Err() == nil {
			c.onSSHError(sshErrorKind(err))
		}
		return nil, &checkpoint.NodeError{Node: n.ID(), Op: "connect", Err: err}
	}
	c.lastMu.Lock()
	c.last[n.ID()] = conn
	c.lastMu.Unlock()
	return conn, nil
}

// lossGrace is how long explain waits for a connection's loss to be
// recorded: the transport's channels close a moment before the connection
// knows why.
const lossGrace = 500 * time.Millisecond

// explain adds to a node's failure what became of its connections when
// that was the cause: a lost SSH connection (with the reason: keepalive
// unanswered, closed by the node), or a Docker Engine that no longer
// answers on its socket, where the Docker client only says "EOF". It uses
// the connection the node already has and dials nothing new; err comes
// back unchanged when the connections are fine. The explanation goes
// inside the node's own NodeError, so errors.As and errors.Is still reach
// both err and the connection's error.
func (c *connector) explain(ctx context.Context, n Node, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, sshx.ErrClosed) {
		return err
	}
	c.lastMu.Lock()
	conn := c.last[n.ID()]
	c.lastMu.Unlock()
	if conn == nil {
		return err
	}
	grace := time.NewTimer(lossGrace)
	defer grace.Stop()
	select {
	case <-conn.Done():
	case <-grace.C:
	case <-ctx.Done():
	}
	var cause error
	if cerr := conn.Err(); cerr != nil {
		cause = fmt.Errorf("lost the SSH connection: %w", cerr)
	} else if strings.Contains(err.Error(), "error during connect") {
		sock, derr := conn.DialUnix(ctx, dockerSocket)
		if derr == nil {
			_ = sock.Close()
			return err
		}
		cause = fmt.Errorf("the Docker Engine does not answer on %s: %w", dockerSocket, derr)
	} else {
		return err
	}
	return annotate(n.ID(), err, cause)
}

// annotate puts cause beside err, inside the innermost NodeError of node
// that wraps err (where error printers look).
func annotate(node string, err, cause error) error {
	if ne, ok := err.(*checkpoint.NodeError); ok && ne.Node == node {
		return &checkpoint.NodeError{Node: ne.Node, Op: ne.Op, Err: annotate(node, ne.Err, cause)}
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// sshErrorKind classifies an SSH connection error for the metrics.
func sshErrorKind(err error) string {
	switch {
	case errors.Is(err, sshx.ErrAuthFailed):
		return "auth"
	case errors.Is(err, sshx.ErrHostKeyMismatch), errors.Is(err, sshx.ErrHostKeyUnknown):
		return "hostkey"
	}
	return "dial"
}

// docker returns a client of the node's Docker Engine that rides on the
// node's SSH connection: a direct-streamlocal channel to the Engine's socket,
// or `docker system dial-stdio` where the server refuses socket forwarding.
func (c *connector) docker(ctx context.Context, n Node) (*dockerx.Engine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.engines[n.ID()]; e != nil {
		return e, nil
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		conn, err := c.ssh(ctx, n)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		useStdio := c.stdio[n.ID()]
		c.mu.Unlock()
		if !useStdio {
			sock, err := conn.DialUnix(ctx, dockerSocket)
			if err == nil || !forwardingRefused(err) {
				return sock, err
			}
			stdio, serr := conn.CommandConn(ctx, "docker system dial-stdio")
			if serr != nil {
				return nil, errors.Join(err, serr)
			}
			c.log.Info("sshd refuses socket forwarding; using docker system dial-stdio", "node", n.ID())
			c.mu.Lock()
			c.stdio[n.ID()] = true
			c.mu.Unlock()
			return stdio, nil
		}
		return conn.CommandConn(ctx, "docker system dial-stdio")
	}
	if count := c.onDockerError; count != nil {
		inner := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := inner(ctx, network, addr)
			if err != nil && ctx.Err() == nil {
				count("dial")
			}
			return conn, err
		}
	}
	e, err := dockerx.New(dockerx.Options{Node: n.ID(), Dial: dial, Logger: c.log})
	if err != nil {
		return nil, &checkpoint.NodeError{Node: n.ID(), Op: "docker", Err: err}
	}
	c.engines[n.ID()] = e
	return e, nil
}

// forwardingRefused recognises sshd's refusal to open a streamlocal channel.
// OpenSSH answers "connect failed" both when AllowStreamLocalForwarding is off
// and when the socket cannot be opened, so any refusal is worth the
// dial-stdio fallback; if the Engine is really absent, that fails too.
func forwardingRefused(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce) || strings.Contains(err.Error(), "ssh: rejected")
}

// releaseIdle closes the node's idle Docker API connections (the client
// stays usable and dials again when next used).
func (c *connector) releaseIdle(n Node) {
	c.mu.Lock()
	e := c.engines[n.ID()]
	c.mu.Unlock()
	if e != nil {
		_ = e.Close()
	}
}

// reconnect drops the node's connection so that the next use dials a new
// login session (needed after the user was added to group docker).
func (c *connector) reconnect(ctx context.Context, n Node) {
	if conn, err := c.ssh(ctx, n); err == nil {
		_ = conn.Close()
	}
	c.mu.Lock()
	if e := c.engines[n.ID()]; e != nil {
		_ = e.Close()
		delete(c.engines, n.ID())
	}
	c.mu.Unlock()
}

// httpClient returns an HTTP client whose connections go through the node's
// SSH connection: "localhost" in URLs is the node itself, so nothing but SSH
// needs to be reachable from the controller.
func (c *connector) httpClient(n Node, timeout time.Duration) *http.Client {
	return c.sshHTTPClient(timeout, func(string) (Node, error) { return n, nil })
}

// routedHTTPClient returns an HTTP client that reaches each node's address
// through that node's own SSH connection, so URLs may use the nodes'
// addresses.
func (c *connector) routedHTTPClient(timeout time.Duration) *http.Client {
	byAddr := map[string]Node{}
	for _, n := range c.cluster.Nodes() {
		byAddr[n.Address] = n
	}
	return c.sshHTTPClient(timeout, func(host string) (Node, error) {
		n, ok := byAddr[host]
		if !ok {
			return Node{}, fmt.Errorf("no node has the address %s", host)
		}
		return n, nil
	})
}

// sshHTTPClient dials every HTTP connection through the SSH connection of the
// node that route picks for the URL's host.
func (c *connector) sshHTTPClient(timeout time.Duration, route func(host string) (Node, error)) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			n, err := route(host)
			if err != nil {
				return nil, err
			}
			conn, err := c.ssh(ctx, n)
			if err != nil {
				return nil, err
			}
			return conn.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// close closes every Docker client and SSH connection.
func (c *connector) close() error {
	c.mu.Lock()
	for _, e := range c.engines {
		_ = e.Close()
	}
	c.engines = map[string]*dockerx.Engine{}
	c.mu.Unlock()
	return c.pool.CloseAll()
}

// run runs a shell command on the node and returns its stdout.
func (c *connector) run(ctx context.Context, n Node, cmd string, opts ...sshx.RunOption) (string, error) {
	conn, err := c.ssh(ctx, n)
	if err != nil {
		return "", err
	}
	res, err := conn.Run(ctx, cmd, opts...)
	if err != nil {
		return string(res.Stdout), err
	}
	return string(res.Stdout), nil
}

// errIsNodeError reports whether err already names a node.
func errIsNodeError(err error) bool {
	var ne *checkpoint.NodeError
	return errors.As(err, &ne)
}

// nodeErr wraps err as a NodeError unless it already is one.
func nodeErr(n Node, op string, err error) error {
	if err == nil || errIsNodeError(err) {
		return err
	}
	return &checkpoint.NodeError{Node: n.ID(), Op: op, Err: fmt.Errorf("%w", err)}
}
