package approval

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Terminal asks a person at the controlling terminal. Only the literal answer
// "yes" approves; a destructive checkpoint also needs its risks acknowledged by
// typing the checkpoint name (or "yes") to a second question.
//
// Reading a line cannot be interrupted: when ctx ends while waiting (another
// channel decided first), Approve says the question is withdrawn and returns
// at once, and the read stays pending. The next question takes over that
// same read (there is never more than one), so the next answer goes to the
// next question. A line already read when a question is shown (typed while
// none was) is dropped, not taken as its answer.
type Terminal struct {
	// In is where answers are read from, a line each.
	In io.Reader
	// Out is where the plan and the questions are written.
	Out io.Writer
	// IsTerminal reports whether In is a terminal; nil or false refuses
	// every request with ErrNotTerminal.
	IsTerminal func() bool
	// Identity names who answers; it becomes the Decision's By.
	Identity string
	// Now stamps DecidedAt (nil: time.Now).
	Now func() time.Time

	mu      sync.Mutex
	buf     *bufio.Reader
	pending chan lineRead // the read in flight, if any (guarded by mu)
}

type lineRead struct {
	s   string
	err error
	at  time.Time
}

// NewTerminal returns a Terminal on os.Stdin and os.Stderr, approving as CurrentUser.
func NewTerminal() *Terminal {
	return &Terminal{
		In:         os.Stdin,
		Out:        os.Stderr,
		IsTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		Identity:   CurrentUser(),
		Now:        time.Now,
	}
}

// Approve shows the plan and asks.
func (t *Terminal) Approve(ctx context.Context, r Request) (Decision, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.IsTerminal == nil || !t.IsTerminal() {
		return Decision{}, fmt.Errorf("terminal approval of checkpoint %s: %w", r.Checkpoint, ErrNotTerminal)
	}
	if t.buf == nil {
		t.buf = bufio.NewReader(t.In)
	}
	now := t.Now
	if now == nil {
		now = time.Now
	}
	d := Decision{ID: NewID(), RequestID: r.ID, By: t.Identity, Channel: ChannelTerminal, PlanDigest: r.PlanDigest}
	t.dropStale()
	asked := time.Now()
	fmt.Fprintf(t.Out, "\n%s\nOnly 'yes' will be accepted to approve.\nApprove checkpoint %s? Enter a value: ", r.Render(), r.Checkpoint)
	ans, err := t.readLine(ctx, asked)
	if err != nil {
		return Decision{}, t.withdrawn(r, err)
	}
	if ans != "yes" {
		d.DecidedAt = now()
		d.Reason = "operator did not answer yes"
		fmt.Fprintf(t.Out, "Checkpoint %s not approved.\n", r.Checkpoint)
		return d, nil
	}
	if r.Destructive {
		asked := time.Now()
		fmt.Fprintf(t.Out, "To acknowledge the risks, type the checkpoint name (%s) or yes: ", r.Checkpoint)
		ack, err := t.readLine(ctx, asked)
		if err != nil {
			return Decision{}, t.withdrawn(r, err)
		}
		if ack != r.Checkpoint && ack != "yes" {
			d.DecidedAt = now()
			d.Reason = "risks not acknowledged"
			fmt.Fprintf(t.Out, "Checkpoint %s not approved: risks not acknowledged.\n", r.Checkpoint)
			return d, nil
		}
		d.RisksAcknowledged = true
	}
	d.Approved = true
	d.DecidedAt = now()
	d.Reason = "approved at the terminal"
	return d, nil
}

// dropStale discards a line the pending read already delivered: it was
// typed while no question was shown.
func (t *Terminal) dropStale() {
	if t.pending == nil {
		return
	}
	select {
	case r := <-t.pending:
		t.pending = nil
		if r.err == nil {
			fmt.Fprintf(t.Out, "(ignored %q, typed while no question was shown)\n", r.s)
		} else {
			t.pending = make(chan lineRead, 1) // keep the error for the next read
			t.pending <- r
		}
	default:
	}
}

// withdrawn reports a question that got no answer; when ctx ended (another
// channel decided) the person is told not to answer it.
func (t *Terminal) withdrawn(r Request, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(t.Out, "\n(question about checkpoint %s withdrawn: %v)\n", r.Checkpoint, err)
	}
	return fmt.Errorf("terminal approval of checkpoint %s: %w", r.Checkpoint, err)
}

// readLine returns the first line typed after asked. It starts a read only
// when none is in flight; lines that arrived before asked (typed while no
// question was shown) are dropped. Callers hold t.mu.
func (t *Terminal) readLine(ctx context.Context, asked time.Time) (string, error) {
	for {
		if t.pending == nil {
			ch, buf := make(chan lineRead, 1), t.buf
			t.pending = ch
			go func() {
				s, err := buf.ReadString('\n')
				if err == io.EOF && s != "" {
					err = nil
				}
				ch <- lineRead{strings.TrimSpace(s), err, time.Now()}
			}()
		}
		select {
		case r := <-t.pending:
			t.pending = nil
			if r.err != nil {
				return "", fmt.Errorf("read answer: %w", r.err)
			}
			if r.at.Before(asked) {
				fmt.Fprintf(t.Out, "(ignored %q, typed before this question)\n", r.s)
				continue
			}
			return r.s, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
