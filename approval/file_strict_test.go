package approval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileStrictDecoding: what is not exactly an approval never approves;
// the refusal names the key and the problem.
func TestFileStrictDecoding(t *testing.T) {
	const at, by = `"approved_at":"2025-01-01T00:00:00Z"`, `"approved_by":"eve"`
	tests := []struct {
		name, body, reason string
	}{
		{"misspelt approved", `{` + at + `,` + by + `,"aproved":false}`, `unknown key "aproved"`},
		{"null approved", `{` + at + `,` + by + `,"approved":null}`, `key "approved" is null`},
		{"misspelt digest", `{` + at + `,` + by + `,"plan_digset":"sha256:old"}`, `unknown key "plan_digset"`},
		{"duplicate approved", `{` + at + `,` + by + `,"approved":false,"approved":true}`, `key "approved" appears more than once`},
		{"duplicate approver", `{` + at + `,` + by + `,"approved_by":"mallory"}`, `key "approved_by" appears more than once`},
		{"string for bool", `{` + at + `,` + by + `,"approved":"no"}`, `key "approved" must be true or false, found a string`},
		{"number for string", `{` + at + `,"approved_by":7}`, `key "approved_by" must be a string, found a number`},
		{"object for bool", `{` + at + `,` + by + `,"acknowledge_risks":{"x":1}}`, `key "acknowledge_risks" must be true or false, found an object`},
		{"other case", `{` + at + `,` + by + `,"Approved":false}`, `unknown key "Approved"`},
		{"null digest", `{` + at + `,` + by + `,"plan_digest":null}`, `key "plan_digest" is null`},
		{"array", `[` + at + `]`, `want an object, found an array`},
		{"trailing", `{` + at + `,` + by + `} {"approved":false}`, `data after the object`},
		{"empty", ``, `not valid approval JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFile(t.TempDir())
			f.PollInterval = 5 * time.Millisecond
			writeApproval(t, f, "cleanup-existing", tt.body, 0o600)
			d, err := f.Approve(context.Background(), request(false))
			var fr *FileRejectedError
			if !errors.As(err, &fr) || !strings.Contains(fr.Reason, tt.reason) {
				t.Fatalf("decision %+v, err %v; want a refusal saying %q", d, err, tt.reason)
			}
			if d.Approved {
				t.Error("approved")
			}
		})
	}
}

// TestFileSeedFormat: the seed's two fields alone approve.
func TestFileSeedFormat(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	writeApproval(t, f, "cleanup-existing", `{"approved_at": "2025-06-01T10:00:00Z", "approved_by": "ops"}`+"\n", 0o644)
	d, err := f.Approve(context.Background(), request(false))
	if err != nil || !d.Approved || d.By != "ops" || d.PlanDigest != "sha256:abc" {
		t.Fatalf("%+v, %v", d, err)
	}
}

// TestFileFIFONeverBlocks: a FIFO in the approval file's place is refused
// at once (the open does not wait for a writer).
func TestFileFIFONeverBlocks(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(f.Path("cleanup-existing"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.Approve(context.Background(), request(false))
	var fr *FileRejectedError
	if !errors.As(err, &fr) || !strings.Contains(fr.Reason, "not a regular file") {
		t.Fatalf("err %v; want a refusal of the FIFO", err)
	}
}

// TestFileChecksDirectoriesEveryPoll: the state directory and the approvals
// directory are checked on each poll, not once: loosened while waiting, the
// wait ends with a refusal naming the directory.
func TestFileChecksDirectoriesEveryPoll(t *testing.T) {
	for _, which := range []string{"state", "approvals"} {
		t.Run(which, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			f := NewFile(state)
			f.PollInterval = 5 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := f.Approve(ctx, request(false)); done <- err }()
			// Wait until the wait has started (its request file is written).
			for {
				if _, err := os.Stat(filepath.Join(f.Dir, "cleanup-existing.request.json")); err == nil {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Approve ended early: %v", err)
				case <-time.After(time.Millisecond):
				}
			}
			dir := state
			if which == "approvals" {
				dir = f.Dir
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			err := <-done
			var fr *FileRejectedError
			if !errors.As(err, &fr) || fr.Path != dir || !strings.Contains(fr.Reason, "writable") {
				t.Fatalf("err %v; want a refusal of %s", err, dir)
			}
		})
	}
}

// TestFileDirectoryTrust: a symlinked or foreign state directory is refused,
// one readable by others is repaired to 0700.
func TestFileDirectoryTrust(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f := NewFile(link)
	f.Timeout = 10 * time.Millisecond
	var fr *FileRejectedError
	if _, err := f.Approve(context.Background(), request(false)); !errors.As(err, &fr) || !strings.Contains(fr.Reason, "symbolic link") {
		t.Errorf("symlinked state dir: %v", err)
	}

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	f = NewFile(open)
	f.Timeout = 10 * time.Millisecond
	if _, err := f.Approve(context.Background(), request(false)); !errors.Is(err, ErrTimeout) {
		t.Errorf("0755 state dir: %v, want it repaired and the wait to time out", err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o700 {
		t.Errorf("0755 state dir left at %v", fi.Mode().Perm())
	}

	if os.Geteuid() == 0 {
		foreign := filepath.Join(base, "foreign")
		if err := os.Mkdir(foreign, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		f = NewFile(foreign)
		f.Timeout = 10 * time.Millisecond
		if _, err := f.Approve(context.Background(), request(false)); !errors.As(err, &fr) || !strings.Contains(fr.Reason, "owned by uid 65534") {
			t.Errorf("foreign state dir: %v", err)
		}
	}
}
