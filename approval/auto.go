package approval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Auto approves without asking anyone. It exists only by explicit opt-in
// (NewAuto); its decisions carry channel "auto" and the configured identity so
// they are recorded like any other.
type Auto struct {
	identity         string
	allowDestructive bool
}

// NewAuto returns an auto-approver deciding as identity. Destructive checkpoints
// are refused with ErrAutoDestructive unless allowDestructive is true, in which
// case their risks count as acknowledged.
func NewAuto(identity string, allowDestructive bool) *Auto {
	if identity == "" {
		identity = CurrentUser()
	}
	return &Auto{identity: identity, allowDestructive: allowDestructive}
}

// Approve approves r, or refuses a destructive r when not allowed.
func (a *Auto) Approve(ctx context.Context, r Request) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if r.Destructive && !a.allowDestructive {
		return Decision{}, fmt.Errorf("auto approval of checkpoint %s: %w", r.Checkpoint, ErrAutoDestructive)
	}
	return Decision{
		ID: NewID(), RequestID: r.ID, Approved: true, By: a.identity,
		Reason: "auto-approved", RisksAcknowledged: r.Destructive,
		DecidedAt: time.Now(), Channel: ChannelAuto, PlanDigest: r.PlanDigest,
	}, nil
}

// FirstOf asks all approvers at once; the first one that returns a decision
// (approved or not) wins and the others are cancelled. If all of them fail,
// their errors are returned together (a *multierror.Error; errors.Is works on it).
func FirstOf(approvers ...Approver) Approver {
	return ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		if len(approvers) == 0 {
			return Decision{}, errors.New("first-of approval: no approvers")
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type res struct {
			d   Decision
			err error
		}
		ch := make(chan res, len(approvers))
		for _, a := range approvers {
			go func() {
				d, err := a.Approve(ctx, r)
				ch <- res{d, err}
			}()
		}
		var errs *multierror.Error
		for range approvers {
			x := <-ch
			if x.err == nil {
				return x.d, nil
			}
			errs = multierror.Append(errs, x.err)
		}
		return Decision{}, fmt.Errorf("first-of approval of checkpoint %s: %w", r.Checkpoint, errs.ErrorOrNil())
	})
}
