package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
)

// Channel names the way a Decision was obtained.
type Channel string

// The channels a Decision can come from.
const (
	ChannelTerminal Channel = "terminal"
	ChannelFile     Channel = "file"
	ChannelQueue    Channel = "queue"
	ChannelAuto     Channel = "auto"
)

// Request asks whether a checkpoint may run a given plan.
type Request struct {
	// ID identifies the request (NewID; Audited and Queue fill it in when empty).
	ID string `json:"id"`
	// Checkpoint is the name of the checkpoint that asks to run.
	Checkpoint string `json:"checkpoint"`
	// Description is the checkpoint's description for people (empty: none).
	Description string `json:"description,omitempty"`
	// Destructive is true when the checkpoint removes what cannot be
	// restored; an approval must then acknowledge its risks.
	Destructive bool `json:"destructive"`
	// Risks lists what could go wrong, for people (empty: the checkpoint
	// describes none).
	Risks []string `json:"risks,omitempty"`
	// Plan is the changes the checkpoint would make, one item per node and action.
	Plan []PlanItem `json:"plan"`
	// PlanDigest is PlanDigest(Checkpoint, Plan), "sha256:<hex>"; a
	// decision must carry the same digest to approve this plan.
	PlanDigest string `json:"plan_digest"`
	// RequestedBy names who asks (checkpoint.WithRequester or the Runner's
	// RequestedBy); Policy.DistinctApprover compares the approver with it.
	RequestedBy string `json:"requested_by,omitempty"`
	// RequestedAt is when the request was made (UTC); Queue.Pending orders by it.
	RequestedAt time.Time `json:"requested_at"`
}

// Decision answers a Request. A Decision covers exactly the plan whose digest it carries.
type Decision struct {
	// ID identifies the decision (NewID); an approval file is archived under it.
	ID string `json:"id"`
	// RequestID is the ID of the Request answered (empty: the approver set
	// none; Complete fills it in).
	RequestID string `json:"request_id,omitempty"`
	// Approved is true for an approval, false for a refusal.
	Approved bool `json:"approved"`
	// By names who decided: the person, the API principal or the Auto identity.
	By string `json:"by"`
	// Reason is why, in the decider's words (empty: none given).
	Reason string `json:"reason,omitempty"`
	// RisksAcknowledged is true when the decider acknowledged the risks of
	// a destructive checkpoint; approving one requires it.
	RisksAcknowledged bool `json:"risks_acknowledged"`
	// DecidedAt is when the decision was made (from an approval file: its
	// approved_at); Policy.MaxAge counts from it.
	DecidedAt time.Time `json:"decided_at"`
	// Channel is how the decision was obtained.
	Channel Channel `json:"channel"`
	// PlanDigest is the digest of the plan decided on; it must equal the
	// Request's PlanDigest.
	PlanDigest string `json:"plan_digest"`
	// ExpiresAt is when the decision stops counting (ErrExpired); zero,
	// and absent from JSON: it does not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Approver decides whether the plan in a Request may be carried out.
// A refusal by a person is a Decision with Approved false and a nil error;
// an error means no decision could be obtained.
type Approver interface {
	Approve(ctx context.Context, r Request) (Decision, error)
}

// ApproverFunc adapts a function to the Approver interface.
type ApproverFunc func(ctx context.Context, r Request) (Decision, error)

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, r Request) (Decision, error) { return f(ctx, r) }

// Sentinel errors, checkable with errors.Is.
var (
	// ErrNotTerminal is returned by the terminal channel when stdin is not a terminal.
	ErrNotTerminal = errors.New("stdin is not a terminal")
	// ErrTimeout is returned when no decision arrived in time.
	ErrTimeout = errors.New("timed out waiting for a decision")
	// ErrDigestMismatch means a decision covers another plan than the one requested.
	ErrDigestMismatch = errors.New("decision covers a different plan digest")
	// ErrRisksNotAcknowledged means a destructive step was approved without acknowledging its risks.
	ErrRisksNotAcknowledged = errors.New("risks of a destructive step not acknowledged")
	// ErrSelfApproval means the approver is the requester while the policy demands four eyes.
	ErrSelfApproval = errors.New("approver must differ from requester")
	// ErrExpired means a decision is older than the policy allows or past its expiry.
	ErrExpired = errors.New("decision expired")
	// ErrAutoDestructive means the auto channel was asked to approve a destructive step it may not.
	ErrAutoDestructive = errors.New("auto-approval does not cover destructive checkpoints")
	// ErrUnknownRequest means the queue holds no pending request with that ID.
	ErrUnknownRequest = errors.New("no pending request with that id")
)

// PolicyError reports a decision refused by a Policy rule; Unwrap gives the rule's sentinel.
type PolicyError struct {
	// Checkpoint is the checkpoint whose approval was refused.
	Checkpoint string
	// DecisionID is the ID of the refused Decision.
	DecisionID string
	// Rule is the broken rule's sentinel (ErrDigestMismatch, ErrExpired, ...).
	Rule error
	// Detail says how the rule was broken (empty: the rule says it all).
	Detail string
}

// Error describes the refusal.
func (e *PolicyError) Error() string {
	s := fmt.Sprintf("approval of checkpoint %s refused by policy: %v", e.Checkpoint, e.Rule)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the violated rule's sentinel error.
func (e *PolicyError) Unwrap() error { return e.Rule }

// NewID returns a random 128-bit identifier in hex.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; fall back to time.
		return fmt.Sprintf("%032x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// CurrentUser names the person running this process: $USER, else the OS account, else the uid.
func CurrentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid:%d", os.Getuid())
}

// Render describes the request for a person: checkpoint, plan, digest and risks.
func (r Request) Render() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Checkpoint %s", r.Checkpoint)
	if r.Description != "" {
		fmt.Fprintf(&sb, ": %s", r.Description)
	}
	fmt.Fprintf(&sb, "\nPlan (%s):\n%s", r.PlanDigest, RenderPlan(r.Plan))
	if len(r.Risks) > 0 {
		sb.WriteString("Risks:\n")
		for _, risk := range r.Risks {
			fmt.Fprintf(&sb, "  - %s\n", risk)
		}
	}
	if r.Destructive {
		sb.WriteString("This checkpoint is DESTRUCTIVE: what it removes cannot be restored. There is no undo.\n")
	}
	return sb.String()
}
