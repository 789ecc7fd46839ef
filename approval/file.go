package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/raydeploy/sdk/internal/fstrust"
)

// FileRejectedError reports an approval file that was refused as unsafe,
// malformed, or not enough for the request it answers. Its Reason says what
// to write instead when the content was the problem.
type FileRejectedError struct {
	// Path is the refused file (or the unsafe directory above it).
	Path string
	// Reason says why it was refused and, for its content, what to write instead.
	Reason string
	// Err is the rule the file broke (ErrRisksNotAcknowledged), or nil.
	Err error
}

// Error describes the refusal.
func (e *FileRejectedError) Error() string {
	return fmt.Sprintf("approval file %s refused: %s", e.Path, e.Reason)
}

// Unwrap returns the broken rule, so errors.Is(err, ErrRisksNotAcknowledged) holds.
func (e *FileRejectedError) Unwrap() error { return e.Err }

// ApprovalJSON is the approval file that approves exactly r's plan: one line
// of JSON with approved_at (at, in UTC), approved_by, "approved": true,
// plan_digest and, when the checkpoint is destructive, "acknowledge_risks":
// true. Writing it to the path the File channel waits on approves the plan.
func ApprovalJSON(r Request, by string, at time.Time) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	s := fmt.Sprintf(`{"approved_at": %s, "approved_by": %s, "approved": true, "plan_digest": %s`,
		q(at.UTC().Format(time.RFC3339)), q(by), q(r.PlanDigest))
	if r.Destructive {
		s += `, "acknowledge_risks": true`
	}
	return s + "}"
}

// WaitMessage tells a person how to approve r by file: the path to write and
// the exact JSON (by CurrentUser, timed now) that approves its plan.
func (f *File) WaitMessage(r Request) string {
	what := "to approve"
	if r.Destructive {
		what = "to approve this destructive step (its risks acknowledged)"
	}
	return fmt.Sprintf("%s, write %s containing:\n%s", what, f.Path(r.Checkpoint), ApprovalJSON(r, CurrentUser(), time.Now()))
}

// fileApproval is the on-disk approval, compatible with the seed's
// {"approved_at": "...", "approved_by": "..."} plus optional fields.
type fileApproval struct {
	ApprovedAt       string
	ApprovedBy       string
	Approved         *bool
	Reason           string
	AcknowledgeRisks bool
	PlanDigest       string
}

// maxApprovalFile bounds what is read of an approval file.
const maxApprovalFile = 64 << 10

// decodeFileApproval parses an approval file strictly: one JSON object whose
// keys are exactly the known ones, each at most once, none null, each of its
// type; approved_by and approved_at (RFC 3339) are required. The error says
// which key is wrong and how.
func decodeFileApproval(data []byte) (fileApproval, error) {
	var fa fileApproval
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fa, fmt.Errorf("not valid approval JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fa, fmt.Errorf("not valid approval JSON: want an object, found %s", describeToken(tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fa, fmt.Errorf("not valid approval JSON: %v", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fa, fmt.Errorf("key %q appears more than once", key)
		}
		seen[key] = true
		val, err := dec.Token()
		if err != nil {
			return fa, fmt.Errorf("not valid approval JSON: key %q: %v", key, err)
		}
		str := func(dst *string) error {
			s, ok := val.(string)
			if !ok {
				return fmt.Errorf("key %q must be a string, found %s", key, describeToken(val))
			}
			*dst = s
			return nil
		}
		boolean := func(dst *bool) error {
			b, ok := val.(bool)
			if !ok {
				return fmt.Errorf("key %q must be true or false, found %s", key, describeToken(val))
			}
			*dst = b
			return nil
		}
		if val == nil {
			return fa, fmt.Errorf("key %q is null; give a value or leave the key out", key)
		}
		switch key {
		case "approved_at":
			err = str(&fa.ApprovedAt)
		case "approved_by":
			err = str(&fa.ApprovedBy)
		case "approved":
			var b bool
			if err = boolean(&b); err == nil {
				fa.Approved = &b
			}
		case "reason":
			err = str(&fa.Reason)
		case "acknowledge_risks":
			err = boolean(&fa.AcknowledgeRisks)
		case "plan_digest":
			err = str(&fa.PlanDigest)
		default:
			return fa, fmt.Errorf("unknown key %q (known: approved_at, approved_by, approved, reason, acknowledge_risks, plan_digest)", key)
		}
		if err != nil {
			return fa, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fa, fmt.Errorf("not valid approval JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fa, errors.New("not valid approval JSON: data after the object")
	}
	if fa.ApprovedBy == "" {
		return fa, errors.New("approved_by is missing or empty")
	}
	if _, err := time.Parse(time.RFC3339, fa.ApprovedAt); err != nil {
		return fa, errors.New("approved_at is missing or not an RFC 3339 time (e.g. 2025-01-02T15:04:05Z)")
	}
	return fa, nil
}

func describeToken(t json.Token) string {
	switch v := t.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		if v == '[' {
			return "an array"
		}
		return string(v)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", t)
}

// File waits for a person to create <Dir>/<checkpoint>.json. While it waits, it
// writes <Dir>/<checkpoint>.request.json describing the plan and its digest.
//
// The approval file must be a regular file (opened without following a
// symlink and without blocking, then checked as opened), owned by the user
// running this process, and neither group- nor world-writable; the approvals
// directory and the state directory above it are checked on every poll.
// The file is decoded strictly: an unknown or repeated key, a null, or a
// value of the wrong type refuses it with a *FileRejectedError naming the
// key; "approved" defaults to true only when the key is absent. Each file
// approves once: it is moved to <Dir>/archive/<checkpoint>-<decision id>.json.
// A file without plan_digest (the seed's format) covers the plan of the request
// it answers; one with a different plan_digest is refused with ErrDigestMismatch.
// An approval of a destructive checkpoint without "acknowledge_risks": true
// is refused with a *FileRejectedError wrapping ErrRisksNotAcknowledged.
// Every refusal of the file's content says what to write instead
// (ApprovalJSON); WaitMessage says it before anything is written.
type File struct {
	// Dir is the approvals directory: <Dir>/<checkpoint>.json approves.
	Dir string
	// StateDir, when set, is checked like Dir on every poll (NewFile sets it
	// to the directory above Dir).
	StateDir     string
	PollInterval time.Duration // default 2s
	Timeout      time.Duration // 0: wait until ctx ends
	// Logger, when set, is told what to write (WaitMessage) and about
	// repaired directory permissions.
	Logger *slog.Logger
}

// NewFile returns a File channel reading approvals from <stateDir>/approvals.
func NewFile(stateDir string) *File {
	return &File{Dir: filepath.Join(stateDir, "approvals"), StateDir: stateDir, PollInterval: 2 * time.Second}
}

// Path is the file that approves checkpoint name.
func (f *File) Path(checkpoint string) string { return filepath.Join(f.Dir, checkpoint+".json") }

// Approve polls for the approval file until it appears, ctx ends or Timeout passes.
func (f *File) Approve(ctx context.Context, r Request) (Decision, error) {
	if err := f.checkDirs(); err != nil {
		return Decision{}, err
	}
	if err := writeFileReplace(filepath.Join(f.Dir, r.Checkpoint+".request.json"), mustJSON(r), 0o600); err != nil {
		return Decision{}, fmt.Errorf("file approval of checkpoint %s: write request: %w", r.Checkpoint, err)
	}
	if f.Logger != nil {
		f.Logger.Info("waiting for an approval file", "checkpoint", r.Checkpoint, "path", f.Path(r.Checkpoint),
			"write", ApprovalJSON(r, CurrentUser(), time.Now()))
	}
	interval := f.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	var deadline <-chan time.Time
	if f.Timeout > 0 {
		tm := time.NewTimer(f.Timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		d, err := f.try(r)
		if err == nil {
			_ = os.Remove(filepath.Join(f.Dir, r.Checkpoint+".request.json"))
			return d, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Decision{}, fmt.Errorf("file approval of checkpoint %s: %w", r.Checkpoint, err)
		}
		select {
		case <-ctx.Done():
			return Decision{}, fmt.Errorf("file approval of checkpoint %s: %w", r.Checkpoint, ctx.Err())
		case <-deadline:
			return Decision{}, fmt.Errorf("file approval of checkpoint %s: %w after %s", r.Checkpoint, ErrTimeout, f.Timeout)
		case <-tick.C:
		}
	}
}

func (f *File) try(r Request) (Decision, error) {
	if err := f.checkDirs(); err != nil {
		return Decision{}, err
	}
	path := f.Path(r.Checkpoint)
	fh, _, err := fstrust.Open(path, os.O_RDONLY, 0o600, fstrust.AllowRead)
	if err != nil {
		return Decision{}, rejected(err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxApprovalFile+1))
	if err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: "cannot read: " + err.Error()}
	}
	if len(data) > maxApprovalFile {
		return Decision{}, &FileRejectedError{Path: path, Reason: fmt.Sprintf("is larger than %d bytes", maxApprovalFile)}
	}
	fa, err := decodeFileApproval(data)
	if err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: err.Error() + "; " + f.fix(r)}
	}
	at, _ := time.Parse(time.RFC3339, fa.ApprovedAt)
	d := Decision{
		ID:                NewID(),
		RequestID:         r.ID,
		Approved:          fa.Approved == nil || *fa.Approved,
		By:                fa.ApprovedBy,
		Reason:            fa.Reason,
		RisksAcknowledged: fa.AcknowledgeRisks,
		DecidedAt:         at,
		Channel:           ChannelFile,
		PlanDigest:        r.PlanDigest,
	}
	archive := filepath.Join(f.Dir, "archive")
	if err := f.privateDir(archive); err != nil {
		return Decision{}, err
	}
	if fa.PlanDigest != "" && fa.PlanDigest != r.PlanDigest {
		_ = os.Rename(path, filepath.Join(archive, r.Checkpoint+"-"+d.ID+".rejected.json"))
		return Decision{}, fmt.Errorf("%s: %w (file: %s, plan: %s); %s", path, ErrDigestMismatch, fa.PlanDigest, r.PlanDigest, f.fix(r))
	}
	if d.Approved && r.Destructive && !fa.AcknowledgeRisks {
		// Refused here, where the path and the missing key are known, rather
		// than by Check after the file was consumed.
		_ = os.Rename(path, filepath.Join(archive, r.Checkpoint+"-"+d.ID+".rejected.json"))
		return Decision{}, &FileRejectedError{Path: path, Err: ErrRisksNotAcknowledged,
			Reason: fmt.Sprintf(`checkpoint %s is destructive and the file lacks "acknowledge_risks": true (%v); %s`, r.Checkpoint, ErrRisksNotAcknowledged, f.fix(r))}
	}
	// Consume the file before honouring it, so it can never approve twice.
	if err := os.Rename(path, filepath.Join(archive, r.Checkpoint+"-"+d.ID+".json")); err != nil {
		return Decision{}, fmt.Errorf("archive approval file: %w", err)
	}
	return d, nil
}

// fix says what to write instead of a refused approval file.
func (f *File) fix(r Request) string {
	return "to approve the plan waiting now, write instead: " + ApprovalJSON(r, CurrentUser(), time.Now())
}

// rejected turns a refusal by fstrust into a *FileRejectedError; other
// errors (fs.ErrNotExist above all) pass unchanged.
func rejected(err error) error {
	var ue *fstrust.UnsafeError
	if errors.As(err, &ue) {
		return &FileRejectedError{Path: ue.Path, Reason: ue.Reason}
	}
	return err
}

// checkDirs checks, on every poll, the state directory (when known) and the
// approvals directory: each a directory of this user, not a symlink, not
// writable by anyone else (refused); read access by others is removed.
func (f *File) checkDirs() error {
	if f.StateDir != "" {
		if err := f.privateDir(f.StateDir); err != nil {
			return err
		}
	}
	return f.privateDir(f.Dir)
}

func (f *File) privateDir(dir string) error {
	rep, err := fstrust.PrivateDir(dir)
	if err != nil {
		return rejected(err)
	}
	if rep != nil && f.Logger != nil {
		f.Logger.Warn("approval directory permissions repaired", "repair", rep.String())
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []byte("{}")
	}
	return append(b, '\n')
}

// writeFileReplace writes data to a temporary file next to path and renames it
// into place (the checkpoint package owns the fully durable variant).
func writeFileReplace(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if err := tmp.Chmod(perm); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(name, path)
		}
		if err == nil {
			return nil
		}
		_ = os.Remove(name)
		return err
	} else {
		tmp.Close()
		_ = os.Remove(name)
		return err
	}
}
