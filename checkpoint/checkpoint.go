package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/raydeploy/sdk/approval"
)

// Checkpoint is one named step of a deployment.
type Checkpoint interface {
	// Name is the stable lower-case name ("cleanup-existing").
	Name() string
	// Description is a human sentence ("Remove earlier Ray installations").
	Description() string
	// NeedsApproval reports whether a non-empty plan must be approved before Run.
	NeedsApproval() bool
	// Destructive reports whether Run removes things that cannot be restored;
	// a destructive checkpoint always needs approval with acknowledged risks.
	Destructive() bool
	// Plan computes what Run would change, per node, without changing anything.
	// An empty plan means the checkpoint is already satisfied.
	Plan(ctx context.Context) (Plan, error)
	// Run carries out p and returns one result per node; the error is for a
	// failure of the whole step.
	Run(ctx context.Context, p Plan) ([]NodeResult, error)
}

// RiskDescriber is implemented by checkpoints that describe their risks to the approver.
type RiskDescriber interface {
	Risks() []string
}

// ConfigDigester is implemented by checkpoints whose configuration can change:
// on resume, a checkpoint that succeeded with the same config digest is not run again.
type ConfigDigester interface {
	ConfigDigest() string
}

// NodeLister is implemented by checkpoints that work on a different set of
// nodes than the Runner's Options.Nodes.
type NodeLister interface {
	Nodes() []string
}

// PlanItem is one change on one node; see approval.PlanItem, the one plan
// item type that checkpoints plan and approvers see.
type PlanItem = approval.PlanItem

// Plan is what a checkpoint would change. A plan with no items and no errors
// means already satisfied.
type Plan struct {
	// Checkpoint is the checkpoint's name (the Runner sets it).
	Checkpoint string `json:"checkpoint"`
	// Items are the planned changes (none: satisfied, unless there are
	// Errors).
	Items []PlanItem `json:"items"`
	// Errors say where the plan could not be made: one per node whose
	// planning failed (Node AllNodes when it failed as a whole). Items of
	// the other nodes are still listed. A plan with errors is shown by a
	// dry run but never run.
	Errors []PlanError `json:"errors,omitempty"`
}

// PlanError is the failure to plan one node's part of a checkpoint.
type PlanError struct {
	// Node is the node's ID, or AllNodes.
	Node string `json:"node"`
	// Error is why planning failed there.
	Error string `json:"error"`
}

// Empty reports whether there is nothing to do (and nothing failed).
func (p Plan) Empty() bool { return len(p.Items) == 0 && len(p.Errors) == 0 }

// Nodes lists the distinct nodes in the plan, in order of first appearance.
func (p Plan) Nodes() []string {
	var out []string
	seen := make(map[string]bool, len(p.Items))
	for _, it := range p.Items {
		if !seen[it.Node] {
			seen[it.Node] = true
			out = append(out, it.Node)
		}
	}
	return out
}

// Digest is approval.PlanDigest of the plan: equal plans have equal digests
// whatever the order their items were produced in, and every item's Target
// counts.
func (p Plan) Digest() string { return approval.PlanDigest(p.Checkpoint, p.Items) }

// String renders the plan for people, one line per item, with each node's
// planning error in place.
func (p Plan) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s:", p.Checkpoint)
	if p.Empty() {
		sb.WriteString(" already satisfied, nothing to change\n")
		return sb.String()
	}
	sb.WriteString("\n")
	items := slices.Clone(p.Items)
	for _, e := range p.Errors {
		items = append(items, PlanItem{Node: e.Node, Action: "ERROR", Detail: "cannot plan: " + e.Error})
	}
	if len(items) > 0 {
		sb.WriteString(approval.RenderPlan(items))
	}
	return sb.String()
}

// NodeResult is the outcome of Run on one node.
type NodeResult struct {
	// Node is the node's ID.
	Node string
	// Summary says for people what was done (empty: nothing to say).
	Summary string
	// Err is why the node failed (nil: it succeeded).
	Err error
}

// Step builds a Checkpoint from function fields, without declaring a type.
// A nil PlanFunc plans one item ("run") on every node the runner knows, i.e. the
// step always runs; a nil RunFunc reports success on every planned node.
type Step struct {
	// StepName is the checkpoint's name (Name).
	StepName string
	// Desc is its description (Description).
	Desc string
	// Approval is true when a non-empty plan needs approval (NeedsApproval).
	Approval bool
	// IsDestructive is true when it removes what cannot be restored
	// (Destructive).
	IsDestructive bool
	// RiskList is what the approver is told could go wrong (Risks).
	RiskList []string
	Config   string // config digest, see ConfigDigester
	// PlanFunc makes the plan (nil: one "run" item for AllNodes).
	PlanFunc func(ctx context.Context) (Plan, error)
	// RunFunc carries out the plan (nil: success on every planned node).
	RunFunc func(ctx context.Context, p Plan) ([]NodeResult, error)
}

// Name returns StepName.
func (s *Step) Name() string { return s.StepName }

// Description returns Desc.
func (s *Step) Description() string { return s.Desc }

// NeedsApproval returns Approval.
func (s *Step) NeedsApproval() bool { return s.Approval }

// Destructive returns IsDestructive.
func (s *Step) Destructive() bool { return s.IsDestructive }

// Risks returns RiskList.
func (s *Step) Risks() []string { return s.RiskList }

// ConfigDigest returns Config.
func (s *Step) ConfigDigest() string { return s.Config }

// Plan calls PlanFunc, or plans a single "run" item.
func (s *Step) Plan(ctx context.Context) (Plan, error) {
	if s.PlanFunc == nil {
		return Plan{Checkpoint: s.StepName, Items: []PlanItem{{Node: AllNodes, Action: "run"}}}, nil
	}
	p, err := s.PlanFunc(ctx)
	p.Checkpoint = s.StepName
	return p, err
}

// Run calls RunFunc, or reports success on every planned node.
func (s *Step) Run(ctx context.Context, p Plan) ([]NodeResult, error) {
	if s.RunFunc != nil {
		return s.RunFunc(ctx, p)
	}
	var out []NodeResult
	for _, n := range p.Nodes() {
		out = append(out, NodeResult{Node: n, Summary: "ok"})
	}
	return out, nil
}

// AllNodes is the node name of plan items that concern the whole cluster
// rather than one node.
const AllNodes = "*"
