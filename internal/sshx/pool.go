package sshx

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-multierror"
)

// Pool keeps one Conn per node, dialed on first use and shared by every
// later caller; concurrent first calls for a node make a single dial. A
// connection that was lost is redialed on the next Get. Jump hosts are
// pooled too, so many nodes behind one bastion share its connection, and
// every dial of one known_hosts file shares one HostKeys. One goroutine sends
// the keepalives of all its connections.
type Pool struct {
	mu       sync.Mutex
	entries  map[string]*poolEntry
	hostKeys map[string]*HostKeys
	closed   bool
	dials    atomic.Int64
	hooks    *dialHooks
	keepers  keepers // one keepalive sender for all the pool's connections
}

type poolEntry struct {
	ready chan struct{}
	conn  *Conn
	err   error
}

// NewPool returns an empty Pool.
func NewPool() *Pool {
	return &Pool{entries: map[string]*poolEntry{}, hostKeys: map[string]*HostKeys{}}
}

// Key identifies the connection cfg describes: user@host:port, plus the
// jump chain.
func Key(cfg Config) string {
	cfg = cfg.withDefaults()
	k := cfg.User + "@" + cfg.Addr()
	if cfg.Jump != nil {
		k += " via " + Key(*cfg.Jump)
	}
	return k
}

// Dials returns how many connections the pool has established.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Get returns the pool's connection for cfg, dialing it if needed.
func (p *Pool) Get(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.HostKeys == nil && cfg.KnownHostsFile != "" {
		cfg.HostKeys = p.sharedHostKeys(cfg.KnownHostsFile, cfg.TrustOnFirstUse)
	}
	key := Key(cfg)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("sshx: pool: %w", ErrClosed)
	}
	e := p.entries[key]
	if e != nil {
		select {
		case <-e.ready:
			if e.err != nil || e.conn.Err() != nil {
				e = nil // failed or lost: dial again
			}
		default:
		}
	}
	if e == nil {
		e = &poolEntry{ready: make(chan struct{})}
		p.entries[key] = e
		// The dial outlives a caller that gives up: others may wait for it.
		go p.dial(context.WithoutCancel(ctx), key, cfg, e)
	}
	p.mu.Unlock()

	select {
	case <-e.ready:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("sshx: connect to %s: %w", cfg.Addr(), ctx.Err())
	}
}

func (p *Pool) dial(ctx context.Context, key string, cfg Config, e *poolEntry) {
	defer close(e.ready)
	var jump *Conn
	if cfg.Jump != nil {
		jc := inheritJump(cfg)
		j, err := p.Get(ctx, jc)
		if err != nil {
			e.err = &DialError{Addr: cfg.Addr(), Via: jc.Addr(), Err: fmt.Errorf("jump host: %w", err)}
			p.forget(key, e)
			return
		}
		jump = j
	}
	c, err := dial(ctx, cfg, jump, p.hooks, &p.keepers)
	if err != nil {
		e.err = err
		p.forget(key, e)
		return
	}
	p.dials.Add(1)
	e.conn = c
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		_ = c.Close()
		e.conn, e.err = nil, fmt.Errorf("sshx: pool: %w", ErrClosed)
	}
}

// forget drops a failed entry so the next Get dials again.
func (p *Pool) forget(key string, e *poolEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries[key] == e {
		delete(p.entries, key)
	}
}

func (p *Pool) sharedHostKeys(path string, tofu bool) *HostKeys {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := fmt.Sprintf("%t %s", tofu, path)
	hk := p.hostKeys[k]
	if hk == nil {
		hk = NewHostKeys(path, tofu)
		p.hostKeys[k] = hk
	}
	return hk
}

// CloseAll closes every connection and makes later Gets fail.
func (p *Pool) CloseAll() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*poolEntry{}
	p.mu.Unlock()
	var result *multierror.Error
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			if err := e.conn.Close(); err != nil {
				result = multierror.Append(result, err)
			}
		}
	}
	return result.ErrorOrNil()
}
