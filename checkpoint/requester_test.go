package checkpoint

import (
	"context"
	"testing"

	"github.com/raydeploy/sdk/approval"
)

func TestWithRequesterNamesTheRequester(t *testing.T) {
	var got []string
	appr := approval.ApproverFunc(func(_ context.Context, r approval.Request) (approval.Decision, error) {
		got = append(got, r.RequestedBy)
		return approval.Decision{ID: "d", Approved: true, By: "bob", PlanDigest: r.PlanDigest}, nil
	})
	list, err := NewList(&Step{StepName: "needs-ok", Approval: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), list, Options{StateDir: t.TempDir(), Nodes: []string{"n1"}, Approver: appr, RequestedBy: "os-user"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Run(WithRequester(context.Background(), "alice"), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "alice" || got[1] != "os-user" {
		t.Fatalf("requesters %v, want [alice os-user]", got)
	}
}
