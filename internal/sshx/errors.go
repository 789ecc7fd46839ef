package sshx

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrAuthFailed means the node refused every credential offered.
	// It is never retried.
	ErrAuthFailed = errors.New("ssh authentication failed")
	// ErrHostKeyMismatch means the node presented a host key different from
	// the one recorded in known_hosts. It is never retried.
	ErrHostKeyMismatch = errors.New("ssh host key changed")
	// ErrHostKeyUnknown means the node is not in known_hosts and
	// trust-on-first-use is off. It is never retried.
	ErrHostKeyUnknown = errors.New("ssh host key unknown")
	// ErrNonRetryable marks errors that a retry cannot fix (authentication,
	// host keys, bad configuration). Every error matching ErrAuthFailed,
	// ErrHostKeyMismatch or ErrHostKeyUnknown also matches ErrNonRetryable.
	ErrNonRetryable = errors.New("not retryable")
	// ErrSudoFailed means sudo refused: wrong or missing password, or the
	// user may not use sudo.
	ErrSudoFailed = errors.New("sudo failed")
	// ErrClosed is returned when the connection is closed or was lost (for
	// example after keepalives went unanswered).
	ErrClosed = errors.New("ssh connection closed")
)

// nonRetryable wraps an error so that it also matches ErrNonRetryable.
type nonRetryable struct{ err error }

func (e *nonRetryable) Error() string        { return e.err.Error() }
func (e *nonRetryable) Unwrap() error        { return e.err }
func (e *nonRetryable) Is(target error) bool { return target == ErrNonRetryable }

// NonRetryable marks err so that errors.Is(err, ErrNonRetryable) holds and
// Dial does not retry it.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &nonRetryable{err: err}
}

// DialError is returned by Dial: it names the node and how many attempts
// were made.
type DialError struct {
	// Addr is the node's "host:port".
	Addr string
	// Via is the jump host's "host:port", if any.
	Via string
	// Attempts is how many connection attempts were made.
	Attempts int
	// Err is the last attempt's error.
	Err error
}

// Error implements error.
func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ssh %s", e.Addr)
	if e.Via != "" {
		fmt.Fprintf(&b, " via %s", e.Via)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// ExitError is returned by Run when the remote command exits non-zero or is
// killed by a signal.
type ExitError struct {
	// Cmd is the command as shown to people (see WithDisplay); environment
	// values and sudo passwords never appear in it.
	Cmd string
	// Status is the exit status (-1 when killed by a signal).
	Status int
	// Signal is the signal name when the command was killed by one.
	Signal string
	// Stderr is the tail of the command's standard error.
	Stderr string
}

// Error implements error.
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command %q ", e.Cmd)
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Status)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	return b.String()
}

// stderrTailMax bounds ExitError.Stderr.
const stderrTailMax = 2048

func tail(b []byte) string {
	if len(b) > stderrTailMax {
		return "..." + string(b[len(b)-stderrTailMax:])
	}
	return string(b)
}
