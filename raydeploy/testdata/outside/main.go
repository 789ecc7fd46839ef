// Command outside deploys a cluster through the SDK's public packages only.
// TestOutsideModule builds it in a module of its own (go.mod with a replace
// to the checkout) and runs it against a testenv cluster; README's "Using it
// from Go" quotes the part between the README markers.
//
// It prints one JSON line per approval request and per progress event, and
// a line per checkpoint of the report.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

func main() {
	config := flag.String("config", "cluster.yaml", "cluster YAML or Ansible inventory")
	only := flag.String("only", "", "comma-separated checkpoints to run, in order (empty: all)")
	noMonitoring := flag.Bool("no-monitoring", false, "leave the monitoring stack out")
	flag.Parse()
	ctx := context.Background()
	var mu sync.Mutex // the approver and the event sink run on goroutines of their own
	out := json.NewEncoder(os.Stdout)
	emit := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		out.Encode(v)
	}

	// README:begin
	cluster, warnings, err := raydeploy.Load(*config) // or an Ansible inventory.ini
	if err != nil {
		log.Fatal(err) // errors name the field: "workers[1].address: must not be empty"
	}
	for _, w := range warnings {
		log.Print(w)
	}
	d, err := raydeploy.New(cluster, raydeploy.Options{
		// Own approver: sees the checkpoint, its plan items (with targets),
		// the plan digest and the risks; the Deployer completes and audits
		// the decision.
		Approver: approval.ApproverFunc(func(ctx context.Context, r approval.Request) (approval.Decision, error) {
			emit(map[string]any{"approve": r.Checkpoint, "items": len(r.Plan), "digest": r.PlanDigest})
			return approval.Decision{Approved: true, RisksAcknowledged: true, Reason: "program"}, nil
		}),
		// Own event sink: progress events, in order, on a goroutine of their own.
		Events: func(e checkpoint.Event) {
			switch e := e.(type) {
			case checkpoint.CheckpointStarted:
				emit(map[string]any{"event": "started", "checkpoint": e.Checkpoint})
			case checkpoint.NodeFinished:
				emit(map[string]any{"event": "node", "checkpoint": e.Checkpoint, "node": e.Node, "status": e.Status})
			case checkpoint.CheckpointFinished:
				emit(map[string]any{"event": "finished", "checkpoint": e.Checkpoint})
			}
		},
		NoMonitoring: *noMonitoring,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	// README:end

	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	} else {
		names = []string{""} // one run of every checkpoint
	}
	for _, name := range names {
		report, err := d.Deploy(ctx, checkpoint.RunOptions{Only: name}) // or Plan, Validate, Down
		if report != nil {
			for _, c := range report.Checkpoints {
				fmt.Printf("%s %s\n", c.Name, c.Status)
			}
		}
		if err != nil {
			d.Close()
			log.Fatal(err)
		}
	}
}
