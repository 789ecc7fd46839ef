package sshx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raydeploy/sdk/internal/fence"
	"golang.org/x/crypto/ssh"
)

// Result is what a finished command produced.
type Result struct {
	// Stdout is the command's standard output (nil when streamed with
	// WithStdout).
	Stdout []byte
	// Stderr is the command's standard error (nil when streamed with
	// WithStderr).
	Stderr []byte
	// ExitStatus is the exit status.
	ExitStatus int
}

// RunOption adjusts one Run, Upload or CommandConn.
type RunOption func(*runOptions)

type runOptions struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	env     map[string]string
	sudo    bool
	display string
	// killFirst makes a cancelled Run return only once the remote command
	// is known dead (or its session is gone), not as soon as the kill is
	// sent: Upload needs it, so that removing its temporary file cannot
	// race a write that is still starting.
	killFirst bool
}

// withKillFirst makes a cancelled Run wait for the remote command's end.
func withKillFirst() RunOption { return func(o *runOptions) { o.killFirst = true } }

// WithStdin feeds r to the command's standard input.
func WithStdin(r io.Reader) RunOption { return func(o *runOptions) { o.stdin = r } }

// WithStdout streams standard output to w instead of collecting it.
func WithStdout(w io.Writer) RunOption { return func(o *runOptions) { o.stdout = w } }

// WithStderr streams standard error to w instead of collecting it (ExitError
// then carries no stderr tail).
func WithStderr(w io.Writer) RunOption { return func(o *runOptions) { o.stderr = w } }

// WithEnv exports the variable name=value to the command. Values travel in
// the remote command line (visible to the node's process list): put secrets
// on stdin instead. Values never appear in errors or logs.
func WithEnv(name, value string) RunOption {
	return func(o *runOptions) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		o.env[name] = value
	}
}

// WithSudo runs the command as root through sudo (directly when the login
// user is root).
func WithSudo() RunOption { return func(o *runOptions) { o.sudo = true } }

// WithDisplay sets how the command is shown in logs and errors, for commands
// whose text should not be shown.
func WithDisplay(s string) RunOption { return func(o *runOptions) { o.display = s } }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Quote returns s quoted for a POSIX shell, as one word.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// plan is a command ready to start on the node.
type plan struct {
	cmd     string // what the node runs
	display string // what people see
	sudo    *sudoState
}

// build composes the remote command line.
func (c *Conn) build(cmd string, o *runOptions) (plan, error) {
	p := plan{display: cmd}
	if o.display != "" {
		p.display = o.display
	}
	inner := cmd
	if len(o.env) > 0 {
		names := make([]string, 0, len(o.env))
		for k := range o.env {
			if !envName.MatchString(k) {
				return plan{}, fmt.Errorf("sshx: invalid environment variable name %q", k)
			}
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, "export %s=%s; ", k, Quote(o.env[k]))
		}
		inner = b.String() + cmd
	}
	if o.sudo && c.cfg.User != "root" {
		s, err := newSudoState(c.password)
		if err != nil {
			return plan{}, err
		}
		p.sudo = s
		p.cmd = s.command(c.sudoPath, inner)
		p.display = "sudo " + p.display
		return p, nil
	}
	if len(o.env) > 0 {
		inner = "sh -c " + Quote(inner)
	}
	p.cmd = inner
	return p, nil
}

// pidTag starts the first stderr line of every Run: the session's process
// id, which is also its process group (sshd starts each session with
// setsid). A cancelled Run kills that group: sshd refuses "signal" requests
// on root logins, so closing the channel alone would leave the command
// running.
const pidTag = "raydeploy-session-pid:"

// pidCatcher passes writes through to w, except the leading pidTag line.
type pidCatcher struct {
	w    io.Writer
	buf  []byte
	done bool
	pid  atomic.Int64
	got  chan struct{} // closed once pid is known
}

func (p *pidCatcher) Write(b []byte) (int, error) {
	if p.done {
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	i := bytes.IndexByte(p.buf, '\n')
	if i < 0 {
		if len(p.buf) > len(pidTag)+24 {
			p.flush()
		}
		return len(b), nil
	}
	p.done = true
	line, rest := p.buf[:i], p.buf[i+1:]
	if v, ok := bytes.CutPrefix(line, []byte(pidTag)); ok {
		if pid, err := strconv.Atoi(string(v)); err == nil && pid > 1 {
			p.pid.Store(int64(pid))
			close(p.got)
		}
	} else {
		rest = p.buf
	}
	p.buf = nil
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// ReadFrom copies r through Write with a small buffer: io.Copy would
// allocate 32 KiB per session for what is mostly one short line.
func (p *pidCatcher) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1024)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			if _, werr := p.Write(buf[:n]); werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// flush passes on whatever was held back.
func (p *pidCatcher) flush() {
	if !p.done {
		p.done = true
		_, _ = p.w.Write(p.buf)
		p.buf = nil
	}
}

// killGroup kills the process group of a cancelled command on the node:
// SIGTERM (relayed by sudo to a command it runs), then SIGKILL.
func (c *Conn) killGroup(ctx context.Context, pid int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	sess, err := c.newSession(ctx)
	if err != nil {
		return
	}
	defer sess.Close()
	g := strconv.FormatInt(pid, 10)
	_ = sess.Run("kill -TERM -- -" + g + " 2>/dev/null; sleep 1; kill -KILL -- -" + g + " 2>/dev/null; true")
}

// Run runs cmd on the node and waits for it. A non-zero exit returns the
// Result and an *ExitError; a cancelled ctx kills the command (SIGKILL to
// its process group, then the channel is closed) and returns ctx.Err()
// wrapped. Output is collected unless streamed with WithStdout/WithStderr.
func (c *Conn) Run(ctx context.Context, cmd string, opts ...RunOption) (Result, error) {
	if err := fence.Check(ctx); err != nil {
		return Result{}, err
	}
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	p, err := c.build(cmd, &o)
	if err != nil {
		return Result{}, err
	}
	log := c.log.With(slog.String("cmd", p.display))
	sess, err := c.newSession(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("sshx: run %q on %s: %w", p.display, c.addr, err)
	}
	keepOpen := false
	defer func() {
		if !keepOpen {
			_ = sess.Close()
		}
	}()

	var outBuf, errBuf bytes.Buffer
	stdout, stderr := o.stdout, o.stderr
	if stdout == nil {
		stdout = &outBuf
	}
	if stderr == nil {
		stderr = &errBuf
	}
	stdin := o.stdin
	catcher := &pidCatcher{w: stderr, got: make(chan struct{})}
	p.cmd = "printf '" + pidTag + "%d\\n' $$ >&2; " + p.cmd

	var pumps sync.WaitGroup
	var sudoErr error
	if p.sudo == nil {
		sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, catcher
	} else {
		// sudo: answer its prompt ourselves, forward the caller's stdin only
		// once sudo has started the command.
		inW, err := sess.StdinPipe()
		if err != nil {
			return Result{}, err
		}
		outR, err := sess.StdoutPipe()
		if err != nil {
			return Result{}, err
		}
		errR, err := sess.StderrPipe()
		if err != nil {
			return Result{}, err
		}
		p.sudo.stdin = inW
		pumps.Add(2)
		go func() {
			defer pumps.Done()
			_ = p.sudo.filterStderr(errR, catcher)
		}()
		go func() {
			defer pumps.Done()
			sudoErr = p.sudo.pumpStdout(outR, stdout, stdin)
		}()
	}

	log.DebugContext(ctx, "ssh run")
	if err := sess.Start(p.cmd); err != nil {
		return Result{}, fmt.Errorf("sshx: start %q on %s: %w", p.display, c.addr, c.wrapClosed(err))
	}
	waited := make(chan error, 1)
	go func() {
		pumps.Wait()
		waited <- sess.Wait()
	}()
	var werr error
	select {
	case werr = <-waited:
		catcher.flush()
	case <-ctx.Done():
		// Kill the command: the signal request works where sshd allows it;
		// otherwise kill its process group once its pid is known, then
		// close the channel. Run returns now; the cleanup goes on.
		_ = sess.Signal(ssh.SIGKILL)
		keepOpen = true
		cleaned := make(chan struct{})
		go func() {
			defer close(cleaned)
			defer sess.Close()
			select {
			case <-catcher.got:
				log.DebugContext(ctx, "ssh run cancelled; killing its process group", slog.Int64("pid", catcher.pid.Load()))
				c.killGroup(ctx, catcher.pid.Load())
			case <-waited:
			case <-c.done:
			case <-time.After(10 * time.Second):
			}
		}()
		if o.killFirst {
			<-cleaned
		}
		return Result{}, fmt.Errorf("sshx: run %q on %s: %w", p.display, c.addr, ctx.Err())
	}
	res := Result{}
	if o.stdout == nil {
		res.Stdout = outBuf.Bytes()
	}
	if o.stderr == nil {
		res.Stderr = errBuf.Bytes()
	}
	if p.sudo != nil {
		if serr := p.sudo.failure(sudoErr); serr != nil {
			var ee *ssh.ExitError
			if errors.As(werr, &ee) {
				res.ExitStatus = ee.ExitStatus()
			}
			return res, fmt.Errorf("sshx: run %q on %s: %w: %s", p.display, c.addr, serr, strings.TrimSpace(tail(errBuf.Bytes())))
		}
	}
	if werr == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(werr, &ee) {
		res.ExitStatus = ee.ExitStatus()
		xe := &ExitError{Cmd: p.display, Status: ee.ExitStatus(), Stderr: tail(errBuf.Bytes())}
		if ee.Signal() != "" {
			xe.Status, xe.Signal = -1, ee.Signal()
			res.ExitStatus = -1
		}
		return res, xe
	}
	return res, fmt.Errorf("sshx: run %q on %s: %w", p.display, c.addr, c.wrapClosed(werr))
}

// Sudo runs cmd as root (see WithSudo).
func (c *Conn) Sudo(ctx context.Context, cmd string, opts ...RunOption) (Result, error) {
	return c.Run(ctx, cmd, append(opts, WithSudo())...)
}

// newSession opens a session, giving up when ctx ends.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type res struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, c.wrapClosed(r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				_ = r.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// sudoState drives one sudo invocation: sudo prints a random prompt on
// stderr when it wants the password, and the wrapped shell prints a random
// marker line on stdout once sudo let it run. The password is written to
// stdin only in answer to the prompt, and the caller's stdin only after the
// marker, so the password can neither reach the command's stdin (sudo
// without password) nor appear in argv or in the collected stderr.
type sudoState struct {
	password Secret
	prompt   string
	marker   string

	stdin io.WriteCloser

	mu       sync.Mutex
	prompts  int
	answered bool
	started  bool
}

func newSudoState(password Secret) (*sudoState, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tok := hex.EncodeToString(rnd[:])
	return &sudoState{
		password: password,
		prompt:   "[raydeploy-sudo-" + tok + "]",
		marker:   "raydeploy-sudo-ok-" + tok,
	}, nil
}

// command wraps inner in sudo. Without a password, sudo -n fails instead of
// prompting.
func (s *sudoState) command(sudoPath, inner string) string {
	script := "echo " + s.marker + "; " + inner
	if s.password == "" {
		return sudoPath + " -n -- sh -c " + Quote(script)
	}
	return sudoPath + " -S -p " + Quote(s.prompt) + " -- sh -c " + Quote(script)
}

// filterStderr copies r to w without the prompts, answering the first
// prompt with the password; a second prompt means the password was wrong:
// stdin is closed so that sudo gives up.
func (s *sudoState) filterStderr(r io.Reader, w io.Writer) error {
	buf := make([]byte, 32*1024)
	var pending []byte
	keep := len(s.prompt) - 1
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, []byte(s.prompt))
			if i < 0 {
				break
			}
			_, _ = w.Write(pending[:i])
			pending = pending[i+len(s.prompt):]
			s.onPrompt()
		}
		if err != nil {
			_, _ = w.Write(pending)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(pending) > keep {
			_, _ = w.Write(pending[:len(pending)-keep])
			pending = append(pending[:0], pending[len(pending)-keep:]...)
		}
	}
}

func (s *sudoState) onPrompt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prompts++
	if s.prompts == 1 && s.password != "" {
		_, _ = io.WriteString(s.stdin, s.password.Reveal()+"\n")
		s.answered = true
		return
	}
	_ = s.stdin.Close()
}

// pumpStdout waits for the marker line, then forwards the caller's stdin
// to the command and the rest of r to w.
func (s *sudoState) pumpStdout(r io.Reader, w io.Writer, stdin io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if strings.TrimSuffix(line, "\n") == s.marker {
			break
		}
		if len(line) > 0 {
			_, _ = io.WriteString(w, line)
		}
		if err != nil {
			_ = s.stdin.Close()
			return nil
		}
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	go func() {
		if stdin != nil {
			_, _ = io.Copy(s.stdin, stdin)
		}
		_ = s.stdin.Close()
	}()
	_, err := io.Copy(w, br)
	return err
}

// failure reports why sudo did not run the command, or nil if it did.
func (s *sudoState) failure(pumpErr error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	switch {
	case s.prompts > 1:
		return fmt.Errorf("%w: the sudo password was refused", ErrSudoFailed)
	case s.prompts == 1 && s.password == "":
		return fmt.Errorf("%w: sudo asks for a password and none is configured (set Auth.Password or Auth.PasswordEnv)", ErrSudoFailed)
	case pumpErr != nil:
		return fmt.Errorf("%w: %v", ErrSudoFailed, pumpErr)
	default:
		return fmt.Errorf("%w: sudo did not run the command", ErrSudoFailed)
	}
}
