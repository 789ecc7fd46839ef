package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/approval"
)

// LockFile is the lock's file name inside the state directory.
const LockFile = "lock.json"

// LockInfo says who holds a lock.
type LockInfo struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Owner     string    `json:"owner"`
	Token     string    `json:"token"`
	Since     time.Time `json:"since"`
	Heartbeat time.Time `json:"heartbeat"`
}

// LockedError reports that another live process holds the lock.
type LockedError struct {
	Path   string
	Holder LockInfo
}

// Error names the holder.
func (e *LockedError) Error() string {
	return fmt.Sprintf("state directory is locked by %s (pid %d on %s) since %s, last heartbeat %s (lock file %s)",
		e.Holder.Owner, e.Holder.PID, e.Holder.Host, e.Holder.Since.Format(time.RFC3339),
		e.Holder.Heartbeat.Format(time.RFC3339), e.Path)
}

// LockOptions tune a Lock. Zero values take the defaults.
type LockOptions struct {
	Heartbeat  time.Duration // how often the lock is rewritten; default 10s
	StaleAfter time.Duration // a lock not rewritten for this long is taken over; default 30s
	Logger     *slog.Logger
}

// Lock is an exclusive hold on a state directory, kept alive by a heartbeat.
type Lock struct {
	path   string
	info   LockInfo
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	mu     sync.Mutex
	lost   error
}

// AcquireLock takes the lock of state directory dir. A live holder gives a
// *LockedError; a holder whose heartbeat is older than StaleAfter, or whose
// pid is dead on this same host, is taken over.
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: state directory: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now().UTC()
	info := LockInfo{Host: host, PID: os.Getpid(), Owner: approval.CurrentUser(), Token: approval.NewID(), Since: now, Heartbeat: now}
	path := filepath.Join(dir, LockFile)
	for attempt := 0; attempt < 3; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := createExclusive(path, info)
		if err == nil {
			l := &Lock{path: path, info: info, log: opts.Logger, stop: make(chan struct{}), done: make(chan struct{})}
			go l.heartbeat(opts.Heartbeat)
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock: %w", err)
		}
		holder, rerr := readLock(path)
		if errors.Is(rerr, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if rerr == nil && !stale(holder, host, opts.StaleAfter) {
			return nil, &LockedError{Path: path, Holder: holder}
		}
		// Stale or unreadable (a crash between create and write): take it over.
		// Move it aside, then check that what we moved is what we judged stale,
		// so that two processes taking over at once cannot both win.
		aside := fmt.Sprintf("%s.stale-%d", path, os.Getpid())
		if err := os.Rename(path, aside); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("lock: take over stale lock: %w", err)
		}
		moved, merr := readLock(aside)
		if merr == nil && rerr == nil && moved.Token != holder.Token {
			// Someone else took it over in between: put theirs back.
			_ = os.Link(aside, path)
			_ = os.Remove(aside)
			return nil, &LockedError{Path: path, Holder: moved}
		}
		_ = os.Remove(aside)
		opts.Logger.Warn("took over stale lock", "path", path, "holder_pid", holder.PID, "holder_host", holder.Host, "last_heartbeat", holder.Heartbeat)
	}
	return nil, fmt.Errorf("lock: %s keeps changing; giving up", path)
}

func stale(h LockInfo, host string, after time.Duration) bool {
	if time.Since(h.Heartbeat) > after {
		return true
	}
	if h.Host == host && h.PID > 0 {
		if err := syscall.Kill(h.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

func createExclusive(path string, info LockInfo) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(info)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

func readLock(path string) (LockInfo, error) {
	var info LockInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, &CorruptStateError{Path: path, Err: err}
	}
	return info, nil
}

// Info returns the lock's holder record (this process).
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Err reports whether the lock was lost (taken over by another process).
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *Lock) heartbeat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		cur, err := readLock(l.path)
		if err != nil || cur.Token != l.info.Token {
			l.mu.Lock()
			l.lost = fmt.Errorf("lock %s lost: held by pid %d on %s", l.path, cur.PID, cur.Host)
			l.mu.Unlock()
			l.log.Error("lock lost", "path", l.path, "holder_pid", cur.PID, "holder_host", cur.Host)
			return
		}
		l.mu.Lock()
		l.info.Heartbeat = time.Now().UTC()
		data, _ := json.Marshal(l.info)
		l.mu.Unlock()
		if err := WriteFileAtomic(l.path, data, 0o600); err != nil {
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
		cur, rerr := readLock(l.path)
		if rerr == nil && cur.Token == l.info.Token {
			if rmErr := os.Remove(l.path); rmErr != nil {
				err = fmt.Errorf("release lock: %w", rmErr)
			}
		}
	})
	return err
}
