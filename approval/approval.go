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
	ID          string     `json:"id"`
	Checkpoint  string     `json:"checkpoint"`
	Description string     `json:"description,omitempty"`
	Destructive bool       `json:"destructive"`
	Risks       []string   `json:"risks,omitempty"`
	Plan        []PlanItem `json:"plan"`
	PlanDigest  string     `json:"plan_digest"`
	RequestedBy string     `json:"requested_by,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
}

// Decision answers a Request. A Decision covers exactly the plan whose digest it carries.
type Decision struct {
	ID                string    `json:"id"`
	RequestID         string    `json:"request_id,omitempty"`
	Approved          bool      `json:"approved"`
	By                string    `json:"by"`
	Reason            string    `json:"reason,omitempty"`
	RisksAcknowledged bool      `json:"risks_acknowledged"`
	DecidedAt         time.Time `json:"decided_at"`
	Channel           Channel   `json:"channel"`
	PlanDigest        string    `json:"plan_digest"`
	ExpiresAt         time.Time `json:"expires_at,omitzero"`
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
	Checkpoint string
	DecisionID string
	Rule       error
	Detail     string
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
