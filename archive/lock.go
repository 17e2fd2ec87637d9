package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLocked is wrapped by the error OpenStore returns when another writer
// holds the store.
var ErrLocked = errors.New("store is locked")

// LockInfo is what the store lock file records about its holder.
type LockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// LockedError names the holder of a store lock.
type LockedError struct {
	Dir    string
	Holder LockInfo
	Hint   string
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("store %s is locked by host %s pid %d since %s", e.Dir, e.Holder.Host, e.Holder.PID,
		e.Holder.Started.UTC().Format(time.RFC3339))
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// storeLock is the single-writer lock of a store: <dir>/lock holds the
// holder's host, PID and start time as JSON, and the holder keeps an
// exclusive flock(2) on it. The kernel drops the flock when the holder dies,
// which is how a stale lock is told from a live one on the same host; the
// recorded host and PID are for the error message and for hosts sharing the
// directory over a network filesystem, where flock may not reach.
type storeLock struct {
	f *os.File
	// Stale is the holder of a stale lock this one replaced, if any.
	Stale *LockInfo
}

func lockPath(dir string) string { return filepath.Join(dir, "lock") }

// acquireLock takes the store lock of dir or says who holds it.
func acquireLock(dir string) (*storeLock, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("lock store %s: hostname: %w", dir, err)
	}
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	prev, readErr := readLockInfo(f)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if readErr != nil || prev == nil {
				// The holder has opened but not yet written the file.
				return nil, &LockedError{Dir: dir, Holder: LockInfo{Host: "?", PID: 0}, Hint: "the holder is starting"}
			}
			return nil, &LockedError{Dir: dir, Holder: *prev}
		}
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	l := &storeLock{f: f}
	if prev != nil && prev.PID != 0 {
		if prev.Host != host {
			// Another machine may hold it over a network filesystem
			// where our flock does not see theirs: never take it over.
			f.Close()
			return nil, &LockedError{Dir: dir, Holder: *prev,
				Hint: "held from another host; if that process is gone, remove " + lockPath(dir)}
		}
		// Same host and the flock is free: the holder died (its PID may
		// even have been reused since). The flock is authoritative.
		l.Stale = prev
	}
	info := LockInfo{Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
	b, _ := json.Marshal(info)
	if err := f.Truncate(0); err != nil {
		l.release()
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
		l.release()
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := f.Sync(); err != nil {
		l.release()
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	return l, nil
}

// readLockInfo returns the recorded holder, or nil for an empty file (a
// lock released cleanly).
func readLockInfo(f *os.File) (*LockInfo, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	var li LockInfo
	if err := json.Unmarshal(b, &li); err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	return &li, nil
}

// release empties the lock file and drops the flock. The file itself stays:
// removing it would let a process that opened the old inode lock a file no
// one else sees.
func (l *storeLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Truncate(0)
	if cerr := l.f.Close(); err == nil { // closing drops the flock
		err = cerr
	}
	l.f = nil
	return err
}

// readersFile is the file in a store that restores of local points hold a
// shared flock(2) on while they read; offload deletes local points and
// packs only while it can hold it exclusively. It records nothing.
const readersFile = "readers"

// ErrNoReadLock is wrapped when a reader cannot take the store's read lock
// because it may not create or open the lock file (a read-only store or
// one the user may only read); no offload can delete through such a
// mount, but one run by another user could.
var ErrNoReadLock = errors.New("cannot take the store's read lock")

// ReadLock is a shared lock on a store's objects: while any is held,
// offload leaves every local point and pack in place. Release it when the
// read is done; the kernel drops it if the process dies.
type ReadLock struct{ f *os.File }

// LockForRead takes a shared lock on the store in dir. An offload holds
// the lock exclusively only while it deletes local objects, a short
// while: LockForRead waits for it (calling waiting once, if set) until ctx
// ends.
func LockForRead(ctx context.Context, dir string, waiting func()) (*ReadLock, error) {
	p := filepath.Join(dir, readersFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return nil, fmt.Errorf("%w %s: %w", ErrNoReadLock, p, err)
	}
	if err != nil {
		return nil, fmt.Errorf("lock store %s for reading: %w", dir, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return &ReadLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock store %s for reading: %w", dir, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Release drops the lock; a nil lock is fine.
func (l *ReadLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// tryLockCleanup takes the store's read lock exclusively, without
// waiting, before local objects are deleted: ok is false while a restore
// reads the store. Call release when the deletion is done.
func (s *Store) tryLockCleanup() (release func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, readersFile), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock store %s for cleanup: %w", s.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock store %s for cleanup: %w", s.dir, err)
	}
	return func() { f.Close() }, true, nil
}
