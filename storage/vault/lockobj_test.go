package vault_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
	"github.com/tapeless/tapeless/storage/vault"
)

func mustAcquire(t *testing.T, b storage.Backend, holder string, ttl time.Duration, now time.Time) *vault.Lock {
	t.Helper()
	l, err := vault.AcquireLock(context.Background(), b, "prune", holder, ttl, now)
	if err != nil {
		t.Fatalf("AcquireLock(%s) = %v", holder, err)
	}
	return l
}

func TestLockExcludesAndReleases(t *testing.T) {
	ctx := context.Background()
	b := newFile(t)
	now := time.Now()
	a := mustAcquire(t, b, "prune A", time.Hour, now)
	if a.Broken() != nil {
		t.Errorf("Broken() = %+v on a free lock, want nil", a.Broken())
	}
	_, err := vault.AcquireLock(ctx, b, "prune", "prune B", time.Hour, now.Add(30*time.Minute))
	var he *vault.LockHeldError
	if !errors.As(err, &he) || !errors.Is(err, vault.ErrLockHeld) || he.Record.Holder != "prune A" {
		t.Fatalf("AcquireLock while held = %v, want a LockHeldError naming prune A", err)
	}
	for _, part := range []string{`vault lock "prune"`, "held by prune A on host", "30m ago; stale after 1h", "retry after"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
	_, err = vault.AcquireLock(ctx, b, "prune", "prune B", time.Hour, now.Add(-2*time.Minute))
	if err == nil || !strings.Contains(err.Error(), "2m in this machine's future") {
		t.Errorf("AcquireLock with a clock behind the holder's = %v, want it to say the record is 2m in the future", err)
	}
	// Another lock name is independent.
	if _, err := vault.AcquireLock(ctx, b, "other", "x", time.Hour, now); err != nil {
		t.Errorf("AcquireLock(other) = %v", err)
	}
	if err := a.Check(ctx); err != nil {
		t.Errorf("Check by the holder = %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := mustAcquire(t, b, "prune B", time.Hour, now.Add(time.Minute))
	if b2.Broken() != nil {
		t.Errorf("Broken() = %+v after a release, want nil", b2.Broken())
	}
	if err := a.Check(ctx); !errors.Is(err, vault.ErrLockLost) {
		t.Errorf("Check by a holder that released = %v, want ErrLockLost", err)
	}
	// Old generations do not pile up.
	if names := storagetest.MustList(t, b, vault.LockPrefix+"prune/"); len(names) != 1 {
		t.Errorf("lock records = %v, want only the newest", names)
	}
}

func TestLockStale(t *testing.T) {
	ctx := context.Background()
	b := newFile(t)
	t0 := time.Now()
	a := mustAcquire(t, b, "prune A", time.Hour, t0)
	// A refresh at 50m keeps it live until 1h50m.
	if err := a.Refresh(ctx, t0.Add(50*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AcquireLock(ctx, b, "prune", "prune B", time.Hour, t0.Add(100*time.Minute)); !errors.Is(err, vault.ErrLockHeld) {
		t.Fatalf("AcquireLock within the refreshed TTL = %v, want ErrLockHeld", err)
	}
	// A died: after its TTL the lock is broken, and B says whose it was.
	bl := mustAcquire(t, b, "prune B", time.Hour, t0.Add(111*time.Minute))
	if br := bl.Broken(); br == nil || br.Holder != "prune A" {
		t.Fatalf("Broken() = %+v, want prune A's stale record", br)
	}
	if rec := bl.Record(); !strings.Contains(rec.BrokeStale, "prune A on host") {
		t.Errorf("new record's BrokeStale = %q, want it to name prune A", rec.BrokeStale)
	}
	// A comes back: every step tells it the lock is gone, and nothing it
	// does disturbs B.
	for what, err := range map[string]error{
		"Check":   a.Check(ctx),
		"Refresh": a.Refresh(ctx, t0.Add(112*time.Minute)),
		"Release": a.Release(ctx),
	} {
		if !errors.Is(err, vault.ErrLockLost) {
			t.Errorf("%s by the broken holder = %v, want ErrLockLost", what, err)
		}
	}
	if err := bl.Check(ctx); err != nil {
		t.Errorf("Check by the new holder = %v", err)
	}
	if _, err := vault.AcquireLock(ctx, b, "prune", "prune C", time.Hour, t0.Add(113*time.Minute)); !errors.Is(err, vault.ErrLockHeld) {
		t.Errorf("AcquireLock after the old holder's release attempt = %v, want ErrLockHeld by B", err)
	}
}

// TestLockRace: many processes at once, for a free lock and for a stale
// one: exactly one wins each time.
func TestLockRace(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"file", "minio"} {
		t.Run(kind, func(t *testing.T) {
			var b storage.Backend
			if kind == "file" {
				b = newFile(t)
			} else {
				b = openMinIO(t, "primary")
			}
			t0 := time.Now()
			race := func(now time.Time) (winners []*vault.Lock) {
				const n = 8
				var wg sync.WaitGroup
				var mu sync.Mutex
				for i := range n {
					wg.Go(func() {
						l, err := vault.AcquireLock(ctx, b, "prune", "racer", time.Minute, now)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							winners = append(winners, l)
						case !errors.Is(err, vault.ErrLockHeld):
							t.Errorf("racer %d: %v, want success or ErrLockHeld", i, err)
						}
					})
				}
				wg.Wait()
				return winners
			}
			if w := race(t0); len(w) != 1 {
				t.Fatalf("%d racers got the free lock, want 1", len(w))
			}
			w := race(t0.Add(2 * time.Minute)) // the winner above went stale
			if len(w) != 1 || w[0].Broken() == nil {
				t.Fatalf("%d racers broke the stale lock, want 1", len(w))
			}
			if err := w[0].Check(ctx); err != nil {
				t.Errorf("Check by the winner = %v", err)
			}
		})
	}
}

// TestLockObjectLockedVault: on an object-lock bucket the records cannot
// be deleted, and the lock works all the same.
func TestLockObjectLockedVault(t *testing.T) {
	ctx := context.Background()
	u, o := storagetest.MinIOLock(t, "primary")
	o.ObjectLockDays = 1
	b, err := storage.Open(ctx, u, o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	for i := range 3 {
		l := mustAcquire(t, b, "prune", time.Hour, now.Add(time.Duration(i)*time.Minute))
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release %d = %v", i, err)
		}
	}
	if _, err := vault.AcquireLock(ctx, b, "prune", "other", time.Hour, now); err != nil {
		t.Fatalf("AcquireLock after releases = %v", err)
	}
	if _, err := vault.AcquireLock(ctx, b, "prune", "another", time.Hour, now); !errors.Is(err, vault.ErrLockHeld) {
		t.Errorf("second AcquireLock = %v, want ErrLockHeld", err)
	}
	if names := storagetest.MustList(t, b, vault.LockPrefix); len(names) != 7 {
		t.Errorf("lock records = %d, want all 7 still there under retention", len(names))
	}
}

func TestLockBadArguments(t *testing.T) {
	b := newFile(t)
	for _, name := range []string{"", "a/b", ".."} {
		if _, err := vault.AcquireLock(context.Background(), b, name, "x", time.Hour, time.Now()); err == nil {
			t.Errorf("AcquireLock(%q) = nil, want an error", name)
		}
	}
	if _, err := vault.AcquireLock(context.Background(), b, "prune", "x", 0, time.Now()); err == nil {
		t.Error("AcquireLock with TTL 0 = nil, want an error")
	}
}
