package approval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Kinds of audit records.
const (
	AuditRequest  = "request"
	AuditDecision = "decision"
	AuditError    = "error"
	AuditOutcome  = "outcome"
	// AuditAPI records a mutating request made through an API (Actor says who and from where).
	AuditAPI = "api"
)

// Actor is who made an API request and from where, as an audit record keeps it.
type Actor struct {
	Principal string `json:"principal"`
	Remote    string `json:"remote"`
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	Status    int    `json:"status,omitempty"`
}

// GenesisHash is the Prev of the first audit record: the SHA-256 of nothing.
var GenesisHash = hashHex(nil)

// AuditRecord is one line of the audit log. Prev is the SHA-256 (hex) of the
// previous line's bytes; Hash is the SHA-256 of this record encoded with Hash empty.
type AuditRecord struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Checkpoint string    `json:"checkpoint,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	Request    *Request  `json:"request,omitempty"`
	Decision   *Decision `json:"decision,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Error      string    `json:"error,omitempty"`
	Actor      *Actor    `json:"actor,omitempty"`
	Prev       string    `json:"prev"`
	Hash       string    `json:"hash"`
}

// ChainError reports the first line (1-based) where an audit log is not intact.
type ChainError struct {
	Path   string
	Line   int
	Reason string
}

// Error describes where the chain breaks.
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit log %s: line %d: %s", e.Path, e.Line, e.Reason)
}

// AuditLog is an append-only, hash-chained JSON-lines log of approval
// requests, decisions and outcomes (file mode 0600, fsync after each append).
// It is safe for concurrent use within one process.
type AuditLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	last string
	seq  int64
}

// OpenAuditLog opens (creating if needed) the audit log at path after verifying
// its chain; a broken chain is refused with a *ChainError.
func OpenAuditLog(path string) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	n, last, err := verify(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &AuditLog{path: path, f: f, last: last, seq: int64(n)}, nil
}

// Path returns the file the log is written to.
func (a *AuditLog) Path() string { return a.path }

// Append completes rec (Seq, Time if zero, Prev, Hash), writes it as one line and fsyncs.
func (a *AuditLog) Append(ctx context.Context, rec AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("audit log is closed")
	}
	rec.Seq = a.seq + 1
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	rec.Prev = a.last
	rec.Hash = ""
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	rec.Hash = hashHex(body)
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	if _, err := a.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync audit log: %w", err)
	}
	a.seq = rec.Seq
	a.last = hashHex(line)
	return nil
}

// RecordOutcome appends what became of an approved (or refused) request.
func (a *AuditLog) RecordOutcome(ctx context.Context, checkpoint, requestID, outcome string, cause error) error {
	rec := AuditRecord{Kind: AuditOutcome, Checkpoint: checkpoint, RequestID: requestID, Outcome: outcome}
	if cause != nil {
		rec.Error = cause.Error()
	}
	return a.Append(ctx, rec)
}

// Close closes the file.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// Verify checks the audit log at path and returns the number of intact
// records, or a *ChainError naming the first line that breaks the chain.
func Verify(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("verify audit log: %w", err)
	}
	defer f.Close()
	n, _, err := verify(path, f)
	return n, err
}

// VerifyReader is Verify over any reader; name is used in errors.
func VerifyReader(name string, r io.Reader) (int, error) {
	n, _, err := verify(name, r)
	return n, err
}

func verify(name string, r io.Reader) (int, string, error) {
	br := bufio.NewReader(r)
	prev := GenesisHash
	line := 0
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) == 0 && err == io.EOF {
			return line, prev, nil
		}
		if err != nil && err != io.EOF {
			return line, prev, fmt.Errorf("read audit log %s: %w", name, err)
		}
		line++
		if !bytes.HasSuffix(raw, []byte("\n")) {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: "incomplete last line"}
		}
		raw = raw[:len(raw)-1]
		var rec AuditRecord
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: "not an audit record: " + err.Error()}
		}
		if rec.Prev != prev {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: "previous-record hash does not match (a line was changed, removed or moved)"}
		}
		if rec.Seq != int64(line) {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: fmt.Sprintf("sequence %d, want %d", rec.Seq, line)}
		}
		want := rec.Hash
		rec.Hash = ""
		body, err := json.Marshal(rec)
		if err != nil || hashHex(body) != want {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: "record content does not match its hash"}
		}
		prev = hashHex(raw)
	}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Audited returns an Approver that records every request to a, then every
// decision (or the error) a returns. If the audit log cannot be written the
// approval is refused: an unrecorded approval does not count.
func Audited(inner Approver, log *AuditLog) Approver {
	return ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		if r.ID == "" {
			r.ID = NewID()
		}
		req := r
		if err := log.Append(ctx, AuditRecord{Kind: AuditRequest, Checkpoint: r.Checkpoint, RequestID: r.ID, Request: &req}); err != nil {
			return Decision{}, fmt.Errorf("approval of checkpoint %s: %w", r.Checkpoint, err)
		}
		d, err := inner.Approve(ctx, r)
		rec := AuditRecord{Kind: AuditDecision, Checkpoint: r.Checkpoint, RequestID: r.ID}
		if d.ID != "" {
			dd := d
			rec.Decision = &dd
		}
		if err != nil {
			rec.Kind = AuditError
			rec.Error = err.Error()
		}
		// Record even if ctx has ended: the decision (or its absence) must be on file.
		if aerr := log.Append(context.WithoutCancel(ctx), rec); aerr != nil {
			if err != nil {
				return d, err
			}
			return Decision{}, fmt.Errorf("approval of checkpoint %s: %w", r.Checkpoint, aerr)
		}
		return d, err
	})
}
