package approval

import (
	"context"
	"fmt"
	"time"
)

// Policy holds rules a Decision must satisfy beyond being approved. Always
// enforced (the rules of Check): the decision covers the request's plan
// digest, acknowledges the risks of a destructive checkpoint and has not
// expired. Optional rules below.
type Policy struct {
	// DistinctApprover demands that the approver differs from the requester.
	DistinctApprover bool
	// MaxAge refuses decisions made longer ago than this (0: no limit).
	MaxAge time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Check returns a *PolicyError when d does not satisfy the policy for r.
// A refusal (Approved false) passes Check unchanged: it is already a "no".
func (p Policy) Check(r Request, d Decision) error {
	if !d.Approved {
		return nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if err := binding(r, d, now()); err != nil {
		return err
	}
	fail := func(rule error, detail string) error {
		return &PolicyError{Checkpoint: r.Checkpoint, DecisionID: d.ID, Rule: rule, Detail: detail}
	}
	if p.DistinctApprover && d.By == r.RequestedBy {
		return fail(ErrSelfApproval, "both are "+d.By)
	}
	t := now()
	if p.MaxAge > 0 && t.Sub(d.DecidedAt) > p.MaxAge {
		return fail(ErrExpired, fmt.Sprintf("decided %s ago, limit %s", t.Sub(d.DecidedAt).Round(time.Second), p.MaxAge))
	}
	return nil
}

// Wrap returns an Approver that asks a and applies the policy to its decision.
// On a violation it returns the decision together with the *PolicyError.
func (p Policy) Wrap(a Approver) Approver {
	return ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		d, err := a.Approve(ctx, r)
		if err != nil {
			return d, err
		}
		if err := p.Check(r, d); err != nil {
			return d, err
		}
		return d, nil
	})
}
