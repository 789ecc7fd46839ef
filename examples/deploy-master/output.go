package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
)

// The --output json documents. Their shape is stable: fields are only ever
// added, never renamed or removed, and "schema" names the version. Errors are
// the messages of the SDK's errors, which never hold a secret's value.

// runJSON is the result of --deploy, --checkpoint, --start-from, --resume
// and --down (schema "raydeploy.run/v1").
type runJSON struct {
	Schema      string           `json:"schema"`
	Cluster     string           `json:"cluster"`
	Action      string           `json:"action"` // "deploy" or "down"
	OK          bool             `json:"ok"`
	Seconds     float64          `json:"duration_seconds"`
	Checkpoints []checkpointJSON `json:"checkpoints"`
	Error       string           `json:"error,omitempty"`
	// ResumeCommand is the command that resumes after a failure.
	ResumeCommand string `json:"resume_command,omitempty"`
	// FailureRecord is the path of deployment-failure.json after a failure.
	FailureRecord string `json:"failure_record,omitempty"`
}

// checkpointJSON is one checkpoint of a run.
type checkpointJSON struct {
	Name string `json:"checkpoint"`
	// Status is succeeded, skipped-satisfied, failed or pending (not reached).
	Status string `json:"status"`
	// Skipped says why it did not run (its plan was empty, or resume).
	Skipped    string     `json:"skipped,omitempty"`
	Changes    int        `json:"planned_changes"`
	ApprovedBy string     `json:"approved_by,omitempty"`
	Nodes      []nodeJSON `json:"nodes"`
	Error      string     `json:"error,omitempty"`
}

// nodeJSON is one node's outcome in a checkpoint.
type nodeJSON struct {
	Node    string `json:"node"`
	OK      bool   `json:"ok"`
	Summary string `json:"summary,omitempty"`
	Error   string `json:"error,omitempty"`
}

func runDocument(action, cluster string, rep *checkpoint.Report, err error, took time.Duration) runJSON {
	doc := runJSON{Schema: "raydeploy.run/v1", Cluster: cluster, Action: action, OK: err == nil,
		Seconds: took.Seconds(), Checkpoints: []checkpointJSON{}}
	if err != nil {
		doc.Error = err.Error()
	}
	if rep == nil {
		return doc
	}
	for _, cr := range rep.Checkpoints {
		c := checkpointJSON{Name: cr.Name, Status: string(cr.Status), Skipped: cr.Skipped, Changes: len(cr.Plan.Items), Nodes: []nodeJSON{}}
		if c.Status == "" {
			c.Status = string(checkpoint.StatusPending)
		}
		if cr.Decision != nil && cr.Decision.Approved {
			c.ApprovedBy = cr.Decision.By
		}
		if cr.Err != nil {
			c.Error = cr.Err.Error()
		}
		for _, n := range cr.Nodes {
			nj := nodeJSON{Node: n.Node, OK: n.Err == nil, Summary: n.Summary}
			if n.Err != nil {
				nj.Error = nodeCause(n.Node, n.Err)
			}
			c.Nodes = append(c.Nodes, nj)
		}
		doc.Checkpoints = append(doc.Checkpoints, c)
	}
	return doc
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// planJSON is the result of --dry-run (schema "raydeploy.plan/v1"): every
// selected checkpoint, also after one whose plan failed.
type planJSON struct {
	Schema      string       `json:"schema"`
	Cluster     string       `json:"cluster"`
	OK          bool         `json:"ok"` // every plan could be made
	Checkpoints []planCPJSON `json:"checkpoints"`
	Error       string       `json:"error,omitempty"`
}

// planCPJSON is one checkpoint's plan.
type planCPJSON struct {
	Name string `json:"checkpoint"`
	// Status is "changes" (items to run), "satisfied" (nothing to do) or
	// "failed" (errors: planning failed for those nodes; "*" is all).
	Status string                 `json:"status"`
	Items  []checkpoint.PlanItem  `json:"items"`
	Errors []checkpoint.PlanError `json:"errors"`
}

func planDocument(cluster string, plans []checkpoint.Plan, err error) planJSON {
	doc := planJSON{Schema: "raydeploy.plan/v1", Cluster: cluster, OK: err == nil, Checkpoints: []planCPJSON{}}
	if err != nil {
		doc.Error = err.Error()
	}
	for _, p := range plans {
		c := planCPJSON{Name: p.Checkpoint, Status: "satisfied", Items: p.Items, Errors: p.Errors}
		if c.Items == nil {
			c.Items = []checkpoint.PlanItem{}
		}
		if c.Errors == nil {
			c.Errors = []checkpoint.PlanError{}
		}
		switch {
		case len(p.Errors) > 0:
			c.Status = "failed"
			doc.OK = false
		case len(p.Items) > 0:
			c.Status = "changes"
		}
		doc.Checkpoints = append(doc.Checkpoints, c)
	}
	return doc
}
