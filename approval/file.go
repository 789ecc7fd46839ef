package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FileRejectedError reports an approval file that was refused as unsafe or malformed.
type FileRejectedError struct {
	Path   string
	Reason string
}

// Error describes the refusal.
func (e *FileRejectedError) Error() string {
	return fmt.Sprintf("approval file %s refused: %s", e.Path, e.Reason)
}

// fileApproval is the on-disk approval, compatible with the seed's
// {"approved_at": "...", "approved_by": "..."} plus optional fields.
type fileApproval struct {
	ApprovedAt       string `json:"approved_at"`
	ApprovedBy       string `json:"approved_by"`
	Approved         *bool  `json:"approved,omitempty"`
	Reason           string `json:"reason,omitempty"`
	AcknowledgeRisks bool   `json:"acknowledge_risks,omitempty"`
	PlanDigest       string `json:"plan_digest,omitempty"`
}

// File waits for a person to create <Dir>/<checkpoint>.json. While it waits, it
// writes <Dir>/<checkpoint>.request.json describing the plan and its digest.
//
// The approval file must be a regular file (not a symlink), owned by the
// user running this process, and neither group- nor world-writable. Each file
// approves once: it is moved to <Dir>/archive/<checkpoint>-<decision id>.json.
// A file without plan_digest (the seed's format) covers the plan of the request
// it answers; one with a different plan_digest is refused with ErrDigestMismatch.
type File struct {
	Dir          string
	PollInterval time.Duration // default 2s
	Timeout      time.Duration // 0: wait until ctx ends
}

// NewFile returns a File channel reading approvals from <stateDir>/approvals.
func NewFile(stateDir string) *File {
	return &File{Dir: filepath.Join(stateDir, "approvals"), PollInterval: 2 * time.Second}
}

// Path is the file that approves checkpoint name.
func (f *File) Path(checkpoint string) string { return filepath.Join(f.Dir, checkpoint+".json") }

// Approve polls for the approval file until it appears, ctx ends or Timeout passes.
func (f *File) Approve(ctx context.Context, r Request) (Decision, error) {
	if err := ensurePrivateDir(f.Dir); err != nil {
		return Decision{}, err
	}
	if err := writeFileReplace(filepath.Join(f.Dir, r.Checkpoint+".request.json"), mustJSON(r), 0o600); err != nil {
		return Decision{}, fmt.Errorf("file approval of checkpoint %s: write request: %w", r.Checkpoint, err)
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
	path := f.Path(r.Checkpoint)
	fi, err := os.Lstat(path)
	if err != nil {
		return Decision{}, err
	}
	if err := checkOwnedPrivate(path, fi); err != nil {
		return Decision{}, err
	}
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: "cannot open: " + err.Error()}
	}
	defer fh.Close()
	fi2, err := fh.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		return Decision{}, &FileRejectedError{Path: path, Reason: "file changed while being checked"}
	}
	data, err := io.ReadAll(io.LimitReader(fh, 64<<10))
	if err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: "cannot read: " + err.Error()}
	}
	var fa fileApproval
	if err := json.Unmarshal(data, &fa); err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: "not valid approval JSON: " + err.Error()}
	}
	if fa.ApprovedBy == "" {
		return Decision{}, &FileRejectedError{Path: path, Reason: "approved_by is empty"}
	}
	at, err := time.Parse(time.RFC3339, fa.ApprovedAt)
	if err != nil {
		return Decision{}, &FileRejectedError{Path: path, Reason: "approved_at is not an RFC 3339 time"}
	}
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
	if err := ensurePrivateDir(archive); err != nil {
		return Decision{}, err
	}
	if fa.PlanDigest != "" && fa.PlanDigest != r.PlanDigest {
		_ = os.Rename(path, filepath.Join(archive, r.Checkpoint+"-"+d.ID+".rejected.json"))
		return Decision{}, fmt.Errorf("%s: %w (file: %s, plan: %s)", path, ErrDigestMismatch, fa.PlanDigest, r.PlanDigest)
	}
	// Consume the file before honouring it, so it can never approve twice.
	if err := os.Rename(path, filepath.Join(archive, r.Checkpoint+"-"+d.ID+".json")); err != nil {
		return Decision{}, fmt.Errorf("archive approval file: %w", err)
	}
	return d, nil
}

// checkOwnedPrivate refuses symlinks, non-regular files, group/world-writable
// files and files owned by another user than the effective one.
func checkOwnedPrivate(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &FileRejectedError{Path: path, Reason: "is a symbolic link"}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return &FileRejectedError{Path: path, Reason: "is not a regular file"}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &FileRejectedError{Path: path, Reason: fmt.Sprintf("is group- or world-writable (mode %04o)", fi.Mode().Perm())}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return &FileRejectedError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by uid %d", st.Uid, os.Geteuid())}
	}
	return nil
}

func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create approvals directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("approvals directory: %w", err)
	}
	if !fi.IsDir() {
		return &FileRejectedError{Path: dir, Reason: "is not a directory"}
	}
	return checkOwnedPrivate(dir, fi)
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
