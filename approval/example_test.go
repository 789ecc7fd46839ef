package approval_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raydeploy/sdk/approval"
)

// An own approver is a function: it sees the whole request (checkpoint,
// plan items with their targets, digest, risks) and returns a Decision.
// Complete fills in what the decision takes from the request (the plan
// digest, the request ID, the time, the approver), and Check applies the
// rules every decision must pass before its step may run.
func ExampleApproverFunc() {
	items := []approval.PlanItem{{
		Node:   "w1",
		Action: "remove-container",
		Detail: "ray-worker (exited)",
		Target: &approval.Target{Kind: approval.TargetContainer, Name: "ray-worker", ID: "3f2a9c"},
	}}
	req := approval.Request{
		ID:          "req-1",
		Checkpoint:  "cleanup-existing",
		Destructive: true,
		Plan:        items,
		PlanDigest:  approval.PlanDigest("cleanup-existing", items),
	}

	var approver approval.Approver = approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
		for _, it := range r.Plan {
			if it.Action != "remove-container" {
				return approval.Decision{Approved: false, Reason: "only container removals"}, nil
			}
		}
		return approval.Decision{Approved: true, RisksAcknowledged: true, Reason: "leftovers only"}, nil
	})

	d, err := approver.Approve(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d = approval.Complete(req, d, now)
	fmt.Println("digest covered:", d.PlanDigest == req.PlanDigest)
	fmt.Println("channel:", d.Channel)
	fmt.Println("check:", approval.Check(req, d, now))
	// Output:
	// digest covered: true
	// channel: func
	// check: <nil>
}

// Check refuses a decision that does not cover the plan the approver saw,
// and a destructive step whose risks were not acknowledged.
func ExampleCheck() {
	items := []approval.PlanItem{{Node: "head", Action: "remove-container", Detail: "ray-head"}}
	req := approval.Request{
		Checkpoint:  "cleanup-existing",
		Destructive: true,
		Plan:        items,
		PlanDigest:  approval.PlanDigest("cleanup-existing", items),
	}
	now := time.Now()

	stale := approval.Decision{Approved: true, RisksAcknowledged: true, PlanDigest: "sha256:an-older-plan"}
	fmt.Println("other digest:", errors.Is(approval.Check(req, stale, now), approval.ErrDigestMismatch))

	unacked := approval.Decision{Approved: true, PlanDigest: req.PlanDigest}
	fmt.Println("risks not acknowledged:", errors.Is(approval.Check(req, unacked, now), approval.ErrRisksNotAcknowledged))

	refused := approval.Decision{Approved: false, By: "alice", PlanDigest: req.PlanDigest}
	fmt.Println("refused:", errors.Is(approval.Check(req, refused, now), approval.ErrNotApproved))

	ok := approval.Decision{Approved: true, RisksAcknowledged: true, PlanDigest: req.PlanDigest}
	fmt.Println("approved:", approval.Check(req, ok, now))
	// Output:
	// other digest: true
	// risks not acknowledged: true
	// refused: true
	// approved: <nil>
}

// RenderPlan is how every channel shows a plan to people.
func ExampleRenderPlan() {
	fmt.Print(approval.RenderPlan([]approval.PlanItem{
		{Node: "head", Action: "remove-container", Detail: "ray-head (running)"},
		{Node: "w1", Action: "remove-directory", Detail: "/tmp/ray"},
	}))
	// Output:
	//   head  remove-container  ray-head (running)
	//   w1    remove-directory  /tmp/ray
}
