package sshx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// CommandConn starts cmd on the node and returns its stdin (Write) and
// stdout (Read) as a net.Conn, e.g. for `docker system dial-stdio` or a
// streaming `docker load`. ctx bounds only the start. Close closes the
// command's stdin, then the session (the command gets SIGTERM if still
// running). Read returns io.EOF once the command's output ends.
// Deadlines are accepted and ignored: the stream has none.
func (c *Conn) CommandConn(ctx context.Context, cmd string, opts ...RunOption) (net.Conn, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	p, err := c.build(cmd, &o)
	if err != nil {
		return nil, err
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("sshx: command conn %q on %s: %w", p.display, c.addr, err)
	}
	inW, err := sess.StdinPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	outR, err := sess.StdoutPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	errR, err := sess.StderrPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	cc := &cmdConn{sess: sess, display: p.display, node: c.addr, log: c.log}
	if p.sudo == nil {
		cc.r, cc.w = outR, inW
		go func() { _, _ = io.Copy(&cc.stderr, errR) }()
	} else {
		p.sudo.stdin = inW
		pr, pw := io.Pipe()
		ur, uw := io.Pipe()
		cc.r, cc.w = pr, uw
		go func() { _ = p.sudo.filterStderr(errR, &cc.stderr) }()
		go func() {
			err := p.sudo.pumpStdout(outR, pw, ur)
			if ferr := p.sudo.failure(err); ferr != nil {
				_ = pw.CloseWithError(fmt.Errorf("sshx: %q on %s: %w", p.display, c.addr, ferr))
				return
			}
			_ = pw.CloseWithError(err)
		}()
	}
	if err := sess.Start(p.cmd); err != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("sshx: start %q on %s: %w", p.display, c.addr, c.wrapClosed(err))
	}
	return cc, nil
}

// cmdConn adapts a remote command's stdio to net.Conn.
type cmdConn struct {
	sess    *ssh.Session
	r       io.Reader
	w       io.WriteCloser
	stderr  lockedTail
	display string
	node    string
	log     *slog.Logger
	once    sync.Once
}

// Read reads the command's stdout.
func (cc *cmdConn) Read(p []byte) (int, error) { return cc.r.Read(p) }

// Write writes to the command's stdin.
func (cc *cmdConn) Write(p []byte) (int, error) { return cc.w.Write(p) }

// CloseWrite closes the command's stdin (half-close), as docker's
// dial-stdio clients expect.
func (cc *cmdConn) CloseWrite() error { return cc.w.Close() }

// Close ends the command.
func (cc *cmdConn) Close() error {
	cc.once.Do(func() {
		_ = cc.w.Close()
		_ = cc.sess.Signal(ssh.SIGTERM)
		_ = cc.sess.Close()
		if s := cc.stderr.String(); s != "" {
			cc.log.Debug("ssh command conn closed", slog.String("cmd", cc.display), slog.String("stderr", s))
		}
	})
	return nil
}

// LocalAddr returns a placeholder address.
func (cc *cmdConn) LocalAddr() net.Addr { return cmdAddr("local") }

// RemoteAddr names the node and the command.
func (cc *cmdConn) RemoteAddr() net.Addr { return cmdAddr(cc.node + " " + cc.display) }

// SetDeadline is a no-op.
func (cc *cmdConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op.
func (cc *cmdConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is a no-op.
func (cc *cmdConn) SetWriteDeadline(time.Time) error { return nil }

type cmdAddr string

func (a cmdAddr) Network() string { return "ssh-command" }
func (a cmdAddr) String() string  { return string(a) }

// lockedTail keeps the last stderrTailMax bytes written to it.
type lockedTail struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *lockedTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 2*stderrTailMax {
		b := t.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-stderrTailMax:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *lockedTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tail(t.buf.Bytes())
}
