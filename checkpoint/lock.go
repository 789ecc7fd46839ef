package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/internal/fence"
	"github.com/raydeploy/sdk/internal/fstrust"
)

// LockFile is the lock's file name inside the state directory.
const LockFile = "lock.json"

// LockInfo says who holds a lock. BootID and StartTime identify the holding
// process beyond its pid, so a pid reused after a crash or a reboot is not
// mistaken for the holder.
type LockInfo struct {
	// Host is the holder's host name.
	Host string `json:"host"`
	// PID is the holder's process ID.
	PID int `json:"pid"`
	// Owner is the user running the holder (approval.CurrentUser).
	Owner string `json:"owner"`
	// Token is a random ID of this hold; a lock file with another token is
	// another holder's.
	Token string `json:"token"`
	// Since is when the lock was taken, UTC.
	Since time.Time `json:"since"`
	// Heartbeat is when the holder last rewrote the lock, UTC.
	Heartbeat time.Time `json:"heartbeat"`
	// BootID is the holder machine's /proc/sys/kernel/random/boot_id (empty:
	// unknown).
	BootID    string `json:"boot_id,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"` // clock ticks after boot, /proc/<pid>/stat
}

// LockedError reports that another live process holds the lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// Holder is who holds the lock.
	Holder LockInfo
}

// Error names the holder.
func (e *LockedError) Error() string {
	return fmt.Sprintf("state directory is locked by %s (pid %d on %s) since %s, last heartbeat %s (lock file %s)",
		e.Holder.Owner, e.Holder.PID, e.Holder.Host, e.Holder.Since.Format(time.RFC3339),
		e.Holder.Heartbeat.Format(time.RFC3339), e.Path)
}

// ErrLockLost is matched (errors.Is) by a *LockLostError.
var ErrLockLost = errors.New("cluster lock lost")

// LockLostError reports that this process no longer holds the lock: another
// deployer took it over (this one was paused or cut off past the stale
// bound) or the lock file was removed. Whatever returns it stopped before
// changing anything more.
type LockLostError struct {
	// Path is the lock file.
	Path   string
	Holder LockInfo // the current holder, if any
	// Reason says how the lock was lost: taken over (by whom) or the lock
	// file removed.
	Reason string
}

// Error says who holds the lock now.
func (e *LockLostError) Error() string {
	return fmt.Sprintf("%v: %s (lock file %s); this deployer stopped before changing anything more", ErrLockLost, e.Reason, e.Path)
}

// Is matches ErrLockLost.
func (e *LockLostError) Is(target error) bool { return target == ErrLockLost }

// LockOptions tune a Lock. Zero values take the defaults.
type LockOptions struct {
	Heartbeat  time.Duration // how often the lock is rewritten; default 10s
	StaleAfter time.Duration // a lock not rewritten for this long is taken over; default 30s
	// Logger is told of take-overs, repairs and a lost lock (default:
	// discard).
	Logger *slog.Logger
}

// Lock is an exclusive hold on a state directory, kept alive by a heartbeat.
// Its Check fences every change: ledger writes and, through the context the
// Runner gives checkpoints, node mutations.
type Lock struct {
	dir    string
	path   string
	info   LockInfo
	opts   LockOptions
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	mu     sync.Mutex
	lost   error
}

// AcquireLock takes the lock of state directory dir. A live holder gives a
// *LockedError. A holder that is gone is taken over at once: on this host
// (same boot) its pid no longer runs, is a zombie, or now belongs to another
// process (start time differs), or the machine rebooted since. A holder
// whose heartbeat is older than StaleAfter is taken over too; if it still
// runs, its next fenced change fails with a *LockLostError. A lock file that
// cannot be parsed is taken over only once it is older than StaleAfter.
//
// Every read-judge-replace of the lock file happens under an flock of the
// state directory itself, and the lock file is only ever replaced
// whole (temp file, fsync, rename), so no one sees it half-written and no
// two processes can both win.
func AcquireLock(ctx context.Context, dir string, opts LockOptions) (*Lock, error) {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 10 * time.Second
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkStateDir(dir, opts.Logger); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	self := selfIdentity()
	now := time.Now().UTC()
	l := &Lock{
		dir: dir, path: filepath.Join(dir, LockFile), opts: opts, log: opts.Logger,
		stop: make(chan struct{}), done: make(chan struct{}),
		info: LockInfo{Host: self.Host, PID: self.PID, Owner: approval.CurrentUser(), Token: approval.NewID(),
			Since: now, Heartbeat: now, BootID: self.BootID, StartTime: self.StartTime},
	}
	err := withLockMutex(ctx, dir, opts.StaleAfter, func() error {
		holder, err := readLock(l.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			fi, serr := os.Stat(l.path)
			if serr != nil || time.Since(fi.ModTime()) <= opts.StaleAfter {
				return fmt.Errorf("lock file %s is unreadable and was written %s ago; it is taken over once it is older than %s: %w",
					l.path, time.Since(fi.ModTime()).Round(time.Second), opts.StaleAfter, err)
			}
			l.log.Warn("took over unreadable lock file", "path", l.path, "age", time.Since(fi.ModTime()))
		default:
			dead, why := holderGone(holder, self)
			switch {
			case dead:
				l.log.Warn("took over lock of a holder that is gone", "path", l.path, "holder_pid", holder.PID, "holder_host", holder.Host, "why", why)
			case time.Since(holder.Heartbeat) > opts.StaleAfter:
				l.log.Warn("took over stale lock", "path", l.path, "holder_pid", holder.PID, "holder_host", holder.Host, "last_heartbeat", holder.Heartbeat)
			default:
				return &LockedError{Path: l.path, Holder: holder}
			}
		}
		return l.write()
	})
	if err != nil {
		return nil, err
	}
	go l.heartbeat()
	return l, nil
}

// checkStateDir creates the state directory 0700 or checks the existing one
// (a symlink, another owner or write access by others is refused; read
// access by others is removed, with a warning).
func checkStateDir(dir string, log *slog.Logger) error {
	rep, err := fstrust.PrivateDir(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if rep != nil {
		log.Warn("state directory permissions repaired", "repair", rep.String())
	}
	return nil
}

func (l *Lock) write() error {
	l.mu.Lock()
	data, err := json.Marshal(l.info)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return WriteFileAtomic(l.path, data, 0o600)
}

// withLockMutex runs fn holding an exclusive flock of the directory dir
// (the kernel drops it when a holder dies). Holders keep it for
// microseconds; waiting is bounded by bound and ctx.
func withLockMutex(ctx context.Context, dir string, bound time.Duration, fn func() error) error {
	path := dir
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("lock: open state directory: %w", err)
	}
	defer f.Close()
	deadline := time.Now().Add(bound)
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock: flock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock: %s held by another process for more than %s", path, bound)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	return fn()
}

// identity names a process beyond its pid.
type identity struct {
	Host      string
	PID       int
	BootID    string
	StartTime uint64
}

func selfIdentity() identity {
	host, _ := os.Hostname()
	id := identity{Host: host, PID: os.Getpid(), BootID: bootID()}
	if st, err := readProcStat(id.PID); err == nil {
		id.StartTime = st.start
	}
	return id
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type procStat struct {
	state byte
	start uint64
}

// readProcStat reads the state and start time of pid from /proc/<pid>/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// pid (comm) state ppid ... ; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, errors.New("malformed stat")
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, err
	}
	return procStat{state: f[0][0], start: start}, nil
}

// holderGone reports whether the holder certainly no longer runs. Only a
// holder on this host and boot can be judged; others are judged by their
// heartbeat alone.
func holderGone(h LockInfo, self identity) (bool, string) {
	if h.Host != self.Host || h.PID <= 0 {
		return false, ""
	}
	if h.BootID != "" && self.BootID != "" && h.BootID != self.BootID {
		return true, "the machine rebooted since the lock was taken"
	}
	st, err := readProcStat(h.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, "its pid no longer exists"
	case err == nil && (st.state == 'Z' || st.state == 'X'):
		return true, "its process has exited"
	case err == nil && h.StartTime != 0 && st.start != h.StartTime:
		return true, "its pid now belongs to another process"
	case err != nil:
		if kerr := syscall.Kill(h.PID, 0); errors.Is(kerr, syscall.ESRCH) {
			return true, "its pid no longer exists"
		}
	}
	return false, ""
}

func readLock(path string) (LockInfo, error) {
	f, _, err := fstrust.Open(path, os.O_RDONLY, 0o600, fstrust.RepairRead)
	if err != nil {
		return LockInfo{}, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return LockInfo{}, err
	}
	return decodeLock(path, buf.Bytes())
}

// decodeLock decodes a lock file strictly: one JSON object of LockInfo's
// keys, none unknown, repeated or null, with a token, a pid, since and
// heartbeat, and nothing after it. Errors are *CorruptStateError naming
// path.
func decodeLock(path string, data []byte) (LockInfo, error) {
	var info LockInfo
	corrupt := func(err error) (LockInfo, error) { return LockInfo{}, &CorruptStateError{Path: path, Err: err} }
	if err := lockKeys(data); err != nil {
		return corrupt(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return corrupt(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return corrupt(errors.New("trailing data after the lock record"))
	}
	switch {
	case info.Token == "":
		return corrupt(errors.New("no token"))
	case info.PID <= 0:
		return corrupt(fmt.Errorf("pid %d is not a process id", info.PID))
	case info.Since.IsZero():
		return corrupt(errors.New("no since time"))
	case info.Heartbeat.IsZero():
		return corrupt(errors.New("no heartbeat time"))
	}
	return info, nil
}

// lockKeys checks that data is an object whose keys appear once each and
// are not null (encoding/json keeps the last of repeated keys and takes
// null as "unset").
func lockKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return fmt.Errorf("want a JSON object, got %v", t)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("repeated key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if string(v) == "null" {
			return fmt.Errorf("key %q is null", key)
		}
	}
	return nil
}

// Info returns the lock's holder record (this process).
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Err reports whether the lock is known to be lost, without reading the lock file.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Check is the fence: it reads the lock file and returns a *LockLostError
// unless this Lock still holds it. Call it before every change.
func (l *Lock) Check() error {
	if err := l.Err(); err != nil {
		return err
	}
	cur, err := readLock(l.path)
	var lost *LockLostError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		lost = &LockLostError{Path: l.path, Reason: "the lock file was removed"}
	case err != nil:
		return fmt.Errorf("check lock: %w", err)
	case cur.Token != l.info.Token:
		lost = &LockLostError{Path: l.path, Holder: cur,
			Reason: fmt.Sprintf("taken over by %s (pid %d on %s) at %s", cur.Owner, cur.PID, cur.Host, cur.Since.Format(time.RFC3339))}
	default:
		return nil
	}
	l.mu.Lock()
	if l.lost == nil {
		l.lost = lost
	}
	l.mu.Unlock()
	l.log.Error("lock lost", "path", l.path, "reason", lost.Reason)
	return lost
}

func (l *Lock) heartbeat() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		err := withLockMutex(context.Background(), l.dir, l.opts.Heartbeat, func() error {
			if err := l.Check(); err != nil {
				return err
			}
			l.mu.Lock()
			l.info.Heartbeat = time.Now().UTC()
			l.mu.Unlock()
			return l.write()
		})
		if errors.Is(err, ErrLockLost) {
			return
		}
		if err != nil {
			l.log.Warn("lock heartbeat failed", "path", l.path, "err", err)
		}
	}
}

// Close stops the heartbeat and removes the lock file if it is still ours.
func (l *Lock) Close() error {
	var err error
	l.closed.Do(func() {
		close(l.stop)
		<-l.done
		err = withLockMutex(context.Background(), l.dir, l.opts.StaleAfter, func() error {
			cur, rerr := readLock(l.path)
			if rerr == nil && cur.Token == l.info.Token {
				if rmErr := os.Remove(l.path); rmErr != nil {
					return fmt.Errorf("release lock: %w", rmErr)
				}
			}
			return nil
		})
	})
	return err
}

// CheckFence returns an error (a *LockLostError when the runner's lock was
// taken over) if the checkpoint running with ctx may no longer change
// anything. A Checkpoint's Run calls it before each change it makes on a
// node; the SDK's own SSH and Docker layers call it for every command and
// mutation. Without a fence in ctx it returns nil.
func CheckFence(ctx context.Context) error { return fence.Check(ctx) }
