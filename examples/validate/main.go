// Command validate checks a deployed Ray cluster, like the seed's
// validate_checkpoint.py: the whole cluster (containers, Ray nodes, dashboard
// and a job on every node), its health only, one checkpoint's ledger record,
// or whether a checkpoint needs approval and has one waiting.
//
//	validate --config cluster.yaml --format text
//	validate --config cluster.yaml --health-only
//	validate --config cluster.yaml --checkpoint docker-installation
//	validate --config cluster.yaml --approval-check cleanup-existing
//
// It is a thin layer of flags and printing over package raydeploy.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1 // validation failed, or the checkpoint has not succeeded
	exitUsage       = 2 // bad flags or configuration
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	config, stateDir, format, checkpoint, approvalCheck string
	healthOnly                                          bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "cluster definition `FILE`: YAML (.yaml, .yml) or an Ansible inventory.ini (or its directory)")
	fs.StringVar(&o.stateDir, "state-dir", "", "state `DIR` (overrides state_dir)")
	fs.StringVar(&o.format, "format", "text", "output format: text or json (the report's JSON, documented in package raydeploy)")
	fs.StringVar(&o.format, "output", "text", "the same as --format, named as in deploy-master")
	fs.BoolVar(&o.healthOnly, "health-only", false, "check containers, Ray nodes and the dashboard, but run no job")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "print the ledger record of checkpoint `NAME` (connects nowhere)")
	fs.StringVar(&o.approvalCheck, "approval-check", "", "say whether checkpoint `NAME` needs approval and whether one is pending or archived (connects nowhere)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: validate --config FILE [--health-only | --checkpoint NAME | --approval-check NAME] [--format text|json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	modes := 0
	for _, on := range []bool{o.healthOnly, o.checkpoint != "", o.approvalCheck != ""} {
		if on {
			modes++
		}
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.config == "":
		return nil, errors.New("missing --config FILE (a cluster YAML or an Ansible inventory.ini)")
	case o.format != "text" && o.format != "json":
		return nil, fmt.Errorf("--format %q: want text or json", o.format)
	case modes > 1:
		return nil, errors.New("give at most one of --health-only, --checkpoint and --approval-check")
	}
	return &o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "validate:", err)
		return exitUsage
	}
	c, warnings, err := raydeploy.Load(o.config)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		return configError(stderr, o.config, err)
	}
	if o.stateDir != "" {
		c.StateDir = o.stateDir
	}
	d, err := raydeploy.New(c, raydeploy.Options{})
	if err != nil {
		return configError(stderr, o.config, err)
	}
	defer d.Close()

	for _, name := range []string{o.checkpoint, o.approvalCheck} {
		if name == "" {
			continue
		}
		if _, err := d.Checkpoints().Get(name); err != nil {
			return unknownCheckpoint(stderr, err)
		}
	}
	switch {
	case o.checkpoint != "":
		return showRecord(d, o.checkpoint, o.format, stdout, stderr)
	case o.approvalCheck != "":
		return approvalCheck(d, o.approvalCheck, o.format, stdout, stderr)
	}

	// Before connecting anywhere: the variables and files the config names.
	if err := c.CheckLocal(); err != nil {
		return configError(stderr, o.config, err)
	}
	rep, err := d.Validate(ctx, raydeploy.ValidateOptions{HealthOnly: o.healthOnly})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "validate: interrupted:", err)
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "validate:", err)
		return exitFailed
	}
	if err := output(stdout, o.format, rep, rep.Text); err != nil {
		fmt.Fprintln(stderr, "validate:", err)
		return exitFailed
	}
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}

// output writes v as indented JSON, or text() for --format text.
func output(w io.Writer, format string, v any, text func() string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := io.WriteString(w, text())
	return err
}

// showRecord prints checkpoint name's ledger record: status, times, digests,
// approval and every node's status, summary and error. It reads the ledger
// without taking the lock, so it works while a deployment runs.
func showRecord(d *raydeploy.Deployer, name, format string, stdout, stderr io.Writer) int {
	stateDir := d.Cluster().StateDir
	rec := &checkpoint.Record{Status: checkpoint.StatusPending}
	if _, err := os.Stat(stateDir); err == nil { // OpenStore would create a missing directory
		store, err := checkpoint.OpenStore(stateDir)
		if err != nil {
			fmt.Fprintln(stderr, "validate:", err)
			return exitFailed
		}
		l, err := store.Load()
		if err != nil {
			fmt.Fprintln(stderr, "validate:", err)
			return exitFailed
		}
		if r := l.Checkpoints[name]; r != nil {
			rec = r
		}
	}
	type recordOut struct {
		Checkpoint string `json:"checkpoint"`
		*checkpoint.Record
	}
	err := output(stdout, format, recordOut{name, rec}, func() string { return recordText(d, name, rec) })
	if err != nil {
		fmt.Fprintln(stderr, "validate:", err)
		return exitFailed
	}
	if !rec.Status.Done() {
		return exitFailed
	}
	return exitOK
}

func recordText(d *raydeploy.Deployer, name string, rec *checkpoint.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", name, rec.Status)
	if !rec.StartedAt.IsZero() {
		fmt.Fprintf(&b, "  started   %s\n", rec.StartedAt.Local().Format(time.DateTime))
	}
	if !rec.EndedAt.IsZero() {
		fmt.Fprintf(&b, "  ended     %s (%s)\n", rec.EndedAt.Local().Format(time.DateTime), rec.EndedAt.Sub(rec.StartedAt).Round(time.Millisecond))
	}
	if rec.Approval != nil {
		fmt.Fprintf(&b, "  approval  %s by %s via %s (plan %s)\n", rec.Approval.DecisionID, rec.Approval.By, rec.Approval.Channel, rec.Approval.PlanDigest)
	}
	if rec.Error != "" {
		fmt.Fprintf(&b, "  error     %s\n", rec.Error)
	}
	// Nodes in cluster order, then any the cluster no longer has.
	var order []string
	for _, n := range d.Cluster().Nodes() {
		order = append(order, n.ID())
	}
	var gone []string
	for n := range rec.Nodes {
		if !slices.Contains(order, n) {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	width := 4
	for _, n := range append(order, gone...) {
		width = max(width, len(n))
	}
	for _, n := range append(order, gone...) {
		nr := rec.Nodes[n]
		if nr == nil {
			continue
		}
		line := nr.Summary
		if nr.Error != "" {
			line = nr.Error
		}
		fmt.Fprintf(&b, "  %-*s  %-17s  %s\n", width, n, nr.Status, line)
	}
	return b.String()
}

// approvalCheck says whether checkpoint name needs approval, whether it is
// destructive, and which approval files are in <statedir>/approvals: an
// approval waiting to be consumed, a request waiting for one, and the
// archived (consumed or rejected) approvals.
func approvalCheck(d *raydeploy.Deployer, name, format string, stdout, stderr io.Writer) int {
	cp, err := d.Checkpoints().Get(name)
	if err != nil {
		return unknownCheckpoint(stderr, err)
	}
	file := approval.NewFile(d.Cluster().StateDir)
	type result struct {
		Checkpoint    string   `json:"checkpoint"`
		Description   string   `json:"description"`
		NeedsApproval bool     `json:"needs_approval"`
		Destructive   bool     `json:"destructive"`
		Risks         []string `json:"risks,omitempty"`
		ApprovalFile  string   `json:"approval_file"`
		Pending       bool     `json:"approval_pending"`   // the approval file exists, not yet consumed
		Requested     bool     `json:"request_waiting"`    // a run waits for an approval
		Archived      []string `json:"archived,omitempty"` // consumed or rejected approval files
	}
	r := result{
		Checkpoint:    name,
		Description:   cp.Description(),
		NeedsApproval: cp.NeedsApproval() || cp.Destructive(),
		Destructive:   cp.Destructive(),
		ApprovalFile:  file.Path(name),
	}
	if rd, ok := cp.(checkpoint.RiskDescriber); ok {
		r.Risks = rd.Risks()
	}
	r.Pending = exists(r.ApprovalFile)
	r.Requested = exists(filepath.Join(file.Dir, name+".request.json"))
	r.Archived, _ = filepath.Glob(filepath.Join(file.Dir, "archive", name+"-*.json"))

	err = output(stdout, format, r, func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s\n", name, r.Description)
		fmt.Fprintf(&b, "  needs approval  %s\n", yesNo(r.NeedsApproval))
		fmt.Fprintf(&b, "  destructive     %s\n", yesNo(r.Destructive))
		for _, risk := range r.Risks {
			fmt.Fprintf(&b, "  risk            %s\n", risk)
		}
		if r.NeedsApproval {
			fmt.Fprintf(&b, "  approval file   %s (%s)\n", r.ApprovalFile, pick(r.Pending, "present, not yet consumed", "absent"))
			fmt.Fprintf(&b, "  request         %s\n", pick(r.Requested, "a run is waiting for approval", "no run is waiting"))
		}
		for _, a := range r.Archived {
			fmt.Fprintf(&b, "  archived        %s\n", a)
		}
		return b.String()
	})
	if err != nil {
		fmt.Fprintln(stderr, "validate:", err)
		return exitFailed
	}
	return exitOK
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

func yesNo(b bool) string { return pick(b, "yes", "no") }

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// configError prints a configuration's problems, one per line.
func configError(stderr io.Writer, file string, err error) int {
	var ve *raydeploy.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintf(stderr, "validate: %s: %d problem(s):\n", file, len(ve.Problems))
		for _, p := range ve.Problems {
			fmt.Fprintln(stderr, "  "+p.Error())
		}
		return exitUsage
	}
	fmt.Fprintln(stderr, "validate:", err)
	return exitUsage
}

func unknownCheckpoint(stderr io.Writer, err error) int {
	var ue *checkpoint.UnknownCheckpointError
	if !errors.As(err, &ue) {
		fmt.Fprintln(stderr, "validate:", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "validate: unknown checkpoint %q; valid checkpoints:\n", ue.Name)
	for _, n := range ue.Valid {
		fmt.Fprintln(stderr, "  "+n)
	}
	return exitUsage
}
