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
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/raydeploy/sdk/internal/fstrust"
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
	// Principal is the authenticated caller's name (empty: the request
	// failed authentication).
	Principal string `json:"principal"`
	// Remote is the caller's network address, host:port as the server saw it.
	Remote string `json:"remote"`
	// Method is the HTTP method of the request.
	Method string `json:"method,omitempty"`
	// Path is the URL path of the request, without the query.
	Path string `json:"path,omitempty"`
	// Status is the HTTP status code of the response.
	Status int `json:"status,omitempty"`
}

// GenesisHash is the Prev of the first audit record: the SHA-256 of nothing.
var GenesisHash = hashHex(nil)

// AuditRecord is one line of the audit log. Prev is the SHA-256 (hex) of the
// previous line's bytes; Hash is the SHA-256 of this record encoded with Hash empty.
type AuditRecord struct {
	// Seq is the record's 1-based position in the log (set by Append).
	Seq int64 `json:"seq"`
	// Time is when the record was appended, UTC (set by Append when zero).
	Time time.Time `json:"time"`
	// Kind is one of AuditRequest, AuditDecision, AuditError, AuditOutcome, AuditAPI.
	Kind string `json:"kind"`
	// Checkpoint names the checkpoint concerned (empty: an API request
	// about none).
	Checkpoint string `json:"checkpoint,omitempty"`
	// RequestID is the ID of the approval Request concerned (empty in API records).
	RequestID string `json:"request_id,omitempty"`
	// Request is the request as asked; set in request records only.
	Request *Request `json:"request,omitempty"`
	// Decision is what the approver returned; set in decision and error
	// records when the decision has an ID.
	Decision *Decision `json:"decision,omitempty"`
	// Outcome is what became of the checkpoint in an outcome record:
	// "refused" or its checkpoint.Status ("succeeded", "failed", ...).
	Outcome string `json:"outcome,omitempty"`
	// Error is the error's text in error records and in outcome records of
	// a failure (empty: none).
	Error string `json:"error,omitempty"`
	// Actor is who made the API request; set in API records only.
	Actor *Actor `json:"actor,omitempty"`
	// Prev is the hex SHA-256 of the previous line (GenesisHash for the first).
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of this record encoded with Hash empty.
	Hash string `json:"hash"`
}

// ChainError reports the first line (1-based) where an audit log is not intact.
type ChainError struct {
	// Path is the audit log's file (or the name given to VerifyReader).
	Path string
	// Line is the 1-based line where the chain breaks.
	Line int
	// Reason says what is wrong there.
	Reason string
}

// Error describes where the chain breaks.
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit log %s: line %d: %s", e.Path, e.Line, e.Reason)
}

// AuditHead anchors the end of an audit log outside it, in the file
// HeadPath(log): the number of records and the hash of the last line, so
// that removing the last lines, rewriting the last record (even with a
// correct hash) or appending records is detected. Pending is the hash of
// the line being appended (set just before the append, cleared after it),
// so a crash between the two writes is told apart from tampering.
type AuditHead struct {
	// Seq is the number of records in the log.
	Seq int64 `json:"seq"`
	// Hash is the hex SHA-256 of the last line (GenesisHash: no record yet).
	Hash string `json:"hash"`
	// Pending is the hex SHA-256 of the line being appended (empty: none).
	Pending string `json:"pending,omitempty"`
}

// HeadPath is the file that anchors the end of the audit log at path.
func HeadPath(path string) string { return path + ".head" }

// AuditLog is an append-only, hash-chained JSON-lines log of approval
// requests, decisions and outcomes (file mode 0600, fsync after each append),
// its end anchored in HeadPath(path). It is safe for concurrent use within
// one process.
type AuditLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	last string
	seq  int64
}

// OpenAuditLog opens (creating if needed) the audit log at path after
// verifying its chain and its end against the head anchor; a broken chain,
// a missing anchor of a non-empty log, or an end that differs from the
// anchor is refused with a *ChainError. The log is opened without following
// a symlink and checked as opened: another owner or write access by others
// is refused, read access by others is removed (chmod 0600).
func OpenAuditLog(path string) (*AuditLog, error) {
	f, _, err := fstrust.Open(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600, fstrust.RepairRead)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	n, last, err := verify(path, f)
	if err == nil {
		err = checkHead(path, int64(n), last, true)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &AuditLog{path: path, f: f, last: last, seq: int64(n)}, nil
}

// checkHead compares the verified end of the log (n records, last line hash)
// with the head anchor. With repair, an anchor left pending by a crash is
// completed, and an empty log gets its first anchor.
func checkHead(path string, n int64, last string, repair bool) error {
	hp := HeadPath(path)
	hf, _, err := fstrust.Open(hp, os.O_RDONLY, 0o600, fstrust.RepairRead)
	if errors.Is(err, fs.ErrNotExist) {
		if n == 0 {
			if repair {
				return writeHead(path, AuditHead{Seq: 0, Hash: GenesisHash})
			}
			return nil
		}
		return &ChainError{Path: path, Line: int(n), Reason: fmt.Sprintf("its head anchor %s is missing: the end of the log cannot be checked", hp)}
	}
	if err != nil {
		return fmt.Errorf("audit log head: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(hf, 4096))
	hf.Close()
	if err != nil {
		return fmt.Errorf("audit log head: %w", err)
	}
	var h AuditHead
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || h.Hash == "" {
		return &ChainError{Path: path, Line: int(n), Reason: fmt.Sprintf("its head anchor %s is unreadable", hp)}
	}
	switch {
	case h.Seq == n && h.Hash == last:
		if h.Pending != "" && repair { // crashed before the line was written
			return writeHead(path, AuditHead{Seq: n, Hash: last})
		}
		return nil
	case h.Pending != "" && n == h.Seq+1 && last == h.Pending: // crashed after it
		if repair {
			return writeHead(path, AuditHead{Seq: n, Hash: last})
		}
		return nil
	case n < h.Seq:
		return &ChainError{Path: path, Line: int(n) + 1, Reason: fmt.Sprintf("the log ends after record %d but its head anchor says %d records: records were removed from its end", n, h.Seq)}
	case n > h.Seq:
		return &ChainError{Path: path, Line: int(h.Seq) + 1, Reason: fmt.Sprintf("records after the anchored end (record %d): appended by something other than this program", h.Seq)}
	default:
		return &ChainError{Path: path, Line: int(n), Reason: "the last record differs from the anchored one: it was rewritten"}
	}
}

// writeHead replaces the head anchor atomically and durably.
func writeHead(path string, h AuditHead) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	hp := HeadPath(path)
	if err := writeFileReplace(hp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write audit log head: %w", err)
	}
	d, err := os.Open(filepath.Dir(hp))
	if err != nil {
		return fmt.Errorf("write audit log head: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write audit log head: sync directory: %w", err)
	}
	return nil
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
	lineHash := hashHex(line)
	if err := writeHead(a.path, AuditHead{Seq: a.seq, Hash: a.last, Pending: lineHash}); err != nil {
		return err
	}
	if _, err := a.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync audit log: %w", err)
	}
	a.seq = rec.Seq
	a.last = lineHash
	return writeHead(a.path, AuditHead{Seq: a.seq, Hash: a.last})
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

// Verify checks the audit log at path, its chain and its end against the
// head anchor (HeadPath), and returns the number of intact records, or a
// *ChainError naming the first line that breaks the chain or the end that
// differs from the anchor (text after the last record included).
func Verify(path string) (int, error) {
	f, _, err := fstrust.Open(path, os.O_RDONLY, 0o600, fstrust.AllowRead)
	if err != nil {
		return 0, fmt.Errorf("verify audit log: %w", err)
	}
	defer f.Close()
	n, last, err := verify(path, f)
	if err != nil {
		return n, err
	}
	return n, checkHead(path, int64(n), last, false)
}

// VerifyReader checks the chain of an audit log read from r (name is used in
// errors). It has no head anchor, so it cannot tell a log cut short at a
// record boundary from a whole one: use Verify on files.
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
		// Only the exact bytes this package writes count: text after the
		// record, a repeated or re-cased key, other spacing are refused.
		rec.Hash = want
		if canon, err := json.Marshal(rec); err != nil || !bytes.Equal(canon, raw) {
			return line - 1, prev, &ChainError{Path: name, Line: line, Reason: "not exactly as written (text after the record, a repeated key or other spacing)"}
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
