package checkpoint

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockLoop is the "lock-loop" helper: it acquires and releases the lock n
// times; while holding, it creates <dir>/held exclusively, so a second
// simultaneous holder finds it there and reports an overlap.
func lockLoop(dir string, n int) {
	marker := filepath.Join(dir, "held")
	overlaps := 0
	for i := 0; i < n; {
		l, err := AcquireLock(context.Background(), dir, LockOptions{})
		var le *LockedError
		if errors.As(err, &le) {
			continue
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			overlaps++
		} else {
			f.Close()
			_ = os.Remove(marker)
		}
		if err := l.Close(); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		i++
	}
	fmt.Println("overlaps", overlaps)
	os.Exit(0)
}

// TestLockMutualExclusionBetweenProcesses runs several processes that take
// and release the lock in a tight loop: never two holders at once.
func TestLockMutualExclusionBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	const procs, rounds = 4, 100
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := helper(t, "lock-loop", dir)
			cmd.Env = append(cmd.Env, "CHECKPOINT_TEST_ROUNDS="+strconv.Itoa(rounds))
			out, err := cmd.Output()
			outs[p], errs[p] = strings.TrimSpace(string(out)), err
		}()
	}
	wg.Wait()
	for p := 0; p < procs; p++ {
		if errs[p] != nil || outs[p] != "overlaps 0" {
			t.Errorf("process %d: %q, %v (want no overlap)", p, outs[p], errs[p])
		}
	}
}

// TestLockNeverVisibleHalfWritten: whoever sees the lock file sees all of it.
func TestLockNeverVisibleHalfWritten(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	var bad []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(filepath.Join(dir, LockFile))
			if err != nil {
				continue
			}
			var li LockInfo
			if err := json.Unmarshal(data, &li); err != nil || li.Token == "" {
				mu.Lock()
				bad = append(bad, string(data))
				mu.Unlock()
			}
		}
	}()
	for i := 0; i < 300; i++ {
		l, err := AcquireLock(context.Background(), dir, LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d reads saw an incomplete lock file, e.g. %q", len(bad), bad[0])
	}
}

// TestLockUnreadableNotTakenOverAtOnce: a lock file that cannot be parsed and
// was written recently is not taken over (it could be a live holder's); an
// old one is.
func TestLockUnreadableNotTakenOverAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LockFile)
	if err := os.WriteFile(path, []byte(`{"host":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Minute})
	if err == nil {
		t.Fatal("a fresh unreadable lock file was taken over")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the lock file: %v", err)
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Minute})
	if err != nil {
		t.Fatalf("an old unreadable lock file was not taken over: %v", err)
	}
	l.Close()
}

// TestLockPausedHolderIsFenced: a holder stopped past the stale bound loses
// the lock to a new one; once resumed it must not write the ledger.
func TestLockPausedHolderIsFenced(t *testing.T) {
	dir := t.TempDir()
	cmd := helper(t, "fenced-writer", dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	br := bufio.NewReader(out)
	if line, _ := br.ReadString('\n'); strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The paused holder is alive: only the stale bound lets us take over.
	if _, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Hour}); err == nil {
		t.Fatal("took the lock of a live holder")
	}
	path := filepath.Join(dir, LockFile)
	old := time.Now().Add(-2 * time.Minute)
	var li LockInfo
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &li); err != nil {
		t.Fatal(err)
	}
	li.Heartbeat = old
	data, _ = json.Marshal(li)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireLock(context.Background(), dir, LockOptions{StaleAfter: time.Minute})
	if err != nil {
		t.Fatalf("stale paused holder not taken over: %v", err)
	}
	defer l.Close()
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stdin.Close() // tells the helper to write the ledger now
	line, _ := br.ReadString('\n')
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "refused:") || !strings.Contains(line, "lock") {
		t.Fatalf("resumed holder said %q, want a refusal naming the lost lock", line)
	}
	if _, err := os.Stat(filepath.Join(dir, LedgerFile)); err == nil {
		t.Error("the fenced holder wrote the ledger")
	}
	if _, err := os.Stat(filepath.Join(dir, "mutated")); err == nil {
		t.Error("the fenced holder changed a node")
	}
}

// fencedWriter is the "fenced-writer" helper: it opens a Runner (taking the
// lock), says "locked", waits for stdin to close, then runs one step that
// would touch a node; it prints "refused: <err>" or "ran".
func fencedWriter(dir string) {
	mutated := filepath.Join(dir, "mutated")
	list, _ := NewList(&Step{StepName: "a", RunFunc: func(ctx context.Context, p Plan) ([]NodeResult, error) {
		if err := CheckFence(ctx); err != nil {
			return nil, err
		}
		return []NodeResult{{Node: p.Nodes()[0]}}, os.WriteFile(mutated, nil, 0o600)
	}})
	r, err := Open(context.Background(), list, Options{StateDir: dir, Nodes: []string{"n1"}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	if _, err := r.Run(context.Background(), RunOptions{}); err != nil {
		fmt.Println("refused:", err)
	} else {
		fmt.Println("ran")
	}
	os.Exit(0)
}
