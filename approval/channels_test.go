package approval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/raydeploy/sdk/internal/testenv"
)

func request(destructive bool) Request {
	return Request{
		ID: "r1", Checkpoint: "cleanup-existing", Description: "Remove earlier Ray installations",
		Destructive: destructive, Risks: []string{"running Ray jobs are killed"},
		Plan:       []PlanItem{{Node: "n1", Action: "remove-container", Detail: "ray_head"}},
		PlanDigest: "sha256:abc", RequestedBy: "alice", RequestedAt: time.Now(),
	}
}

func TestTerminal(t *testing.T) {
	tests := []struct {
		name        string
		destructive bool
		input       string
		approved    bool
		ack         bool
	}{
		{"yes approves", false, "yes\n", true, false},
		{"y refuses", false, "y\n", false, false},
		{"YES refuses", false, "YES\n", false, false},
		{"empty refuses", false, "\n", false, false},
		{"destructive with name", true, "yes\ncleanup-existing\n", true, true},
		{"destructive with yes", true, "yes\nyes\n", true, true},
		{"destructive without ack", true, "yes\nno\n", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			term := &Terminal{In: strings.NewReader(tt.input), Out: &out, IsTerminal: func() bool { return true }, Identity: "bob"}
			d, err := term.Approve(context.Background(), request(tt.destructive))
			if err != nil {
				t.Fatal(err)
			}
			if d.Approved != tt.approved || d.RisksAcknowledged != tt.ack {
				t.Errorf("decision %+v", d)
			}
			if d.By != "bob" || d.Channel != ChannelTerminal || d.PlanDigest != "sha256:abc" || d.RequestID != "r1" || d.DecidedAt.IsZero() {
				t.Errorf("decision fields %+v", d)
			}
			for _, want := range []string{"cleanup-existing", "n1", "remove-container", "ray_head", "sha256:abc", "Only 'yes'"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("prompt lacks %q:\n%s", want, out.String())
				}
			}
			if tt.destructive && !strings.Contains(out.String(), "no undo") {
				t.Errorf("destructive prompt lacks the no-undo warning:\n%s", out.String())
			}
		})
	}
}

func TestTerminalRefusesNonTTY(t *testing.T) {
	read := false
	term := &Terminal{In: readerFunc(func([]byte) (int, error) { read = true; return 0, io.EOF }), Out: io.Discard, IsTerminal: func() bool { return false }}
	_, err := term.Approve(context.Background(), request(false))
	if !errors.Is(err, ErrNotTerminal) {
		t.Fatalf("err = %v", err)
	}
	if read {
		t.Error("read from a non-terminal")
	}
	// The default constructor checks the real stdin, which is not a terminal under go test.
	if _, err := NewTerminal().Approve(context.Background(), request(false)); !errors.Is(err, ErrNotTerminal) {
		t.Errorf("NewTerminal under go test: %v", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestTerminalHonoursContext(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	term := &Terminal{In: pr, Out: io.Discard, IsTerminal: func() bool { return true }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := term.Approve(ctx, request(false)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func writeApproval(t *testing.T, f *File, checkpoint, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := f.Path(checkpoint)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileApproves(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval, f.Timeout = 5*time.Millisecond, 200*time.Millisecond
	// The seed's format, plus the optional fields.
	p := writeApproval(t, f, "cleanup-existing", `{"approved_at": "2025-01-02T15:04:05+01:00", "approved_by": "carol", "reason": "maintenance", "acknowledge_risks": true}`, 0o600)
	d, err := f.Approve(context.Background(), request(true))
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{RequestID: "r1", Approved: true, By: "carol", Reason: "maintenance", RisksAcknowledged: true,
		DecidedAt: time.Date(2025, 1, 2, 14, 4, 5, 0, time.UTC), Channel: ChannelFile, PlanDigest: "sha256:abc"}
	if diff := cmp.Diff(want, d, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "ID" }, cmp.Ignore()),
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("approval file still in place: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "archive", "cleanup-existing-"+d.ID+".json")); err != nil {
		t.Errorf("not archived under the decision id: %v", err)
	}
	// It approved once: a second request waits and times out.
	if _, err := f.Approve(context.Background(), request(true)); !errors.Is(err, ErrTimeout) {
		t.Errorf("second approval: %v, want ErrTimeout", err)
	}
	// While waiting, the request with its digest is written for the person.
	data, err := os.ReadFile(filepath.Join(f.Dir, "cleanup-existing.request.json"))
	if err != nil || !strings.Contains(string(data), "sha256:abc") {
		t.Errorf("request file: %s, %v", data, err)
	}
}

func TestFileWaitsForFile(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	go func() {
		// The approval appears only once the channel waits for it (it has
		// written the request file for the person by then).
		for {
			if _, err := os.Stat(filepath.Join(f.Dir, "x.request.json")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		tmp := f.Path("x") + ".part"
		_ = os.WriteFile(tmp, []byte(`{"approved_at":"2025-01-01T00:00:00Z","approved_by":"dan","plan_digest":"sha256:abc"}`), 0o600)
		_ = os.Rename(tmp, f.Path("x"))
	}()
	r := request(false)
	r.Checkpoint = "x"
	d, err := f.Approve(t.Context(), r)
	if err != nil || !d.Approved || d.By != "dan" {
		t.Fatalf("%+v, %v", d, err)
	}
}

func TestFileRefusals(t *testing.T) {
	good := `{"approved_at":"2025-01-01T00:00:00Z","approved_by":"eve"}`
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *File)
		check   func(error) bool
	}{
		{"symlink", func(t *testing.T, f *File) {
			target := filepath.Join(t.TempDir(), "real.json")
			_ = os.WriteFile(target, []byte(good), 0o600)
			_ = os.MkdirAll(f.Dir, 0o700)
			if err := os.Symlink(target, f.Path("cleanup-existing")); err != nil {
				t.Fatal(err)
			}
		}, isRejected("symbolic link")},
		{"world-writable", func(t *testing.T, f *File) { writeApproval(t, f, "cleanup-existing", good, 0o666) }, isRejected("writable")},
		{"group-writable", func(t *testing.T, f *File) { writeApproval(t, f, "cleanup-existing", good, 0o620) }, isRejected("writable")},
		{"other owner", func(t *testing.T, f *File) {
			p := writeApproval(t, f, "cleanup-existing", good, 0o600)
			if os.Geteuid() != 0 {
				if os.Getenv(testenv.RequireEnv) == "1" {
					t.Fatalf("needs root to chown (%s=1 requires every test to run)", testenv.RequireEnv)
				}
				t.Skip("needs root to chown")
			}
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, isRejected("owned by uid 65534")},
		{"not json", func(t *testing.T, f *File) { writeApproval(t, f, "cleanup-existing", "yes", 0o600) }, isRejected("JSON")},
		{"no approver", func(t *testing.T, f *File) {
			writeApproval(t, f, "cleanup-existing", `{"approved_at":"2025-01-01T00:00:00Z"}`, 0o600)
		}, isRejected("approved_by")},
		{"bad time", func(t *testing.T, f *File) {
			writeApproval(t, f, "cleanup-existing", `{"approved_at":"yesterday","approved_by":"eve"}`, 0o600)
		}, isRejected("approved_at")},
		{"wrong digest", func(t *testing.T, f *File) {
			writeApproval(t, f, "cleanup-existing", `{"approved_at":"2025-01-01T00:00:00Z","approved_by":"eve","plan_digest":"sha256:old"}`, 0o600)
		}, func(err error) bool { return errors.Is(err, ErrDigestMismatch) }},
		{"writable directory", func(t *testing.T, f *File) {
			_ = os.MkdirAll(f.Dir, 0o700)
			_ = os.Chmod(f.Dir, 0o777)
		}, isRejected("writable")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFile(t.TempDir())
			f.PollInterval, f.Timeout = 5*time.Millisecond, 2*time.Second
			tt.prepare(t, f)
			// A refusal is the answer of the first read: a channel that kept
			// polling would end in ErrTimeout instead, which the check refuses.
			d, err := f.Approve(context.Background(), request(true))
			if !tt.check(err) {
				t.Fatalf("err = %v (decision %+v)", err, d)
			}
			if errors.Is(err, ErrTimeout) {
				t.Error("refusal should be immediate, not a timeout")
			}
		})
	}
}

func isRejected(reason string) func(error) bool {
	return func(err error) bool {
		var fr *FileRejectedError
		return errors.As(err, &fr) && strings.Contains(fr.Reason, reason)
	}
}

func TestFileExplicitRefusal(t *testing.T) {
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	writeApproval(t, f, "cleanup-existing", `{"approved":false,"approved_at":"2025-01-01T00:00:00Z","approved_by":"eve","reason":"not now"}`, 0o600)
	d, err := f.Approve(context.Background(), request(true))
	if err != nil || d.Approved || d.Reason != "not now" {
		t.Fatalf("%+v, %v", d, err)
	}
}

func TestQueue(t *testing.T) {
	q := NewQueue(0)
	type res struct {
		d   Decision
		err error
	}
	ch := make(chan res, 2)
	r1, r2 := request(false), request(true)
	r2.ID, r2.Checkpoint, r2.RequestedAt = "r2", "other", r1.RequestedAt.Add(time.Second)
	for _, r := range []Request{r1, r2} {
		go func() { d, err := q.Approve(context.Background(), r); ch <- res{d, err} }()
	}
	var pending []Request
	for ; len(pending) < 2; time.Sleep(time.Millisecond) { // until both wait; a hang is the test timeout's
		pending = q.Pending()
	}
	if got := []string{pending[0].ID, pending[1].ID}; !cmp.Equal(got, []string{"r1", "r2"}) {
		t.Errorf("pending order %v", got)
	}
	if err := q.Decide("nope", Decision{}); !errors.Is(err, ErrUnknownRequest) {
		t.Errorf("unknown id: %v", err)
	}
	if err := q.Decide("r1", Decision{Approved: true, By: "frank"}); err != nil {
		t.Fatal(err)
	}
	x := <-ch
	if x.err != nil || !x.d.Approved || x.d.By != "frank" || x.d.Channel != ChannelQueue || x.d.PlanDigest != "sha256:abc" || x.d.RequestID != "r1" || x.d.ID == "" {
		t.Errorf("decision %+v, %v", x.d, x.err)
	}
	if err := q.Decide("r1", Decision{Approved: true}); !errors.Is(err, ErrUnknownRequest) {
		t.Errorf("deciding twice: %v", err)
	}
	if got := q.Pending(); len(got) != 1 || got[0].ID != "r2" {
		t.Errorf("pending after decide: %+v", got)
	}
	_ = q.Decide("r2", Decision{Approved: false, By: "frank"})
	if x := <-ch; x.err != nil || x.d.Approved {
		t.Errorf("refusal %+v, %v", x.d, x.err)
	}
}

func TestQueueTimeoutAndCancel(t *testing.T) {
	q := NewQueue(20 * time.Millisecond)
	if _, err := q.Approve(context.Background(), request(false)); !errors.Is(err, ErrTimeout) {
		t.Errorf("timeout: %v", err)
	}
	if len(q.Pending()) != 0 {
		t.Error("timed-out request still pending")
	}
	q = NewQueue(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Approve(ctx, request(false)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func TestQueueConcurrent(t *testing.T) {
	q := NewQueue(0)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := request(false)
			r.ID = fmt.Sprint("r", i)
			d, err := q.Approve(context.Background(), r)
			if err == nil && (d.RequestID != r.ID || !d.Approved) {
				err = fmt.Errorf("request %s got decision %+v", r.ID, d)
			}
			errs <- err
		}()
	}
	decided := 0
	for decided < n {
		for _, r := range q.Pending() {
			if q.Decide(r.ID, Decision{Approved: true, By: "g"}) == nil {
				decided++
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestAuto(t *testing.T) {
	d, err := NewAuto("ci-bot", false).Approve(context.Background(), request(false))
	if err != nil || !d.Approved || d.By != "ci-bot" || d.Channel != ChannelAuto || d.PlanDigest != "sha256:abc" {
		t.Errorf("%+v, %v", d, err)
	}
	if _, err := NewAuto("ci-bot", false).Approve(context.Background(), request(true)); !errors.Is(err, ErrAutoDestructive) {
		t.Errorf("destructive without opt-in: %v", err)
	}
	d, err = NewAuto("ci-bot", true).Approve(context.Background(), request(true))
	if err != nil || !d.Approved || !d.RisksAcknowledged {
		t.Errorf("destructive with opt-in: %+v, %v", d, err)
	}
}

func TestFirstOf(t *testing.T) {
	q := NewQueue(0)
	f := NewFile(t.TempDir())
	f.PollInterval = 5 * time.Millisecond
	fileDone := make(chan error, 1)
	file := ApproverFunc(func(ctx context.Context, r Request) (Decision, error) {
		d, err := f.Approve(ctx, r)
		fileDone <- err
		return d, err
	})
	go func() {
		for len(q.Pending()) == 0 {
			time.Sleep(time.Millisecond)
		}
		_ = q.Decide(q.Pending()[0].ID, Decision{Approved: true, By: "queue-person"})
	}()
	d, err := FirstOf(file, q).Approve(context.Background(), request(false))
	if err != nil || d.By != "queue-person" || d.Channel != ChannelQueue {
		t.Fatalf("%+v, %v", d, err)
	}
	// The file channel was cancelled.
	select {
	case err := <-fileDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("file channel ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("file channel not cancelled")
	}

	// A terminal that is not there steps aside; the auto channel decides.
	term := &Terminal{IsTerminal: func() bool { return false }}
	d, err = FirstOf(term, NewAuto("bot", false)).Approve(context.Background(), request(false))
	if err != nil || d.Channel != ChannelAuto {
		t.Errorf("%+v, %v", d, err)
	}
	// All fail: every error is kept.
	_, err = FirstOf(term, NewAuto("bot", false)).Approve(context.Background(), request(true))
	if !errors.Is(err, ErrNotTerminal) || !errors.Is(err, ErrAutoDestructive) {
		t.Errorf("all failed: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	base := func() Decision {
		return Decision{ID: "d", Approved: true, By: "bob", RisksAcknowledged: true, DecidedAt: now.Add(-time.Minute), PlanDigest: "sha256:abc"}
	}
	tests := []struct {
		name   string
		policy Policy
		mod    func(*Decision)
		want   error
	}{
		{"ok", Policy{}, func(*Decision) {}, nil},
		{"refusal passes through", Policy{DistinctApprover: true}, func(d *Decision) { d.Approved = false; d.By = "alice" }, nil},
		{"digest", Policy{}, func(d *Decision) { d.PlanDigest = "sha256:zzz" }, ErrDigestMismatch},
		{"risks", Policy{}, func(d *Decision) { d.RisksAcknowledged = false }, ErrRisksNotAcknowledged},
		{"self approval", Policy{DistinctApprover: true}, func(d *Decision) { d.By = "alice" }, ErrSelfApproval},
		{"self approval allowed", Policy{}, func(d *Decision) { d.By = "alice" }, nil},
		{"too old", Policy{MaxAge: 30 * time.Second}, func(*Decision) {}, ErrExpired},
		{"young enough", Policy{MaxAge: time.Hour}, func(*Decision) {}, nil},
		{"past expiry", Policy{}, func(d *Decision) { d.ExpiresAt = now.Add(-time.Second) }, ErrExpired},
		{"before expiry", Policy{}, func(d *Decision) { d.ExpiresAt = now.Add(time.Second) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Now = func() time.Time { return now }
			d := base()
			tt.mod(&d)
			inner := ApproverFunc(func(context.Context, Request) (Decision, error) { return d, nil })
			_, err := tt.policy.Wrap(inner).Approve(context.Background(), request(true))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var pe *PolicyError
			if err != nil && (!errors.As(err, &pe) || pe.Checkpoint != "cleanup-existing") {
				t.Errorf("not a *PolicyError: %v", err)
			}
		})
	}
}
