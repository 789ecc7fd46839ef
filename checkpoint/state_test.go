package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "CHECKPOINT_TEST_HELPER"

// TestHelperProcess is not a test: it is the child process of the lock and
// crash tests, selected by -test.run and the helper environment variable.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	dir := os.Getenv("CHECKPOINT_TEST_DIR")
	switch mode {
	case "hold-lock":
		l, err := AcquireLock(context.Background(), dir, LockOptions{Heartbeat: 50 * time.Millisecond})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("locked")
		// Hold until stdin closes (or the parent kills us).
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		l.Close()
		os.Exit(0)
	case "lock-loop":
		n, _ := strconv.Atoi(os.Getenv("CHECKPOINT_TEST_ROUNDS"))
		lockLoop(dir, n)
	case "fenced-writer":
		fencedWriter(dir)
	case "write-ledger":
		s, err := OpenStore(dir)
		if err != nil {
			os.Exit(2)
		}
		for i := 1; ; i++ {
			if err := s.Save(versionedLedger(i)); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			if i == 20 {
				fmt.Println("writing")
			}
		}
	}
	os.Exit(3)
}

// versionedLedger is version i of a ledger whose content can be checked for consistency.
func versionedLedger(i int) *Ledger {
	l := NewLedger()
	for c := 0; c < 6; c++ {
		rec := l.Record(fmt.Sprintf("cp-%d", c))
		rec.Status = StatusSucceeded
		rec.ConfigDigest = strconv.Itoa(i)
		for n := 0; n < 8; n++ {
			node := l.Node(fmt.Sprintf("cp-%d", c), fmt.Sprintf("node-%d", n))
			node.Status = StatusSucceeded
			node.Summary = strings.Repeat(strconv.Itoa(i%10), 200)
		}
	}
	return l
}

func helper(t *testing.T, mode, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "CHECKPOINT_TEST_DIR="+dir)
	return cmd
}

// startHelper starts the helper and waits for its first output line.
func startHelper(t *testing.T, mode, dir, wantLine string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := helper(t, mode, dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != wantLine {
		t.Fatalf("helper said %q, %v; want %q", line, err, wantLine)
	}
	return cmd, func() { stdin.Close() }
}

func TestLockContentionBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd, release := startHelper(t, "hold-lock", dir, "locked")

	_, err := AcquireLock(context.Background(), dir, LockOptions{})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != cmd.Process.Pid || le.Holder.Host != host || le.Holder.Since.IsZero() {
		t.Errorf("holder = %+v, want pid %d on %s", le.Holder, cmd.Process.Pid, host)
	}
	// A Runner is refused the same way.
	l, _ := NewList()
	if _, err := Open(context.Background(), l, Options{StateDir: dir}); !errors.As(err, &le) {
		t.Errorf("Open while locked: %v", err)
	}

	// Released on Close: the lock can be taken afterwards.
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file after Close: %v", err)
	}
	lk, err := AcquireLock(context.Background(), dir, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lk.Close()
}

func TestLockTakenOverWhenHolderDied(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHelper(t, "hold-lock", dir, "locked")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The lock file is still there, its heartbeat fresh, but its pid is dead.
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
		t.Fatalf("killed holder left no lock file: %v", err)
	}
	lk, err := AcquireLock(context.Background(), dir, LockOptions{})
	if err != nil {
		t.Fatalf("take over from dead pid: %v", err)
	}
	defer lk.Close()
	if lk.Info().PID != os.Getpid() {
		t.Errorf("lock info %+v", lk.Info())
	}
}

func TestLockStaleHeartbeatTakenOver(t *testing.T) {
	dir := t.TempDir()
	write := func(hb time.Time) {
		info := LockInfo{Host: "other-host", PID: 1, Owner: "bob", Token: "t", Since: hb, Heartbeat: hb}
		data, _ := json.Marshal(info)
		if err := os.WriteFile(filepath.Join(dir, LockFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Fresh heartbeat from another host: refused.
	write(time.Now())
	_, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Minute})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.Owner != "bob" || le.Holder.Host != "other-host" {
		t.Fatalf("fresh foreign lock: %v", err)
	}
	// Heartbeat older than the bound: taken over.
	write(time.Now().Add(-2 * time.Minute))
	lk, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Minute})
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	defer lk.Close()
	var cur LockInfo
	data, _ := os.ReadFile(filepath.Join(dir, LockFile))
	_ = json.Unmarshal(data, &cur)
	if cur.Token != lk.Info().Token {
		t.Errorf("lock file holds %+v, not ours", cur)
	}
}

func TestLockHeartbeat(t *testing.T) {
	dir := t.TempDir()
	lk, err := AcquireLock(context.Background(), dir, LockOptions{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	first := lk.Info().Heartbeat
	for { // no bound of our own: the test's deadline catches a heartbeat that never comes
		data, _ := os.ReadFile(filepath.Join(dir, LockFile))
		var cur LockInfo
		if json.Unmarshal(data, &cur) == nil && cur.Heartbeat.After(first) {
			break
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 30*time.Second {
			t.Fatal("heartbeat never rewrote the lock file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fi, _ := os.Stat(filepath.Join(dir, LockFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock mode %v", fi.Mode().Perm())
	}
}

func TestLedgerSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd, _ := startHelper(t, "write-ledger", dir, "writing")
		time.Sleep(time.Duration(round*7) * time.Millisecond) // vary where the kill lands
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		s, _ := OpenStore(dir)
		l, err := s.Load()
		if err != nil {
			t.Fatalf("round %d: ledger after SIGKILL does not load: %v", round, err)
		}
		i, err := strconv.Atoi(l.Checkpoints["cp-0"].ConfigDigest)
		if err != nil || i < 20 {
			t.Fatalf("round %d: version %q", round, l.Checkpoints["cp-0"].ConfigDigest)
		}
		want, _ := json.Marshal(versionedLedger(i))
		got, _ := json.Marshal(l)
		if string(want) != string(got) {
			t.Fatalf("round %d: ledger is not exactly version %d", round, i)
		}
	}
}

func TestStoreRefusesCorruptAndUnknownVersion(t *testing.T) {
	tests := []struct {
		name    string
		content string
		check   func(error) bool
	}{
		{"truncated", `{"version":1,"checkpoints":{"a":{"sta`, func(err error) bool { var e *CorruptStateError; return errors.As(err, &e) }},
		{"not json", "garbage", func(err error) bool { var e *CorruptStateError; return errors.As(err, &e) }},
		{"no version", `{"checkpoints":{}}`, func(err error) bool { var e *CorruptStateError; return errors.As(err, &e) }},
		{"future version", `{"version":7,"checkpoints":{}}`, func(err error) bool {
			var e *VersionError
			return errors.As(err, &e) && e.Found == 7 && e.Want == LedgerVersion
		}},
		{"bad status", `{"version":1,"checkpoints":{"a":{"status":"weird","nodes":{}}}}`, func(err error) bool { var e *CorruptStateError; return errors.As(err, &e) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, LedgerFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			l, _ := NewList(&Step{StepName: "a"})
			_, err := Open(context.Background(), l, Options{StateDir: dir})
			if !tt.check(err) {
				t.Fatalf("Open: %v", err)
			}
			// Never silently reset: the file is untouched.
			data, _ := os.ReadFile(path)
			if string(data) != tt.content {
				t.Error("corrupt ledger was modified")
			}
		})
	}
}

func TestStoreModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger()
	l.Node("a", "n1").Status = StatusSucceeded
	if err := s.Save(l); err != nil {
		t.Fatal(err)
	}
	di, _ := os.Stat(dir)
	fi, _ := os.Stat(s.Path())
	if di.Mode().Perm() != 0o700 || fi.Mode().Perm() != 0o600 {
		t.Errorf("dir %v, file %v; want 0700, 0600", di.Mode().Perm(), fi.Mode().Perm())
	}
	got, err := s.Load()
	if err != nil || got.Checkpoints["a"].Nodes["n1"].Status != StatusSucceeded {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

func FuzzDecodeLedger(f *testing.F) {
	good, _ := json.Marshal(versionedLedger(3))
	f.Add(good)
	f.Add([]byte(`{"version":1,"checkpoints":{"a":{"status":"failed","nodes":{"n":{"status":"running"}}}}}`))
	f.Add([]byte(`{"version":1,"checkpoints":{"a":null}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":null}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLedger("fuzz", data)
		if err != nil {
			assertStateError(t, err)
			return
		}
		// Whatever decodes must be usable and re-encode to something that decodes.
		for name := range l.Checkpoints {
			_ = l.Record(name).Status.Done()
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeLedger("fuzz", out)
		if err != nil {
			t.Fatalf("re-encoded ledger does not decode: %v", err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the ledger:\n%s\n%s", out, out2)
		}
	})
}
