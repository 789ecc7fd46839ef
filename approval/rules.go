package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotApproved means the approver said no.
var ErrNotApproved = errors.New("not approved")

// Check applies the rules every decision must pass before its step may run,
// the one place they are written: the decision approves, covers exactly the
// request's plan digest, acknowledges the risks of a destructive step, and
// has not expired at now. A refusal gives an error wrapping ErrNotApproved
// that names who refused, where and why; a broken rule gives a *PolicyError
// whose Unwrap is ErrDigestMismatch, ErrRisksNotAcknowledged or ErrExpired.
func Check(r Request, d Decision, now time.Time) error {
	if d.Approved || d.PlanDigest != r.PlanDigest {
		return binding(r, d, now)
	}
	reason := d.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Errorf("%w by %s via %s: %s", ErrNotApproved, d.By, d.Channel, reason)
}

// binding holds the rules an approval must meet to bind to its request:
// digest, risks, expiry.
func binding(r Request, d Decision, now time.Time) error {
	fail := func(rule error, detail string) error {
		return &PolicyError{Checkpoint: r.Checkpoint, DecisionID: d.ID, Rule: rule, Detail: detail}
	}
	if d.PlanDigest != r.PlanDigest {
		return fail(ErrDigestMismatch, fmt.Sprintf("decision covers %q, plan is %q", d.PlanDigest, r.PlanDigest))
	}
	if r.Destructive && !d.RisksAcknowledged {
		return fail(ErrRisksNotAcknowledged, "")
	}
	if !d.ExpiresAt.IsZero() && now.After(d.ExpiresAt) {
		return fail(ErrExpired, "expired at "+d.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// ChannelFunc is the channel of decisions from an approver that set none
// (an embedder's ApproverFunc).
const ChannelFunc Channel = "func"

// Complete fills in what a decision takes from the request it answers, so
// that an approver need only decide: Approved, a Reason and, for a
// destructive checkpoint, RisksAcknowledged. Empty fields get: ID a new ID,
// RequestID and PlanDigest the request's (the decision covers the plan the
// approver was shown), DecidedAt now, By CurrentUser() and Channel
// ChannelFunc. Fields the approver set are kept, so a decision for another
// plan digest still fails Check.
func Complete(r Request, d Decision, now time.Time) Decision {
	if d.ID == "" {
		d.ID = NewID()
	}
	if d.RequestID == "" {
		d.RequestID = r.ID
	}
	if d.PlanDigest == "" {
		d.PlanDigest = r.PlanDigest
	}
	if d.DecidedAt.IsZero() {
		d.DecidedAt = now
	}
	if d.By == "" {
		d.By = CurrentUser()
	}
	if d.Channel == "" {
		d.Channel = ChannelFunc
	}
	return d
}

// Completed returns an Approver whose decisions (when a returns no error) are
// completed with Complete.
func Completed(a Approver) Approver {
	return ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		d, err := a.Approve(ctx, r)
		if err != nil {
			return d, err
		}
		return Complete(r, d, time.Now()), nil
	})
}
