package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FailureFile is the failure record's file name inside the state directory.
const FailureFile = "deployment-failure.json"

// FailureRecord describes the checkpoint a run stopped at and how to resume,
// like the seed's deployment-failure.json.
type FailureRecord struct {
	// Version is the format version, LedgerVersion.
	Version int `json:"version"`
	// Checkpoint is the checkpoint the run stopped at.
	Checkpoint string `json:"checkpoint"`
	// FailedNodes are the nodes the checkpoint failed on (empty: it failed as
	// a whole).
	FailedNodes []string `json:"failed_nodes,omitempty"`
	// NodeErrors holds each failed node's error by node ID, cut to 2048
	// bytes.
	NodeErrors map[string]string `json:"node_errors,omitempty"`
	// Error is the run's error.
	Error string `json:"error"`
	// Time (timestamp) is when the failure was recorded, UTC.
	Time time.Time `json:"timestamp"`
	// ResumeCommand is the command that resumes the deployment
	// (Options.ResumeCommand; empty: none set).
	ResumeCommand string `json:"resume_command,omitempty"`
}

// ReadFailure returns the failure record in stateDir, or nil if there is
// none. It is opened like the ledger (no symbolic link, no FIFO, this
// user's, not writable by others; read access by others is removed) and
// decoded strictly (DecodeFailure).
func ReadFailure(stateDir string) (*FailureRecord, error) {
	path := filepath.Join(stateDir, FailureFile)
	data, err := readStateFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read failure record: %w", err)
	}
	return DecodeFailure(path, data)
}

// DecodeFailure parses a failure record strictly; name is used in errors.
// Unknown keys, trailing data or a missing checkpoint give a
// *CorruptStateError, an unknown version a *VersionError.
func DecodeFailure(name string, data []byte) (*FailureRecord, error) {
	var f FailureRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &CorruptStateError{Path: name, Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &CorruptStateError{Path: name, Err: errors.New("trailing data after the failure record")}
	}
	if f.Version != LedgerVersion {
		return nil, &VersionError{Path: name, Found: f.Version, Want: LedgerVersion}
	}
	if f.Checkpoint == "" {
		return nil, &CorruptStateError{Path: name, Err: errors.New("no checkpoint named")}
	}
	return &f, nil
}

func (r *Runner) writeFailure(name string, cr CheckpointReport, err error) error {
	if lerr := r.lock.Check(); lerr != nil {
		return lerr
	}
	f := FailureRecord{Version: LedgerVersion, Checkpoint: name, Error: err.Error(), Time: r.opts.Now().UTC()}
	for _, n := range cr.Nodes {
		if n.Err != nil {
			f.FailedNodes = append(f.FailedNodes, n.Node)
			if f.NodeErrors == nil {
				f.NodeErrors = map[string]string{}
			}
			f.NodeErrors[n.Node] = clip(n.Err.Error())
		}
	}
	if r.opts.ResumeCommand != "" {
		f.ResumeCommand = strings.ReplaceAll(r.opts.ResumeCommand, "{checkpoint}", name)
	}
	data, merr := json.MarshalIndent(f, "", "  ")
	if merr != nil {
		return fmt.Errorf("encode failure record: %w", merr)
	}
	if werr := WriteFileAtomic(filepath.Join(r.opts.StateDir, FailureFile), append(data, '\n'), 0o600); werr != nil {
		return fmt.Errorf("failure record: %w", werr)
	}
	return nil
}

// clearFailure removes the failure record once the checkpoint it names has
// succeeded (or is satisfied), i.e. after a later successful run covered it.
func (r *Runner) clearFailure(l *Ledger) error {
	if err := r.lock.Check(); err != nil {
		return err
	}
	f, err := ReadFailure(r.opts.StateDir)
	if err != nil || f == nil {
		return err
	}
	if rec := l.Checkpoints[f.Checkpoint]; rec != nil && rec.Status.Done() {
		if err := os.Remove(filepath.Join(r.opts.StateDir, FailureFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove failure record: %w", err)
		}
		return syncDir(r.opts.StateDir)
	}
	return nil
}
