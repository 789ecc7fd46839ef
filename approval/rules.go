package approval

import (
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
