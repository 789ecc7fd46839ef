package approval

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe for the prompt writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
	ch chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.sb.Write(p)
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// waitFor blocks until the output holds want n times.
func (b *syncBuffer) waitFor(t *testing.T, ctx context.Context, want string, n int) {
	t.Helper()
	for strings.Count(b.String(), want) < n {
		select {
		case <-b.ch:
		case <-ctx.Done():
			t.Fatalf("output never showed %q %d times:\n%s", want, n, b.String())
		}
	}
}

// TestTerminalAfterFileApproval: the file channel approves while the
// terminal waits; the operator's answer to the next question goes to that
// question (before: the first question's abandoned read swallowed it, and
// the race detector saw two reads of one buffer).
func TestTerminalAfterFileApproval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard only
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	out := &syncBuffer{ch: make(chan struct{}, 1)}
	term := &Terminal{In: pr, Out: out, IsTerminal: func() bool { return true }, Identity: "op"}
	prompt := "Approve checkpoint cleanup-existing?"

	file := ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		out.waitFor(t, ctx, prompt, 1) // the terminal asks first
		return Decision{ID: "f", Approved: true, By: "file-person", Channel: ChannelFile, PlanDigest: r.PlanDigest}, nil
	})
	d, err := FirstOf(term, file).Approve(ctx, request(false))
	if err != nil || d.Channel != ChannelFile {
		t.Fatalf("first approval: %+v, %v", d, err)
	}
	out.waitFor(t, ctx, "withdrawn", 1)

	// The next question: the operator answers "no" after seeing it; the
	// read left pending by the withdrawn question must hand it over.
	done := make(chan Decision, 1)
	errc := make(chan error, 1)
	go func() {
		d, err := term.Approve(ctx, request(false))
		done <- d
		errc <- err
	}()
	out.waitFor(t, ctx, prompt, 2)
	if _, err := io.WriteString(pw, "no\n"); err != nil {
		t.Fatal(err)
	}
	d, err = <-done, <-errc
	if err != nil || d.Approved || d.Reason != "operator did not answer yes" {
		t.Fatalf("second question: %+v, %v", d, err)
	}

	// And a third: "yes" typed after it approves.
	go func() {
		d, err := term.Approve(ctx, request(false))
		done <- d
		errc <- err
	}()
	out.waitFor(t, ctx, prompt, 3)
	if _, err := io.WriteString(pw, "yes\n"); err != nil {
		t.Fatal(err)
	}
	if d, err := <-done, <-errc; err != nil || !d.Approved {
		t.Fatalf("third question: %+v, %v", d, err)
	}
}
