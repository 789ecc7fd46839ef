// Command deploy-master deploys a Ray cluster in checkpoints over SSH and
// Docker, with the interface of the seed's deploy-master.py: run every
// checkpoint, one, from one, or resume after a failure; list them with their
// ledger status; plan without changing anything; remove the cluster.
//
//	deploy-master --config cluster.yaml --list-checkpoints
//	deploy-master --config cluster.yaml --deploy --dry-run
//	deploy-master --config cluster.yaml --deploy
//	deploy-master --config inventory.ini --checkpoint prerequisites-check
//	deploy-master --config cluster.yaml --deploy --start-from ray-deployment
//	deploy-master --config cluster.yaml --deploy --resume
//	deploy-master --config cluster.yaml --down
//
// It is a thin layer of flags and printing over package raydeploy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/raydeploy"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1   // a checkpoint, the lock or the state failed
	exitUsage       = 2   // bad flags or configuration
	exitInterrupted = 130 // Ctrl-C
)

// The values of --approval.
const (
	approvalDefault  = "terminal+file"
	approvalTerminal = "terminal"
	approvalFile     = "file"
	approvalAuto     = "auto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	deploy, autoApprove, resume, list, dryRun, down, verbose, imageRelay bool

	only, startFrom, config, stateDir, approval, imageFile, images, output string

	approvalSet bool // --approval was given explicitly

	self string // how a new shell runs this program (selfCommand); empty: "deploy-master"
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("deploy-master", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.deploy, "deploy", false, "run every checkpoint in order (with --start-from: from that one)")
	fs.BoolVar(&o.autoApprove, "auto-approve", false, "approve every checkpoint without asking, destructive ones included (use with caution)")
	fs.StringVar(&o.only, "checkpoint", "", "run only the checkpoint `NAME`")
	fs.StringVar(&o.startFrom, "start-from", "", "run the checkpoint `NAME` and all after it (implies --deploy)")
	fs.BoolVar(&o.resume, "resume", false, "skip the checkpoints that already succeeded with the same configuration (implies --deploy)")
	fs.BoolVar(&o.list, "list-checkpoints", false, "list the checkpoints with their status (connects nowhere)")
	fs.StringVar(&o.config, "config", "", "cluster definition `FILE`: YAML (.yaml, .yml) or an Ansible inventory.ini (or its directory)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show what would change on each node, change nothing")
	fs.StringVar(&o.stateDir, "state-dir", "", "state `DIR` for the ledger, lock, approvals and audit log (overrides state_dir)")
	fs.BoolVar(&o.down, "down", false, "remove every container of this cluster from every node (destructive, needs approval)")
	fs.StringVar(&o.approval, "approval", approvalDefault, "how approvals are given: terminal, file (<state-dir>/approvals/<checkpoint>.json), terminal+file, or auto (never destructive)")
	fs.StringVar(&o.imageFile, "image-file", "", "docker-save `TAR` to side-load the Ray image from")
	fs.StringVar(&o.images, "images", string(raydeploy.ImageAuto), "how the Ray image reaches nodes: auto, pull or side-load")
	fs.BoolVar(&o.imageRelay, "image-relay", false, "side-load through the nodes: the controller sends the Ray image once and each node passes it on to the next over SSH, "+
		"with a one-time key per hop (needs the nodes' sshd reachable from each other and the OpenSSH client on them; a node the relay misses is side-loaded directly). "+
		"Off by default: it adds a temporary, restricted authorized_keys line on every node while the image passes")
	fs.StringVar(&o.output, "output", "text", "what goes to stdout: text (for people) or json (one document, schema raydeploy.plan/v1 or raydeploy.run/v1; progress then goes to stderr)")
	fs.BoolVar(&o.verbose, "v", false, "debug logs on stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: deploy-master --config FILE (--deploy | --checkpoint NAME | --list-checkpoints | --down) [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.approvalSet = o.approvalSet || f.Name == "approval" })
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.config == "":
		return nil, errors.New("missing --config FILE (a cluster YAML or an Ansible inventory.ini)")
	case o.only != "" && o.startFrom != "":
		return nil, errors.New("give --checkpoint or --start-from, not both")
	case o.list && (o.deploy || o.down || o.dryRun || o.resume || o.only != "" || o.startFrom != ""):
		return nil, errors.New("--list-checkpoints takes no other action")
	case o.down && (o.deploy || o.dryRun || o.resume || o.only != "" || o.startFrom != ""):
		return nil, errors.New("--down takes no other action (and has no --dry-run)")
	case !o.list && !o.down && !o.deploy && !o.dryRun && !o.resume && o.only == "" && o.startFrom == "":
		return nil, errors.New("nothing to do: give --deploy, --checkpoint NAME, --list-checkpoints, --dry-run or --down")
	case o.autoApprove && o.approvalSet:
		return nil, errors.New("give --auto-approve or --approval, not both")
	}
	if o.output != "text" && o.output != "json" {
		return nil, fmt.Errorf("--output %q: want text or json", o.output)
	}
	if o.output == "json" && o.list {
		return nil, errors.New("--list-checkpoints has no --output json (validate --checkpoint NAME --format json reads one record)")
	}
	switch o.approval {
	case approvalDefault, approvalTerminal, approvalFile, approvalAuto:
	default:
		return nil, fmt.Errorf("--approval %q: want terminal, file, terminal+file or auto", o.approval)
	}
	switch raydeploy.ImagePolicy(o.images) {
	case raydeploy.ImageAuto, raydeploy.ImagePull, raydeploy.ImageSideLoad:
	default:
		return nil, fmt.Errorf("--images %q: want auto, pull or side-load", o.images)
	}
	if o.imageFile != "" && raydeploy.ImagePolicy(o.images) == raydeploy.ImagePull {
		return nil, errors.New("--image-file needs --images auto or side-load")
	}
	if o.imageRelay && raydeploy.ImagePolicy(o.images) == raydeploy.ImagePull {
		return nil, errors.New("--image-relay needs --images auto or side-load (pulling nodes fetch the image themselves)")
	}
	return &o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "deploy-master:", err)
		return exitUsage
	}
	o.self = selfCommand()

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
	effective := c.WithDefaults()
	if err := effective.Validate(); err != nil {
		return configError(stderr, o.config, err)
	}
	if !o.list {
		// Before connecting anywhere: the variables and files it names.
		if err := c.CheckLocal(); err != nil {
			return configError(stderr, o.config, err)
		}
	}
	stateDir := effective.StateDir

	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts := raydeploy.Options{
		Logger:        logger,
		Images:        raydeploy.ImagePolicy(o.images),
		ImageFile:     o.imageFile,
		ImageRelay:    o.imageRelay,
		ResumeCommand: resumeCommand(o),
	}
	// A Deployer without an Approver creates nothing: it checks the
	// checkpoint names and serves --list-checkpoints and --dry-run.
	d, err := raydeploy.New(c, opts)
	if err != nil {
		return configError(stderr, o.config, err)
	}
	defer func() { d.Close() }()
	for _, name := range []string{o.only, o.startFrom} {
		if name == "" {
			continue
		}
		if _, err := d.Checkpoints().Get(name); err != nil {
			return unknownCheckpoint(stderr, err)
		}
	}
	if !o.list && !o.dryRun {
		// Deploy or Down: with the Approver, New creates the state directory
		// and opens the audit log, where every request, decision and outcome
		// is recorded.
		opts.Approver = approver(o, stateDir, stderr)
		events := stdout
		if o.output == "json" {
			events = stderr // stdout holds the one JSON document
		}
		opts.Events = progress(events, effective, waitHint(o, stateDir))
		acting, err := raydeploy.New(c, opts)
		if err != nil {
			fmt.Fprintln(stderr, "deploy-master:", err)
			return exitFailed
		}
		d.Close()
		d = acting
	}
	ro := checkpoint.RunOptions{Only: o.only, StartFrom: o.startFrom, Resume: o.resume}

	switch {
	case o.list:
		return list(ctx, d, stdout, stderr)
	case o.dryRun:
		plans, err := d.Plan(ctx, ro)
		if o.output == "json" {
			doc := planDocument(effective.Name, plans, err)
			if werr := writeJSON(stdout, doc); werr != nil || !doc.OK {
				if ctx.Err() != nil {
					return exitInterrupted
				}
				return exitFailed
			}
			return exitOK
		}
		for _, p := range plans {
			fmt.Fprint(stdout, p.String())
		}
		if err != nil {
			return failed(ctx, stderr, err)
		}
		return exitOK
	case o.down:
		start := time.Now()
		rep, err := d.Down(ctx)
		if o.output == "json" {
			return finishJSON(ctx, stdout, "down", effective, rep, err, start)
		}
		return finish(ctx, stdout, stderr, "removed", effective, rep, err, start)
	default:
		start := time.Now()
		rep, err := d.Deploy(ctx, ro)
		if o.output == "json" {
			return finishJSON(ctx, stdout, "deploy", effective, rep, err, start)
		}
		return finish(ctx, stdout, stderr, "deployed", effective, rep, err, start)
	}
}

// configError prints a configuration's problems, one per line.
func configError(stderr io.Writer, file string, err error) int {
	var ve *raydeploy.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintf(stderr, "deploy-master: %s: %d problem(s):\n", file, len(ve.Problems))
		for _, p := range ve.Problems {
			fmt.Fprintln(stderr, "  "+p.Error())
		}
		return exitUsage
	}
	fmt.Fprintln(stderr, "deploy-master:", err)
	return exitUsage
}

func unknownCheckpoint(stderr io.Writer, err error) int {
	var ue *checkpoint.UnknownCheckpointError
	if !errors.As(err, &ue) {
		fmt.Fprintln(stderr, "deploy-master:", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "deploy-master: unknown checkpoint %q; valid checkpoints:\n", ue.Name)
	for _, n := range ue.Valid {
		fmt.Fprintln(stderr, "  "+n)
	}
	return exitUsage
}

// approver builds the --approval / --auto-approve channel (the Deployer
// records its requests and decisions in <stateDir>/audit.log).
func approver(o *options, stateDir string, stderr io.Writer) approval.Approver {
	switch {
	case o.autoApprove:
		fmt.Fprintf(stderr, "WARNING: --auto-approve: every checkpoint runs without asking, DESTRUCTIVE ones included "+
			"(cleanup-existing, --down); decisions are recorded in %s\n", filepath.Join(stateDir, raydeploy.AuditFile))
		return approval.NewAuto(approval.CurrentUser(), true)
	case o.approval == approvalAuto:
		return approval.NewAuto(approval.CurrentUser(), false)
	case o.approval == approvalTerminal:
		return approval.NewTerminal()
	case o.approval == approvalFile:
		return approval.NewFile(stateDir)
	}
	return approval.FirstOf(approval.NewTerminal(), approval.NewFile(stateDir))
}

// waitHint says how to answer an approval request of checkpoint cp, and the
// approval file to write when the file channel listens.
func waitHint(o *options, stateDir string) func(cp string) (string, string) {
	file := approval.NewFile(stateDir)
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	return func(cp string) (string, string) {
		switch {
		case o.autoApprove || o.approval == approvalAuto:
			return "auto-approving", ""
		case o.approval == approvalTerminal:
			return "answer here", ""
		case o.approval == approvalFile || !tty:
			return "write " + file.Path(cp), file.Path(cp)
		default:
			return "answer here, or write " + file.Path(cp), file.Path(cp)
		}
	}
}

// approveCommand is a shell command that writes the approval file for req:
// the plan digest it approves and, for a destructive step, the
// acknowledgement of its risks, timed and signed when it runs.
func approveCommand(path string, req approval.Request) string {
	ack := ""
	if req.Destructive {
		ack = `,"acknowledge_risks":true`
	}
	return fmt.Sprintf(`printf '{"approved_at":"%%s","approved_by":"%%s","approved":true,"plan_digest":"%s"%s}\n' "$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)" "${USER:-$(id -un)}" > %s`,
		req.PlanDigest, ack, shellQuote(path))
}

// progress prints one line per checkpoint start and finish, per node finish
// and per approval request. The runner calls it on one goroutine.
func progress(w io.Writer, c *raydeploy.Cluster, hint func(string) (string, string)) checkpoint.EventSink {
	width := 4
	for _, n := range c.Nodes() {
		width = max(width, len(n.ID()))
	}
	started := map[string]time.Time{}
	took := func(cp string, at time.Time) string {
		return at.Sub(started[cp]).Round(100 * time.Millisecond).String()
	}
	return func(e checkpoint.Event) {
		switch e := e.(type) {
		case checkpoint.CheckpointStarted:
			started[e.Checkpoint] = e.At
			fmt.Fprintf(w, "▶ %s\n", e.Checkpoint)
		case checkpoint.CheckpointPlanned:
			if !e.Plan.Empty() {
				fmt.Fprintf(w, "  plan: %d change(s) on %d node(s)\n", len(e.Plan.Items), len(e.Plan.Nodes()))
			}
		case checkpoint.ApprovalWaiting:
			h, file := hint(e.Checkpoint)
			fmt.Fprintf(w, "  waiting for approval of %s: %s\n", e.Checkpoint, h)
			if file != "" {
				// The channel makes the directory when it starts waiting,
				// a moment after this event: make it now so the printed
				// command works however soon it is pasted.
				_ = os.MkdirAll(filepath.Dir(file), 0o700)
				fmt.Fprintf(w, "  to approve this plan by file, write %s containing\n    %s\n  for example by running in another shell:\n    $ %s\n",
					file, approval.ApprovalJSON(e.Request, approval.CurrentUser(), e.At), approveCommand(file, e.Request))
			}
		case checkpoint.ApprovalDecided:
			switch {
			case e.Err != nil:
				fmt.Fprintf(w, "  no approval for %s: %v\n", e.Checkpoint, e.Err)
			case e.Decision.Approved:
				fmt.Fprintf(w, "  approved by %s via %s\n", e.Decision.By, e.Decision.Channel)
			default:
				fmt.Fprintf(w, "  refused by %s via %s\n", e.Decision.By, e.Decision.Channel)
			}
		case checkpoint.NodeFinished:
			if e.Err != nil {
				fmt.Fprintf(w, "  ✗ %-*s  %v\n", width, e.Node, nodeCause(e.Node, e.Err))
			} else {
				fmt.Fprintf(w, "  ✓ %-*s  %s\n", width, e.Node, e.Summary)
			}
		case checkpoint.CheckpointSkipped:
			fmt.Fprintf(w, "= %s: %s\n", e.Checkpoint, e.Reason)
		case checkpoint.CheckpointFinished:
			fmt.Fprintf(w, "✓ %s (%s)\n", e.Checkpoint, took(e.Checkpoint, e.At))
		case checkpoint.CheckpointFailed:
			fmt.Fprintf(w, "✗ %s (%s)\n", e.Checkpoint, took(e.Checkpoint, e.At))
		case checkpoint.RunFinished:
			if e.Dropped > 0 {
				fmt.Fprintf(w, "(%d progress lines lost: output too slow)\n", e.Dropped)
			}
		}
	}
}

// finish prints the outcome of Deploy or Down and returns the exit status.
func finish(ctx context.Context, stdout, stderr io.Writer, verb string, c *raydeploy.Cluster, rep *checkpoint.Report, err error, start time.Time) int {
	took := time.Since(start).Round(100 * time.Millisecond)
	if err == nil {
		ran, satisfied := 0, 0
		for _, cr := range rep.Checkpoints {
			if cr.Status == checkpoint.StatusSucceeded && cr.Skipped == "" {
				ran++
			} else {
				satisfied++
			}
		}
		fmt.Fprintf(stdout, "✓ %s %s: %d checkpoint(s) run, %d already done (%s)\n", verb, c.Name, ran, satisfied, took)
		return exitOK
	}
	var failedCP *checkpoint.CheckpointReport
	if rep != nil {
		for i := range rep.Checkpoints {
			if rep.Checkpoints[i].Err != nil {
				failedCP = &rep.Checkpoints[i]
			}
		}
	}
	if failedCP == nil { // the run never reached a checkpoint (lock, ledger, Ctrl-C)
		return failed(ctx, stderr, err)
	}
	fmt.Fprintf(stderr, "✗ failed at checkpoint %s after %s:\n", failedCP.Name, took)
	nodes := 0
	for _, n := range failedCP.Nodes {
		if n.Err != nil {
			nodes++
			fmt.Fprintf(stderr, "  %s: %v\n", n.Node, nodeCause(n.Node, n.Err))
		}
	}
	if nodes == 0 {
		fmt.Fprintf(stderr, "  %v\n", failedCP.Err)
	}
	if rec, rerr := checkpoint.ReadFailure(c.StateDir); rerr == nil && rec != nil && rec.Checkpoint == failedCP.Name {
		if rec.ResumeCommand != "" {
			fmt.Fprintf(stderr, "fix the cause, then resume with:\n  %s\n", rec.ResumeCommand)
		}
		fmt.Fprintf(stderr, "failure record: %s\n", filepath.Join(c.StateDir, checkpoint.FailureFile))
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitFailed
}

// finishJSON prints the outcome of Deploy or Down as a raydeploy.run/v1
// document and returns the exit status.
func finishJSON(ctx context.Context, stdout io.Writer, action string, c *raydeploy.Cluster, rep *checkpoint.Report, err error, start time.Time) int {
	doc := runDocument(action, c.Name, rep, err, time.Since(start))
	if err != nil {
		if rec, rerr := checkpoint.ReadFailure(c.StateDir); rerr == nil && rec != nil {
			doc.ResumeCommand = rec.ResumeCommand
			doc.FailureRecord = filepath.Join(c.StateDir, checkpoint.FailureFile)
		}
	}
	if werr := writeJSON(stdout, doc); werr != nil {
		return exitFailed
	}
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		return exitInterrupted
	}
	return exitFailed
}

// failed prints an error that is not a checkpoint's failure.
func failed(ctx context.Context, stderr io.Writer, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "deploy-master: interrupted:", err)
		return exitInterrupted
	}
	var le *checkpoint.LockedError
	if errors.As(err, &le) {
		fmt.Fprintf(stderr, "deploy-master: another run holds this cluster's state: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stderr, "deploy-master:", err)
	return exitFailed
}

// list prints the checkpoints with approval and destructive marks and their
// ledger status, and the last failure if one is recorded.
func list(ctx context.Context, d *raydeploy.Deployer, stdout, stderr io.Writer) int {
	infos, err := d.List(ctx)
	if err != nil {
		return failed(ctx, stderr, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tCHECKPOINT\tAPPROVAL\tDESTRUCTIVE\tSTATUS\tDESCRIPTION")
	for i, in := range infos {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, in.Name, yesNo(in.NeedsApproval || in.Destructive), yesNo(in.Destructive), in.Status, in.Description)
	}
	_ = tw.Flush()
	if rec, err := checkpoint.ReadFailure(d.Cluster().StateDir); err == nil && rec != nil {
		fmt.Fprintf(stdout, "\nlast failure: %s at %s", rec.Checkpoint, rec.Time.Local().Format(time.DateTime))
		if len(rec.FailedNodes) > 0 {
			fmt.Fprintf(stdout, " on %s", strings.Join(rec.FailedNodes, ", "))
		}
		fmt.Fprintln(stdout)
		if rec.ResumeCommand != "" {
			fmt.Fprintf(stdout, "resume with: %s\n", rec.ResumeCommand)
		}
	}
	return exitOK
}

// nodeCause drops the "node X: op:" prefixes that repeat the node's name,
// keeping the innermost operation: "connect: ssh 10.0.0.1:22: ...".
func nodeCause(node string, err error) string {
	var ne *checkpoint.NodeError
	for errors.As(err, &ne) && ne.Node == node {
		var inner *checkpoint.NodeError
		if !errors.As(ne.Err, &inner) || inner.Node != node {
			return ne.Op + ": " + ne.Err.Error()
		}
		err = ne.Err
	}
	return err.Error()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// resumeCommand is the command line that re-runs after a failure, for the
// failure record; the runner replaces {checkpoint} by the failed one's name.
// --auto-approve is left out on purpose: a command saved on disk should not
// approve destructive steps for whoever copies it.
func resumeCommand(o *options) string {
	var args []string
	switch {
	case o.down:
		args = append(args, "--down")
	case o.only != "":
		args = append(args, "--checkpoint", "{checkpoint}")
	default:
		args = append(args, "--deploy", "--resume")
	}
	args = append(args, "--config", abs(o.config))
	if o.stateDir != "" {
		args = append(args, "--state-dir", abs(o.stateDir))
	}
	if o.approvalSet {
		args = append(args, "--approval", o.approval)
	}
	if o.images != string(raydeploy.ImageAuto) {
		args = append(args, "--images", o.images)
	}
	if o.imageFile != "" {
		args = append(args, "--image-file", abs(o.imageFile))
	}
	if o.imageRelay {
		args = append(args, "--image-relay")
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	self := o.self
	if self == "" {
		self = "deploy-master"
	}
	return self + " " + strings.Join(args, " ")
}

// selfCommand is how a new shell runs this program again: its absolute path,
// or, under "go run" (whose binary is deleted when it exits), go run from the
// directory it was started in.
func selfCommand() string {
	exe, err := os.Executable()
	if err == nil && !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return shellQuote(exe)
	}
	if wd, err := os.Getwd(); err == nil {
		if _, err := os.Stat(filepath.Join(wd, "examples", "deploy-master", "main.go")); err == nil {
			return "cd " + shellQuote(wd) + " && go run ./examples/deploy-master"
		}
	}
	return "go run github.com/raydeploy/sdk/examples/deploy-master"
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+:,@{}") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
