package checkpoint

import (
	"bytes"
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

// LedgerVersion is the ledger format this package reads and writes.
const LedgerVersion = 1

// LedgerFile is the ledger's file name inside the state directory.
const LedgerFile = "ledger.json"

// Status is the state of a checkpoint or of a checkpoint on one node.
type Status string

// Statuses.
const (
	StatusPending          Status = "pending"
	StatusRunning          Status = "running"
	StatusSucceeded        Status = "succeeded"
	StatusFailed           Status = "failed"
	StatusSkippedSatisfied Status = "skipped-satisfied"
)

// Done reports whether s counts as finished successfully.
func (s Status) Done() bool { return s == StatusSucceeded || s == StatusSkippedSatisfied }

func (s Status) valid() bool {
	switch s {
	case StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusSkippedSatisfied:
		return true
	}
	return false
}

// ApprovalRef records the decision that allowed a checkpoint to run.
type ApprovalRef struct {
	// DecisionID is the approval.Decision's ID (see the audit log).
	DecisionID string `json:"decision_id"`
	// By is who approved.
	By string `json:"by"`
	// Channel is how the decision was obtained (approval.Channel).
	Channel string `json:"channel"`
	// PlanDigest is the digest of the plan approved.
	PlanDigest string `json:"plan_digest"`
}

// NodeRecord is the ledger entry of one checkpoint on one node.
type NodeRecord struct {
	// Status is the checkpoint's status on the node.
	Status Status `json:"status"`
	// StartedAt is when it started on the node, UTC (zero: not yet).
	StartedAt time.Time `json:"started_at,omitzero"`
	// EndedAt is when it ended there, UTC (zero: not yet).
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Summary is what Run reported for the node, cut to 2048 bytes, or why
	// nothing was run there.
	Summary string `json:"summary,omitempty"`
	// Error is why it failed on the node, cut to 2048 bytes (empty: none).
	Error string `json:"error,omitempty"`
	// Approval is the decision its run went ahead on (nil: none needed).
	Approval *ApprovalRef `json:"approval,omitempty"`
}

// Record is the ledger entry of one checkpoint.
type Record struct {
	// Status is the checkpoint's status.
	Status Status `json:"status"`
	// ConfigDigest is the checkpoint's ConfigDigest at its last run (empty:
	// it has none); Resume compares it.
	ConfigDigest string `json:"config_digest,omitempty"`
	// PlanDigest is the digest of the plan of the last run (empty: planning
	// failed or not reached).
	PlanDigest string `json:"plan_digest,omitempty"`
	// StartedAt is when the last run started, UTC.
	StartedAt time.Time `json:"started_at,omitzero"`
	// EndedAt is when it ended, UTC (zero: it has not).
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Error is why the last run failed (empty: it did not).
	Error string `json:"error,omitempty"`
	// Approval is the decision the last run went ahead on (nil: none needed,
	// or not approved).
	Approval *ApprovalRef `json:"approval,omitempty"`
	// Nodes holds the record of each node by node ID.
	Nodes map[string]*NodeRecord `json:"nodes"`
}

// Ledger is what finished where: one Record per checkpoint name.
type Ledger struct {
	// Version is the format version, LedgerVersion.
	Version int `json:"version"`
	// UpdatedAt is when the ledger was last saved, UTC (zero: never).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Checkpoints holds each checkpoint's record by name.
	Checkpoints map[string]*Record `json:"checkpoints"`
}

// NewLedger returns an empty ledger of the current version.
func NewLedger() *Ledger {
	return &Ledger{Version: LedgerVersion, Checkpoints: map[string]*Record{}}
}

// Record returns the record of checkpoint name, creating it if needed.
func (l *Ledger) Record(name string) *Record {
	r := l.Checkpoints[name]
	if r == nil {
		r = &Record{Status: StatusPending, Nodes: map[string]*NodeRecord{}}
		l.Checkpoints[name] = r
	}
	if r.Nodes == nil {
		r.Nodes = map[string]*NodeRecord{}
	}
	return r
}

// Node returns the record of checkpoint name on node, creating it if needed.
func (l *Ledger) Node(name, node string) *NodeRecord {
	r := l.Record(name)
	n := r.Nodes[node]
	if n == nil {
		n = &NodeRecord{Status: StatusPending}
		r.Nodes[node] = n
	}
	return n
}

// CorruptStateError reports a state file that cannot be read; it is never silently reset.
type CorruptStateError struct {
	// Path is the state file (or the name given to a Decode function).
	Path string
	// Err is what is wrong with it.
	Err error
}

// Error describes the problem.
func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (move it away to start over): %v", e.Path, e.Err)
}

// Unwrap returns the decoding error.
func (e *CorruptStateError) Unwrap() error { return e.Err }

// VersionError reports a state file written in a format version this package does not know.
type VersionError struct {
	// Path is the state file (or the name given to a Decode function).
	Path string
	// Found is the version the file has.
	Found int
	// Want is the version this package reads, LedgerVersion.
	Want int
}

// Error describes the mismatch.
func (e *VersionError) Error() string {
	return fmt.Sprintf("state file %s has format version %d, this program reads version %d", e.Path, e.Found, e.Want)
}

// DecodeLedger parses a ledger; name is used in errors. Malformed input gives
// a *CorruptStateError, an unknown version a *VersionError.
func DecodeLedger(name string, data []byte) (*Ledger, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, &CorruptStateError{Path: name, Err: err}
	}
	if probe.Version == nil {
		return nil, &CorruptStateError{Path: name, Err: errors.New("no version field")}
	}
	if *probe.Version != LedgerVersion {
		return nil, &VersionError{Path: name, Found: *probe.Version, Want: LedgerVersion}
	}
	var l Ledger
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, &CorruptStateError{Path: name, Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) { // dec.More misses a stray ']' or '}'
		return nil, &CorruptStateError{Path: name, Err: errors.New("trailing data after the ledger")}
	}
	if l.Checkpoints == nil {
		l.Checkpoints = map[string]*Record{}
	}
	for cp, r := range l.Checkpoints {
		if r == nil || !r.Status.valid() {
			return nil, &CorruptStateError{Path: name, Err: fmt.Errorf("checkpoint %q: missing or unknown status", cp)}
		}
		if r.Nodes == nil {
			r.Nodes = map[string]*NodeRecord{}
		}
		for node, n := range r.Nodes {
			if n == nil || !n.Status.valid() {
				return nil, &CorruptStateError{Path: name, Err: fmt.Errorf("checkpoint %q node %q: missing or unknown status", cp, node)}
			}
		}
	}
	return &l, nil
}

// Store keeps the ledger in a cluster's state directory.
type Store struct {
	dir string
}

// OpenStore returns the Store of state directory dir, creating it with mode
// 0700. An existing directory is checked: a symbolic link, another owner or
// write access by group or others is refused; read access by others is
// removed (chmod 0700).
func OpenStore(dir string) (*Store, error) {
	if err := checkStateDir(dir, slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the ledger file's path.
func (s *Store) Path() string { return filepath.Join(s.dir, LedgerFile) }

// Load reads the ledger; a missing file is an empty ledger. The file is
// opened like every state file (readStateFile): a symbolic link, a FIFO, a
// file of another owner or writable by others is refused; one readable by
// others is set to 0600.
func (s *Store) Load() (*Ledger, error) {
	data, err := readStateFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return NewLedger(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return DecodeLedger(s.Path(), data)
}

// maxStateFile bounds what is read of a ledger or failure record.
const maxStateFile = 64 << 20

// readStateFile reads a state file without following a symbolic link and
// without blocking (a FIFO in its place is refused, not waited on), and
// checks the opened file, not the path: a regular file of this user, not
// writable by group or others (*fstrust.UnsafeError); read access by others
// is removed (chmod 0600). A missing file matches fs.ErrNotExist.
func readStateFile(path string) ([]byte, error) {
	f, _, err := fstrust.Open(path, os.O_RDONLY, 0o600, fstrust.RepairRead)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxStateFile {
		return nil, &CorruptStateError{Path: path, Err: fmt.Errorf("larger than %d bytes", maxStateFile)}
	}
	return data, nil
}

// Save writes the ledger atomically with mode 0600.
func (s *Store) Save(l *Ledger) error {
	l.Version = LedgerVersion
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	return WriteFileAtomic(s.Path(), append(data, '\n'), 0o600)
}
