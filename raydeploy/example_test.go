package raydeploy_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/monitoring"
	"github.com/raydeploy/sdk/raydeploy"
)

// Deploy with an own approver: a function that sees each checkpoint's plan
// (items with their targets, the digest, the risks) and decides. The
// Deployer completes the decision (digest, request ID, time, approver) and
// records request, decision and outcome in the state directory's audit log.
// It needs reachable nodes, so it has no Output.
func ExampleNew() {
	ctx := context.Background()
	cluster, warnings, err := raydeploy.Load("cluster.yaml")
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range warnings {
		log.Print(w)
	}
	d, err := raydeploy.New(cluster, raydeploy.Options{
		Approver: approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
			fmt.Print(r.Render()) // checkpoint, risks and plan, as people read it
			if r.Destructive {
				// Only remove what is ours: every item must name a container.
				for _, it := range r.Plan {
					if it.Target == nil || it.Target.Kind != approval.TargetContainer {
						return approval.Decision{Approved: false, Reason: "not a container: " + it.Detail}, nil
					}
				}
			}
			return approval.Decision{Approved: true, RisksAcknowledged: true, Reason: "reviewed by program"}, nil
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	report, err := d.Deploy(ctx, checkpoint.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range report.Checkpoints {
		fmt.Println(c.Name, c.Status)
	}
}

// Progress events arrive in order on a goroutine of their own; a type switch
// picks the ones of interest. It needs reachable nodes, so it has no Output.
func ExampleOptions_events() {
	cluster, _, err := raydeploy.Load("cluster.yaml")
	if err != nil {
		log.Fatal(err)
	}
	d, err := raydeploy.New(cluster, raydeploy.Options{
		Events: func(e checkpoint.Event) {
			switch e := e.(type) {
			case checkpoint.CheckpointStarted:
				log.Printf("%s: started", e.Checkpoint)
			case checkpoint.NodeFinished:
				log.Printf("%s: node %s %s", e.Checkpoint, e.Node, e.Status)
			case checkpoint.CheckpointFailed:
				log.Printf("%s: failed: %v", e.Checkpoint, e.Err)
			case checkpoint.CheckpointFinished:
				log.Printf("%s: done", e.Checkpoint)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	report, err := d.Deploy(context.Background(), checkpoint.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(report.Checkpoints), "checkpoints")
}

// The deployer's own metrics (checkpoint runs and durations, node outcomes,
// approvals, SSH and Docker errors) go on the caller's registry, never the
// global one; serve it wherever the program serves metrics.
func ExampleOptions_metrics() {
	reg := prometheus.NewRegistry()
	metrics, err := monitoring.NewMetrics(reg)
	if err != nil {
		log.Fatal(err)
	}
	cluster, _, err := raydeploy.Load("cluster.yaml")
	if err != nil {
		log.Fatal(err)
	}
	d, err := raydeploy.New(cluster, raydeploy.Options{Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:9464", nil)) }()

	if _, err := d.Deploy(context.Background(), checkpoint.RunOptions{}); err != nil {
		log.Print(err)
	}
}
