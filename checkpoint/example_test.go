package checkpoint_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
)

// A Runner runs checkpoints in order against a state directory: here two
// in-memory steps, the second of which needs approval. The approver is an
// own function and the progress events go to an own sink.
func ExampleRunner() {
	dir, err := os.MkdirTemp("", "checkpoint-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	list, err := checkpoint.NewList(
		&checkpoint.Step{StepName: "check", Desc: "Check the nodes"},
		&checkpoint.Step{
			StepName: "tidy",
			Desc:     "Remove leftovers",
			Approval: true,
			PlanFunc: func(ctx context.Context) (checkpoint.Plan, error) {
				return checkpoint.Plan{Checkpoint: "tidy", Items: []checkpoint.PlanItem{
					{Node: "n1", Action: "remove-file", Detail: "/tmp/leftover"},
				}}, nil
			},
		},
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	var (
		mu     sync.Mutex
		events []string
	)
	r, err := checkpoint.Open(context.Background(), list, checkpoint.Options{
		StateDir: dir,
		Nodes:    []string{"n1"},
		Approver: approval.ApproverFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
			fmt.Printf("approve %s? %d item(s)\n", req.Checkpoint, len(req.Plan))
			return approval.Decision{Approved: true, Reason: "example"}, nil
		}),
		Events: func(e checkpoint.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e := e.(type) {
			case checkpoint.CheckpointStarted:
				events = append(events, "started "+e.Checkpoint)
			case checkpoint.CheckpointFinished:
				events = append(events, "finished "+e.Checkpoint)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	rep, err := r.RunAll(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range rep.Checkpoints {
		fmt.Println(c.Name, c.Status)
	}
	mu.Lock()
	for _, e := range events {
		fmt.Println(e)
	}
	mu.Unlock()
	// Output:
	// approve tidy? 1 item(s)
	// check succeeded
	// tidy succeeded
	// started check
	// finished check
	// started tidy
	// finished tidy
}

// DryRun plans every selected checkpoint without running or asking anything;
// Plan.String renders what would change.
func ExampleRunner_DryRun() {
	dir, err := os.MkdirTemp("", "checkpoint-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	list, err := checkpoint.NewList(&checkpoint.Step{
		StepName: "tidy",
		Desc:     "Remove leftovers",
		PlanFunc: func(ctx context.Context) (checkpoint.Plan, error) {
			return checkpoint.Plan{Checkpoint: "tidy", Items: []checkpoint.PlanItem{
				{Node: "n1", Action: "remove-file", Detail: "/tmp/leftover"},
				{Node: "n2", Action: "remove-file", Detail: "/tmp/leftover"},
			}}, nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := checkpoint.Open(context.Background(), list, checkpoint.Options{StateDir: dir, Nodes: []string{"n1", "n2"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	plans, err := r.DryRun(context.Background(), checkpoint.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range plans {
		fmt.Print(p)
	}
	// Output:
	// tidy:
	//   n1  remove-file  /tmp/leftover
	//   n2  remove-file  /tmp/leftover
}
