package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
)

// Execution statuses. STARTED, RUNNING, COMPLETED and FAILED are the seed's;
// CANCELLED and INTERRUPTED are this server's additions.
const (
	ExecStarted     = "STARTED"
	ExecRunning     = "RUNNING"
	ExecCompleted   = "COMPLETED"
	ExecFailed      = "FAILED"
	ExecCancelled   = "CANCELLED"
	ExecInterrupted = "INTERRUPTED"
)

// Execution is one run started through the API, kept in the state directory
// (api/executions/<id>.json) so that it survives a server restart. A run cut
// off by a restart is INTERRUPTED and can be resumed.
type Execution struct {
	// ID (execution_id) is the execution's ID, 32 hex digits.
	ID string `json:"execution_id"`
	// Status is STARTED, RUNNING, COMPLETED, FAILED, CANCELLED or
	// INTERRUPTED.
	Status string `json:"status"`
	// Checkpoint is the only checkpoint run (empty: not limited to one).
	Checkpoint string `json:"checkpoint,omitempty"`
	// StartFrom is the checkpoint the run started from (empty: the first).
	StartFrom string `json:"start_from,omitempty"`
	// Resume is true when checkpoints that already succeeded were skipped.
	Resume bool `json:"resume"`
	// ResumeOf is the ID of the execution this one resumes (empty: none).
	ResumeOf string `json:"resume_of,omitempty"`
	// RequestedBy is the principal who started it.
	RequestedBy string `json:"requested_by"`
	// StartedAt is when it started, UTC.
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when it ended, UTC (absent: not yet).
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// Message says how it ended and what to do next (empty: not ended).
	Message string `json:"message,omitempty"`
	// Error is why the run failed (empty: it did not).
	Error string `json:"error,omitempty"`
	// Checkpoints is what became of each checkpoint the run reached, in
	// order.
	Checkpoints []ExecutionCheckpoint `json:"checkpoints"`
}

// ExecutionCheckpoint is what became of one checkpoint in an execution.
type ExecutionCheckpoint struct {
	// Name is the checkpoint's name.
	Name string `json:"name"`
	// Status is a ledger status (running, succeeded, skipped-satisfied,
	// failed, ...) or waiting-approval.
	Status string `json:"status"`
	// Error is why it failed (empty: it did not).
	Error string `json:"error,omitempty"`
}

func (e *Execution) finished() bool {
	switch e.Status {
	case ExecCompleted, ExecFailed, ExecCancelled, ExecInterrupted:
		return true
	}
	return false
}

// setCheckpoint records the status of checkpoint name (appending it if new).
func (e *Execution) setCheckpoint(name, status, errText string) {
	for i := range e.Checkpoints {
		if e.Checkpoints[i].Name == name {
			e.Checkpoints[i].Status, e.Checkpoints[i].Error = status, errText
			return
		}
	}
	e.Checkpoints = append(e.Checkpoints, ExecutionCheckpoint{Name: name, Status: status, Error: errText})
}

var execIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// execStore keeps executions as one JSON file each, written atomically.
type execStore struct {
	dir string

	mu   sync.Mutex
	byID map[string]*Execution
}

// openExecStore loads every execution in dir (created 0700) and marks the
// ones a previous server left STARTED or RUNNING as INTERRUPTED.
func openExecStore(dir string, now time.Time) (*execStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("executions directory: %w", err)
	}
	s := &execStore{dir: dir, byID: map[string]*Execution{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("executions directory: %w", err)
	}
	for _, de := range entries {
		name := de.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || !execIDRE.MatchString(id) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("execution %s: %w", id, err)
		}
		e, err := decodeExecution(data)
		if err != nil {
			return nil, fmt.Errorf("execution %s: %w", id, err)
		}
		if !e.finished() {
			e.Status = ExecInterrupted
			e.Message = "the server stopped while this execution ran; resume it with POST /api/v1/executions/" + e.ID + "/resume"
			t := now.UTC()
			e.EndedAt = &t
			if err := s.write(e); err != nil {
				return nil, err
			}
		}
		s.byID[e.ID] = e
	}
	return s, nil
}

func decodeExecution(data []byte) (*Execution, error) {
	var e Execution
	if err := strictUnmarshal(data, &e); err != nil {
		return nil, err
	}
	if !execIDRE.MatchString(e.ID) {
		return nil, errors.New("bad execution_id")
	}
	return &e, nil
}

func (s *execStore) write(e *Execution) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := checkpoint.WriteFileAtomic(filepath.Join(s.dir, e.ID+".json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save execution %s: %w", e.ID, err)
	}
	return nil
}

// put stores a new execution.
func (s *execStore) put(e *Execution) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(e); err != nil {
		return err
	}
	s.byID[e.ID] = e
	return nil
}

// update changes execution id under the lock and saves it; it returns a copy.
func (s *execStore) update(id string, fn func(*Execution)) (Execution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return Execution{}, fs.ErrNotExist
	}
	fn(e)
	return clone(e), s.write(e)
}

func (s *execStore) get(id string) (Execution, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return Execution{}, false
	}
	return clone(e), true
}

// list returns every execution, newest first.
func (s *execStore) list() []Execution {
	s.mu.Lock()
	out := make([]Execution, 0, len(s.byID))
	for _, e := range s.byID {
		out = append(out, clone(e))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Execution) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func clone(e *Execution) Execution {
	c := *e
	c.Checkpoints = slices.Clone(e.Checkpoints)
	if e.EndedAt != nil {
		t := *e.EndedAt
		c.EndedAt = &t
	}
	if c.Checkpoints == nil {
		c.Checkpoints = []ExecutionCheckpoint{}
	}
	return c
}
