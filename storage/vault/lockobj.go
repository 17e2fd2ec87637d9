package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/humanize"
)

// LockPrefix is where vault lock records live. The archive must not store
// anything under it.
const LockPrefix = "locks/"

var (
	// ErrLockHeld means someone else holds a live lock. Errors wrapping it
	// are *LockHeldError.
	ErrLockHeld = errors.New("storage: lock is held")
	// ErrLockLost means a lock this process held was broken as stale by
	// another process: stop the work it protected.
	ErrLockLost = errors.New("storage: lock was lost")
)

// LockRecord is one generation of a vault lock, stored as JSON.
type LockRecord struct {
	State  string        `json:"state"`  // "held" or "released"
	Holder string        `json:"holder"` // what holds it, e.g. "prune"
	Host   string        `json:"host"`
	PID    int           `json:"pid"`
	Token  string        `json:"token"` // random, one per acquisition
	Time   time.Time     `json:"time"`  // when written, by the writer's clock
	TTL    time.Duration `json:"ttl"`   // a held record older than this is stale

	// BrokeStale names the stale holder this acquisition replaced.
	BrokeStale string `json:"broke_stale,omitempty"`
}

// Record states.
const (
	lockHeld     = "held"
	lockReleased = "released"
)

func (r LockRecord) who() string {
	return fmt.Sprintf("%s on host %s (pid %d)", r.Holder, r.Host, r.PID)
}

// LockHeldError says who holds a lock and until when it counts as live.
type LockHeldError struct {
	Name     string
	Location string
	Record   LockRecord
	Age      time.Duration // by the caller's clock
}

func (e *LockHeldError) Error() string {
	age := humanize.Duration(e.Age) + " ago"
	if e.Age < 0 {
		// The holder's clock is ahead of ours: CheckClockSkew says more.
		age = humanize.Duration(-e.Age) + " in this machine's future"
	}
	return fmt.Sprintf("vault lock %q at %s is held by %s since %s (%s; stale after %s): wait for it to finish, or if that process is gone, retry after %s",
		e.Name, e.Location, e.Record.who(), e.Record.Time.UTC().Format(time.RFC3339), age,
		humanize.Duration(e.Record.TTL), e.Record.Time.Add(e.Record.TTL).UTC().Format(time.RFC3339))
}

// Unwrap returns ErrLockHeld.
func (e *LockHeldError) Unwrap() error { return ErrLockHeld }

// Lock is a vault lock held by this process (see AcquireLock).
type Lock struct {
	b      storage.Backend
	name   string
	gen    uint64
	rec    LockRecord
	broken *LockRecord
}

// AcquireLock takes the vault lock name (one path element, such as
// "prune") in b for holder, valid for ttl from now. It fails with a
// *LockHeldError while another holder's lock is live.
//
// The lock is a ladder of write-once records, locks/<name>/<generation>:
// the newest generation says who holds the lock or that it was released.
// Acquiring writes the next generation with Save, which is write-once on
// every backend (link(2) on files, If-None-Match on S3), so of two
// processes racing for the same generation exactly one wins. Nothing ever
// deletes or overwrites another process's record to take the lock, so
// breaking a stale lock is as safe as taking a free one: the breaker
// simply writes the next generation. Old generations are removed by
// whoever holds the lock, best effort.
//
// A held record is stale once it is older than the TTL its holder wrote
// into it, measured from the later of the record's own time and the
// backend's modification time, by the caller's now. Clocks matter: run
// CheckClockSkew first, and choose a TTL far above MaxClockSkew (an hour
// for prune). A holder that runs longer than its TTL calls Refresh, and
// calls Check before each irreversible step: once its lock is broken,
// Check, Refresh and Release return ErrLockLost.
//
// On a replicated vault, lock the primary copy alone
// ((*ReplicatedBackend).Primary): a lock is coordination, not data, and
// must not depend on the secondary being up.
//
// On an object-lock vault the records fall under retention like every
// object and cannot be deleted until it ends; that is harmless (they are
// small and the ladder never needs to delete them), or open the lock's
// backend without ObjectLockDays when the bucket has no default
// retention.
func AcquireLock(ctx context.Context, b storage.Backend, name, holder string, ttl time.Duration, now time.Time) (*Lock, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("vault lock %q: the name must be one path element", name)
	}
	if err := storage.CheckName(LockPrefix + name); err != nil {
		return nil, fmt.Errorf("vault lock %q: %w", name, err)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("vault lock %q: TTL must be positive", name)
	}
	host, _ := os.Hostname()
	var tok [16]byte
	rand.Read(tok[:])
	rec := LockRecord{State: lockHeld, Holder: holder, Host: host, PID: os.Getpid(), Token: hex.EncodeToString(tok[:]), Time: now.UTC(), TTL: ttl}
	l := &Lock{b: b, name: name, rec: rec}
	// Each lost race means another process wrote a generation; a few
	// rounds settle it one way or the other.
	for range 10 {
		gen, latest, mod, err := readLatest(ctx, b, name)
		if errors.Is(err, storage.ErrNotFound) {
			continue // removed as we read it: a newer generation exists
		}
		if err != nil {
			return nil, err
		}
		l.broken = nil
		l.rec.BrokeStale = ""
		if gen > 0 && latest.State == lockHeld {
			since := latest.Time
			if mod.After(since) {
				since = mod
			}
			age := now.Sub(since)
			if age <= latest.TTL {
				return nil, &LockHeldError{Name: name, Location: b.Location(), Record: latest, Age: age}
			}
			l.broken = &latest
			l.rec.BrokeStale = fmt.Sprintf("%s since %s", latest.who(), latest.Time.UTC().Format(time.RFC3339))
		}
		err = writeRecord(ctx, b, name, gen+1, l.rec)
		if errors.Is(err, storage.ErrExists) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// A listing is not a snapshot: while a holder's cleanup removes old
		// generations, a racer can see none, and rewrite a removed number
		// below the live one. The live holder's record is never removed
		// while it is the newest, so one more listing after the write tells
		// whether ours really is the newest.
		newest, _, err := newestGen(ctx, b, name)
		if err != nil {
			return nil, err
		}
		if newest > gen+1 {
			_ = b.Remove(ctx, genName(name, gen+1))
			continue
		}
		l.gen = gen + 1
		l.cleanup(ctx)
		return l, nil
	}
	return nil, fmt.Errorf("vault lock %q at %s: too many concurrent attempts, try again", name, b.Location())
}

// Broken returns the stale record this acquisition replaced, or nil when
// the lock was free. Callers should say so: a stale lock usually means a
// process died mid-work.
func (l *Lock) Broken() *LockRecord { return l.broken }

// Record returns this holder's current record.
func (l *Lock) Record() LockRecord { return l.rec }

// Check returns nil while the lock is still ours and ErrLockLost once
// another process has written a newer generation (broken it as stale).
func (l *Lock) Check(ctx context.Context) error {
	gen, latest, _, err := readLatest(ctx, l.b, l.name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Only a newer holder removes older generations.
		return l.lost(LockRecord{})
	case err != nil:
		return err
	case gen != l.gen || latest.Token != l.rec.Token:
		return l.lost(latest)
	}
	return nil
}

func (l *Lock) lost(by LockRecord) error {
	if by.Holder == "" {
		return fmt.Errorf("vault lock %q at %s: %w", l.name, l.b.Location(), ErrLockLost)
	}
	return fmt.Errorf("vault lock %q at %s: %w: now %s %s", l.name, l.b.Location(), ErrLockLost, by.State, by.who())
}

// Refresh renews the lock for another TTL from now by writing the next
// generation; ErrLockLost when it was broken meanwhile.
func (l *Lock) Refresh(ctx context.Context, now time.Time) error {
	if err := l.Check(ctx); err != nil {
		return err
	}
	rec := l.rec
	rec.Time = now.UTC()
	rec.BrokeStale = ""
	if err := l.next(ctx, rec); err != nil {
		return err
	}
	l.rec = rec
	return nil
}

// Release gives the lock up by writing a released generation. It returns
// ErrLockLost, and changes nothing, when the lock had been broken.
func (l *Lock) Release(ctx context.Context) error {
	rec := l.rec
	rec.State = lockReleased
	rec.Time = time.Now().UTC()
	rec.BrokeStale = ""
	return l.next(ctx, rec)
}

// next writes rec as the generation after ours.
func (l *Lock) next(ctx context.Context, rec LockRecord) error {
	err := writeRecord(ctx, l.b, l.name, l.gen+1, rec)
	if errors.Is(err, storage.ErrExists) {
		_, latest, _, _ := readLatest(ctx, l.b, l.name)
		return l.lost(latest)
	}
	if err != nil {
		return err
	}
	l.gen++
	l.cleanup(ctx)
	return nil
}

// cleanup removes generations older than ours. Failures are ignored: a
// record left behind (object lock retention, a network error) costs a few
// bytes and never affects who holds the lock.
func (l *Lock) cleanup(ctx context.Context) {
	prefix := LockPrefix + l.name + "/"
	var old []string
	_ = l.b.List(ctx, prefix, func(i storage.Info) error {
		if g, ok := parseGen(strings.TrimPrefix(i.Name, prefix)); ok && g < l.gen {
			old = append(old, i.Name)
		}
		return nil
	})
	for _, n := range old {
		_ = l.b.Remove(ctx, n)
	}
}

func genName(name string, gen uint64) string {
	return fmt.Sprintf("%s%s/%020d", LockPrefix, name, gen)
}

func parseGen(s string) (uint64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	g, err := strconv.ParseUint(s, 10, 64)
	return g, err == nil
}

// readLatest returns the newest generation (0 when there is none), its
// record and its modification time on the backend.
func readLatest(ctx context.Context, b storage.Backend, name string) (uint64, LockRecord, time.Time, error) {
	gen, mod, err := newestGen(ctx, b, name)
	if err != nil {
		return 0, LockRecord{}, time.Time{}, err
	}
	if gen == 0 {
		return 0, LockRecord{}, time.Time{}, nil
	}
	var rec LockRecord
	err = b.Load(ctx, genName(name, gen), 0, -1, func(r io.Reader) error {
		data, err := io.ReadAll(io.LimitReader(r, 1<<16))
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &rec)
	})
	if err != nil {
		return gen, LockRecord{}, mod, fmt.Errorf("vault lock %q: read %s at %s: %w", name, genName(name, gen), b.Location(), err)
	}
	if rec.State != lockHeld && rec.State != lockReleased {
		return gen, LockRecord{}, mod, fmt.Errorf("vault lock %q: %s at %s has unknown state %q", name, genName(name, gen), b.Location(), rec.State)
	}
	return gen, rec, mod, nil
}

func writeRecord(ctx context.Context, b storage.Backend, name string, gen uint64, rec LockRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := b.Save(ctx, genName(name, gen), bytes.NewReader(data), int64(len(data))); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return err
		}
		return fmt.Errorf("vault lock %q: write generation %d at %s: %w", name, gen, b.Location(), err)
	}
	return nil
}

// newestGen lists the lock's generations and returns the highest one (0
// when there is none) with its modification time.
func newestGen(ctx context.Context, b storage.Backend, name string) (uint64, time.Time, error) {
	prefix := LockPrefix + name + "/"
	var gen uint64
	var mod time.Time
	err := b.List(ctx, prefix, func(i storage.Info) error {
		if g, ok := parseGen(strings.TrimPrefix(i.Name, prefix)); ok && g > gen {
			gen, mod = g, i.ModTime
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("vault lock %q: list %s at %s: %w", name, prefix, b.Location(), err)
	}
	return gen, mod, nil
}
