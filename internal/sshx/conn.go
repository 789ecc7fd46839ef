package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/crypto/ssh"
)

// Conn is one SSH connection to a node, shared by every step that talks to
// it. It is safe for concurrent use: each Run, Upload or dial opens its own
// channel on the connection.
type Conn struct {
	cfg      Config
	addr     string
	client   *ssh.Client
	jump     *Conn
	ownsJump bool
	log      *slog.Logger
	password Secret
	sudoPath string
	hostKey  ssh.PublicKey // the key the server proved, verified against known_hosts
	keeper   *keeper       // sends its keepalives (nil: none)

	kaInflight atomic.Bool  // a keepalive request is out
	kaSent     atomic.Int64 // keepalive requests answered

	closeOnce sync.Once
	done      chan struct{}
	errMu     sync.Mutex
	err       error
}

// dialHooks lets tests observe dial attempts.
type dialHooks struct {
	attempt func(n int, err error)
}

// Dial connects to the node described by cfg: through cfg.Jump if set,
// verifying the host key, retrying transient failures (refused, reset,
// timeout) with exponential backoff and never retrying authentication or
// host key failures. Errors are *DialError.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	return dial(ctx, cfg, nil, nil, nil)
}

// dial connects; jump, when non-nil, is a connected bastion not owned by the
// result (Pool shares it); ks, when non-nil, shares keepalive senders
// between connections (nil: the connection gets its own).
func dial(ctx context.Context, cfg Config, jump *Conn, hooks *dialHooks, ks *keepers) (*Conn, error) {
	cfg = cfg.withDefaults()
	addr := cfg.Addr()
	if err := cfg.validate(); err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	hk := cfg.HostKeys
	if hk == nil {
		hk = NewHostKeys(cfg.KnownHostsFile, cfg.TrustOnFirstUse)
		cfg.HostKeys = hk
	}
	ownsJump := false
	if jump == nil && cfg.Jump != nil {
		jc := inheritJump(cfg)
		j, err := dial(ctx, jc, nil, hooks, ks)
		if err != nil {
			return nil, &DialError{Addr: addr, Via: jc.Addr(), Err: fmt.Errorf("jump host: %w", err)}
		}
		jump, ownsJump = j, true
	}
	via := ""
	if jump != nil {
		via = jump.addr
	}
	fail := func(attempts int, err error) (*Conn, error) {
		if ownsJump {
			_ = jump.Close()
		}
		return nil, &DialError{Addr: addr, Via: via, Attempts: attempts, Err: err}
	}

	methods, cleanup, err := cfg.Auth.authMethods()
	if err != nil {
		return fail(0, err)
	}
	defer cleanup()
	algos := hk.Algorithms(addr)
	verify := hk.Callback(addr)
	var hostKey atomic.Pointer[ssh.PublicKey]
	clientCfg := &ssh.ClientConfig{
		User: cfg.User,
		Auth: methods,
		HostKeyCallback: func(h string, remote net.Addr, key ssh.PublicKey) error {
			if err := verify(h, remote, key); err != nil {
				return err
			}
			hostKey.Store(&key)
			return nil
		},
		HostKeyAlgorithms: algos,
	}

	log := cfg.Logger.With(slog.String("node", addr))
	var attempts int
	var lastErr error
	var ec *endConn
	op := func() (*ssh.Client, error) {
		attempts++
		c, e, err := attempt(ctx, cfg, addr, jump, clientCfg, algos != nil)
		ec = e
		if hooks != nil && hooks.attempt != nil {
			hooks.attempt(attempts, err)
		}
		if err != nil {
			lastErr = err
			if errors.Is(err, ErrNonRetryable) || ctx.Err() != nil {
				return nil, backoff.Permanent(err)
			}
			log.DebugContext(ctx, "ssh dial attempt failed", slog.Int("attempt", attempts), slog.Any("error", err))
			return nil, err
		}
		return c, nil
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = cfg.Retry.InitialInterval
	eb.MaxElapsedTime = cfg.Retry.MaxElapsed
	var bo backoff.BackOff = eb
	if cfg.Retry.MaxAttempts > 0 {
		bo = backoff.WithMaxRetries(eb, uint64(cfg.Retry.MaxAttempts-1))
	}
	client, err := backoff.RetryWithData(op, backoff.WithContext(bo, ctx))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (last error: %v)", cerr, lastErr)
		}
		return fail(attempts, err)
	}
	c := &Conn{
		cfg:      cfg,
		addr:     addr,
		client:   client,
		jump:     jump,
		ownsJump: ownsJump,
		log:      log,
		password: cfg.Auth.sudoPassword(),
		sudoPath: "sudo",
		done:     make(chan struct{}),
	}
	if k := hostKey.Load(); k != nil {
		c.hostKey = *k
	}
	// No goroutine waits for the end: the connection's reads report it.
	ec.onEnd(func(err error) { c.closeWith(fmt.Errorf("%w: %s: %v", ErrClosed, addr, err)) })
	if cfg.KeepaliveInterval > 0 {
		kp := keepalivePolicy{interval: cfg.KeepaliveInterval, timeout: cfg.KeepaliveTimeout}
		c.keeper = newKeeper(kp)
		if ks != nil {
			c.keeper = ks.get(kp)
		}
		c.keeper.add(c)
	}
	log.DebugContext(ctx, "ssh connected", slog.Int("attempts", attempts), slog.String("via", via))
	return c, nil
}

// inheritJump returns the jump host's config with the target's host key
// settings and logger where the jump config leaves them empty.
func inheritJump(cfg Config) Config {
	jc := *cfg.Jump
	if jc.KnownHostsFile == "" && jc.HostKeys == nil {
		jc.HostKeys = cfg.HostKeys
	}
	if jc.Logger == nil {
		jc.Logger = cfg.Logger
	}
	return jc
}

// attempt makes one connection attempt: TCP (or a direct-tcpip channel of
// the jump host) and the SSH handshake, bounded by ConnectTimeout and ctx.
func attempt(ctx context.Context, cfg Config, addr string, jump *Conn, clientCfg *ssh.ClientConfig, restricted bool) (*ssh.Client, *endConn, error) {
	actx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if jump != nil {
		nc, err = jump.client.DialContext(actx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(actx, "tcp", addr)
	}
	if err != nil {
		return nil, nil, classify(addr, err, restricted)
	}
	ec := &endConn{Conn: nc}
	stop := context.AfterFunc(actx, func() { _ = nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(ec, addr, clientCfg)
	if !stop() {
		if err == nil {
			_ = sc.Close()
		}
		_ = nc.Close()
		if ctx.Err() == nil {
			return nil, nil, fmt.Errorf("ssh handshake: no answer within %s: %w", cfg.ConnectTimeout, actx.Err())
		}
		return nil, nil, fmt.Errorf("ssh handshake: %w", actx.Err())
	}
	if err != nil {
		_ = nc.Close()
		return nil, nil, classify(addr, err, restricted)
	}
	return ssh.NewClient(sc, chans, reqs), ec, nil
}

// classify maps a dial error to our sentinels and says whether it may be
// retried.
func classify(addr string, err error, restricted bool) error {
	if errors.Is(err, ErrNonRetryable) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "no common public key signature algorithm"):
		return NonRetryable(fmt.Errorf("%w: %s refused the credentials offered (%v): check Config.User and "+
			"that the public key is in the user's ~/.ssh/authorized_keys on the node", ErrAuthFailed, addr, err))
	case restricted && strings.Contains(msg, "no common algorithm for host key"):
		return NonRetryable(fmt.Errorf("%w: %s offers none of the host key types recorded for it in known_hosts "+
			"(%v): if the machine was reinstalled, remove its old line with ssh-keygen -R", ErrHostKeyMismatch, addr, err))
	case strings.Contains(msg, "no common algorithm"):
		return NonRetryable(fmt.Errorf("sshx: %s: %w", addr, err))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return NonRetryable(fmt.Errorf("sshx: resolve %s: %w", addr, err))
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("connection refused: is sshd running on %s and the port open? (%w)", addr, err)
	}
	var ocErr *ssh.OpenChannelError
	if errors.As(err, &ocErr) {
		return fmt.Errorf("jump host could not connect to %s: %w", addr, err)
	}
	return err
}

// Addr returns the node's "host:port".
func (c *Conn) Addr() string { return c.addr }

// HostKey returns the node's host key, as verified when connecting.
func (c *Conn) HostKey() ssh.PublicKey { return c.hostKey }

// User returns the login user.
func (c *Conn) User() string { return c.cfg.User }

// Client returns the underlying SSH client.
func (c *Conn) Client() *ssh.Client { return c.client }

// Done is closed when the connection is closed or lost.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close closes the connection (and the jump connection it owns).
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		if c.err == nil {
			c.err = fmt.Errorf("%w: %s: closed by the caller", ErrClosed, c.addr)
		}
		c.errMu.Unlock()
		close(c.done)
		if c.keeper != nil {
			c.keeper.remove(c)
		}
		err = c.client.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if c.ownsJump {
			if jerr := c.jump.Close(); jerr != nil && err == nil {
				err = jerr
			}
		}
	})
	return err
}

// closeWith closes the connection recording why.
func (c *Conn) closeWith(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	_ = c.Close()
}

// DialContext opens a connection from the node to addr ("tcp": host:port as
// seen from the node; "unix": a socket path on the node).
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "unix" {
		return c.DialUnix(ctx, addr)
	}
	nc, err := c.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("sshx: dial %s %s on node %s: %w", network, addr, c.addr, c.wrapClosed(err))
	}
	return nc, nil
}

// DialUnix opens a connection to the unix socket at socketPath on the node
// (direct-streamlocal@openssh.com), e.g. /var/run/docker.sock.
func (c *Conn) DialUnix(ctx context.Context, socketPath string) (net.Conn, error) {
	nc, err := c.client.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("sshx: dial unix socket %s on node %s: %w", socketPath, c.addr, c.wrapClosed(err))
	}
	return nc, nil
}

// wrapClosed makes errors caused by a lost connection match ErrClosed.
func (c *Conn) wrapClosed(err error) error {
	if cerr := c.Err(); cerr != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %v", ErrClosed, c.addr, err)
	}
	return err
}

// endConn is the network connection under an SSH client: it reports the
// connection's end (the first failed read, or a close) once, so that no
// goroutine per connection has to wait for it.
type endConn struct {
	net.Conn
	mu   sync.Mutex
	err  error       // why it ended (nil: still up)
	hook func(error) // told once, on a goroutine of its own
}

func (e *endConn) Read(b []byte) (int, error) {
	n, err := e.Conn.Read(b)
	if err != nil {
		e.ended(err)
	}
	return n, err
}

func (e *endConn) Close() error {
	err := e.Conn.Close()
	e.ended(net.ErrClosed)
	return err
}

func (e *endConn) ended(err error) {
	e.mu.Lock()
	if e.err != nil {
		e.mu.Unlock()
		return
	}
	e.err = err
	h := e.hook
	e.mu.Unlock()
	if h != nil {
		go h(err) // not on the reader's stack: closing waits for the reader
	}
}

// onEnd calls h once the connection ended (at once if it already has).
func (e *endConn) onEnd(h func(error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		go h(e.err)
		return
	}
	e.hook = h
}
