package sshx

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// maxKeepalivesInFlight bounds the keepalive requests a keeper has
// outstanding at once, so a sweep over a thousand connections does not start
// a thousand goroutines.
const maxKeepalivesInFlight = 32

// keeper sends keepalive@openssh.com on every connection it holds, one
// sweep per interval from a single goroutine (running only while it holds
// connections): a Pool of a thousand nodes costs one goroutine and one
// ticker, not one each per connection. A request not answered within the
// timeout closes its connection, through a timer rather than a waiting
// goroutine.
type keeper struct {
	interval time.Duration
	timeout  time.Duration
	sem      chan struct{}

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	running bool
}

func newKeeper(p keepalivePolicy) *keeper {
	return &keeper{interval: p.interval, timeout: p.timeout, sem: make(chan struct{}, maxKeepalivesInFlight), conns: map[*Conn]struct{}{}}
}

// keepalivePolicy is how often keepalives go out and how long one may go
// unanswered.
type keepalivePolicy struct{ interval, timeout time.Duration }

// add starts keeping c alive until it closes.
func (k *keeper) add(c *Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conns[c] = struct{}{}
	if !k.running {
		k.running = true
		go k.loop()
	}
}

func (k *keeper) remove(c *Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, c)
}

func (k *keeper) loop() {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	var due []*Conn
	for range t.C {
		k.mu.Lock()
		if len(k.conns) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		due = due[:0]
		for c := range k.conns {
			due = append(due, c)
		}
		k.mu.Unlock()
		for _, c := range due {
			if c.Err() != nil || !c.kaInflight.CompareAndSwap(false, true) {
				continue // closed, or the last request is still out
			}
			k.sem <- struct{}{}
			go k.ping(c)
		}
	}
}

// ping sends one keepalive and closes c when it fails or is not answered
// within the timeout.
func (k *keeper) ping(c *Conn) {
	defer func() { <-k.sem }()
	defer c.kaInflight.Store(false)
	var answered atomic.Bool
	timer := time.AfterFunc(k.timeout, func() {
		if !answered.Load() {
			c.log.Warn("ssh keepalive unanswered; closing connection", slog.Duration("waited", k.timeout))
			c.closeWith(fmt.Errorf("%w: %s: no answer to keepalive within %s", ErrClosed, c.addr, k.timeout))
		}
	})
	_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
	answered.Store(true)
	timer.Stop()
	if err == nil {
		c.kaSent.Add(1)
	}
	if err != nil && c.Err() == nil {
		c.log.Warn("ssh keepalive failed; closing connection", slog.Any("error", err))
		c.closeWith(fmt.Errorf("%w: %s: keepalive failed: %v", ErrClosed, c.addr, err))
	}
}

// keepers hands out one keeper per policy (a Pool's connections may ask
// for different ones).
type keepers struct {
	mu sync.Mutex
	by map[keepalivePolicy]*keeper
}

func (ks *keepers) get(p keepalivePolicy) *keeper {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.by == nil {
		ks.by = map[keepalivePolicy]*keeper{}
	}
	k := ks.by[p]
	if k == nil {
		k = newKeeper(p)
		ks.by[p] = k
	}
	return k
}
