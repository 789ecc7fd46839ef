package approval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFileWaitMessageApproves: the JSON the wait message shows, written as
// shown to the path it names, approves exactly the waiting plan, risks
// acknowledged for a destructive checkpoint, and passes Check.
func TestFileWaitMessageApproves(t *testing.T) {
	for _, destructive := range []bool{true, false} {
		f := NewFile(t.TempDir())
		f.PollInterval = 5 * time.Millisecond
		req := request(destructive)
		msg := f.WaitMessage(req)
		head, body, ok := strings.Cut(msg, "\n")
		if !ok || !strings.Contains(head, f.Path(req.Checkpoint)) {
			t.Fatalf("wait message does not name the file on its first line:\n%s", msg)
		}
		for _, want := range []string{`"plan_digest": "sha256:abc"`, `"approved": true`, `"approved_by": `} {
			if !strings.Contains(body, want) {
				t.Errorf("destructive=%v: the JSON lacks %s:\n%s", destructive, want, body)
			}
		}
		if got := strings.Contains(body, `"acknowledge_risks": true`); got != destructive {
			t.Errorf("destructive=%v: acknowledge_risks shown = %v:\n%s", destructive, got, body)
		}
		writeApproval(t, f, req.Checkpoint, body+"\n", 0o600)
		d, err := f.Approve(t.Context(), req)
		if err != nil {
			t.Fatalf("destructive=%v: the shown JSON was refused: %v", destructive, err)
		}
		if err := Check(req, d, time.Now()); err != nil {
			t.Errorf("destructive=%v: the decision from the shown JSON fails the rules: %v", destructive, err)
		}
	}
}

// TestFileSeedApprovalOfDestructiveSaysFix: the seed README's approval file
// for cleanup-existing lacks acknowledge_risks; the refusal names the key and
// gives the exact JSON, and that JSON then approves.
func TestFileSeedApprovalOfDestructiveSaysFix(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	req := request(true)
	p := writeApproval(t, f, req.Checkpoint, `{"approved_at": "2025-06-01T10:00:00Z", "approved_by": "manual"}`+"\n", 0o600)
	d, err := f.Approve(t.Context(), req)
	if err == nil {
		t.Fatalf("approved without acknowledging the risks: %+v", d)
	}
	var fr *FileRejectedError
	if !errors.Is(err, ErrRisksNotAcknowledged) || !errors.As(err, &fr) || fr.Path != p {
		t.Fatalf("err = %v; want a *FileRejectedError for %s wrapping ErrRisksNotAcknowledged", err, p)
	}
	if !strings.Contains(err.Error(), `lacks "acknowledge_risks": true`) {
		t.Errorf("the refusal does not name the missing key: %v", err)
	}
	_, fix, ok := strings.Cut(err.Error(), "write instead: ")
	if !ok || !strings.Contains(fix, `"plan_digest": "sha256:abc"`) || !strings.Contains(fix, `"acknowledge_risks": true`) {
		t.Fatalf("the refusal does not give the JSON to write: %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused file is still in place (it would be read again): %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(f.Dir, "archive", "cleanup-existing-*.rejected.json")); len(m) != 1 {
		t.Errorf("refused file archived as %v, want one .rejected.json", m)
	}

	writeApproval(t, f, req.Checkpoint, fix, 0o600)
	d, err = f.Approve(t.Context(), req)
	if err != nil {
		t.Fatalf("the JSON the refusal gave was refused: %v", err)
	}
	if err := Check(req, d, time.Now()); err != nil || !d.RisksAcknowledged {
		t.Errorf("decision %+v from the given JSON: %v", d, err)
	}

	// An explicit refusal needs no acknowledgement.
	writeApproval(t, f, req.Checkpoint, `{"approved": false, "approved_at": "2025-06-01T10:00:00Z", "approved_by": "manual"}`, 0o600)
	if d, err := f.Approve(t.Context(), req); err != nil || d.Approved {
		t.Errorf("explicit refusal: %+v, %v", d, err)
	}
}

// TestFileRefusalsSayWhatToWrite: a malformed file and one for another plan
// are refused with the JSON that approves the plan waiting now.
func TestFileRefusalsSayWhatToWrite(t *testing.T) {
	for name, body := range map[string]string{
		"no approver":   `{"approved_at":"2025-01-01T00:00:00Z"}`,
		"other plan":    `{"approved_at":"2025-01-01T00:00:00Z","approved_by":"eve","plan_digest":"sha256:old","acknowledge_risks":true}`,
		"unknown key":   `{"approved_at":"2025-01-01T00:00:00Z","approved_by":"eve","acknowledge_risk":true}`,
		"not an object": `"yes"`,
	} {
		t.Run(name, func(t *testing.T) {
			f := NewFile(t.TempDir())
			f.PollInterval = 5 * time.Millisecond
			writeApproval(t, f, "cleanup-existing", body, 0o600)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err := f.Approve(ctx, request(true))
			if err == nil {
				t.Fatal("approved")
			}
			_, fix, ok := strings.Cut(err.Error(), "write instead: ")
			if !ok || !strings.HasPrefix(fix, `{"approved_at": `) || !strings.HasSuffix(fix, `"plan_digest": "sha256:abc", "acknowledge_risks": true}`) {
				t.Errorf("the refusal does not end with the JSON to write: %v", err)
			}
		})
	}
}
