package approval

import (
	"bufio"
	"context"
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
// Reading a line cannot be interrupted: when ctx ends while waiting, Approve
// returns at once and the pending read finishes in the background, consuming
// the next line typed.
type Terminal struct {
	In         io.Reader
	Out        io.Writer
	IsTerminal func() bool
	Identity   string
	Now        func() time.Time

	mu  sync.Mutex
	buf *bufio.Reader
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
	fmt.Fprintf(t.Out, "\n%s\nOnly 'yes' will be accepted to approve.\nApprove checkpoint %s? Enter a value: ", r.Render(), r.Checkpoint)
	ans, err := t.readLine(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("terminal approval of checkpoint %s: %w", r.Checkpoint, err)
	}
	if ans != "yes" {
		d.DecidedAt = now()
		d.Reason = "operator did not answer yes"
		fmt.Fprintf(t.Out, "Checkpoint %s not approved.\n", r.Checkpoint)
		return d, nil
	}
	if r.Destructive {
		fmt.Fprintf(t.Out, "To acknowledge the risks, type the checkpoint name (%s) or yes: ", r.Checkpoint)
		ack, err := t.readLine(ctx)
		if err != nil {
			return Decision{}, fmt.Errorf("terminal approval of checkpoint %s: %w", r.Checkpoint, err)
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

func (t *Terminal) readLine(ctx context.Context) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := t.buf.ReadString('\n')
		if err == io.EOF && s != "" {
			err = nil
		}
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return "", fmt.Errorf("read answer: %w", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
