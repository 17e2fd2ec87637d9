package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// ReleaseDeadLock ends a vault lock whose holder ran on this host and no
// longer runs (its PID is gone), such as a prune killed mid-way: rather
// than waiting out the holder's TTL, it writes a released generation on
// top of the held one. It returns the record it released, or nil when the
// lock is free, held from another host, or its holder is alive (a PID
// reused by another process counts as alive: waiting is the safe side).
// Of two processes doing this at once one writes the generation and the
// other sees ErrExists, which is success too: the lock is then acquired
// as usual with AcquireLock.
func ReleaseDeadLock(ctx context.Context, b storage.Backend, name string) (*LockRecord, error) {
	gen, latest, _, err := readLatest(ctx, b, name)
	if err != nil || gen == 0 || latest.State != lockHeld {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || latest.Host != host || latest.PID <= 0 || processAlive(latest.PID) {
		return nil, nil
	}
	rec := latest
	rec.State = lockReleased
	rec.Time = time.Now().UTC()
	rec.BrokeStale = fmt.Sprintf("%s since %s (process gone)", latest.who(), latest.Time.UTC().Format(time.RFC3339))
	if err := writeRecord(ctx, b, name, gen+1, rec); err != nil && !errors.Is(err, storage.ErrExists) {
		return nil, err
	}
	return &latest, nil
}

// processAlive reports whether a process with this PID exists on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
