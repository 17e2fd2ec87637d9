package archive

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
	"github.com/tapeless/tapeless/storage/vault"
)

func testPruneExpiresAndCollects(t *testing.T, v testVault) {
	ctx := context.Background()
	s, k := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 4, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	policy := expireAllBut(2)
	clock := func() time.Time { return now }

	before := objectList(t, v.Primary)
	dry, err := Prune(ctx, s, v.target(), PruneOptions{Select: policy, Now: clock, DryRun: true})
	if err != nil {
		t.Fatalf("Prune --dry-run: %v", err)
	}
	if len(dry.Expired) != 2 || dry.ObjectsRemoved <= 2 {
		t.Errorf("dry run: %d expired, %d objects; want 2 and more than 2", len(dry.Expired), dry.ObjectsRemoved)
	}
	if after := objectList(t, v.Primary); !slices.Equal(before, after) {
		t.Fatal("a dry run changed the vault")
	}

	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: policy, Now: clock})
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	want := []ID{pts[0].id, pts[1].id}
	got := slices.Clone(res.Expired)
	slices.SortFunc(got, func(a, b ID) int { return slices.Compare(a[:], b[:]) })
	slices.SortFunc(want, func(a, b ID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Errorf("expired %v, want the two oldest %v", got, want)
	}
	if res.ObjectsRemoved != dry.ObjectsRemoved {
		t.Errorf("removed %d objects, the dry run said %d", res.ObjectsRemoved, dry.ObjectsRemoved)
	}
	for _, b := range v.Copies() {
		st, err := Verify(ctx, b, k, false, 0, func(p VerifyProblem) { t.Errorf("verify %s after prune: %v", b.Location(), p) })
		if err != nil {
			t.Fatal(err)
		}
		if st.Points != 2 || st.Unreferenced != 0 {
			t.Errorf("%s after prune: %d points, %d unreferenced packs; want 2, 0", b.Location(), st.Points, st.Unreferenced)
		}
	}
	for _, p := range pts[2:] {
		restoreFrom(t, storage.Replicated(v.Primary, v.Secondary), k, p.id, p.files)
	}
	cat, _ := Catalog(ctx, s)
	expired := 0
	for _, e := range cat {
		if e.State == StateExpired {
			expired++
		}
	}
	if expired != 2 {
		t.Errorf("catalogue has %d expired points, want 2", expired)
	}
	// Nothing left to do: a second prune removes nothing.
	again, err := Prune(ctx, s, v.target(), PruneOptions{Select: policy, Now: clock})
	if err != nil || again.ObjectsRemoved != 0 {
		t.Errorf("second prune: %d objects removed, %v; want 0, nil", again.ObjectsRemoved, err)
	}
}

func TestPruneExpiresAndCollectsFile(t *testing.T) {
	v, _ := fileVault(t)
	testPruneExpiresAndCollects(t, v)
}

func TestPruneExpiresAndCollectsMinIO(t *testing.T) {
	testPruneExpiresAndCollects(t, minioVault(t))
}

func TestPruneRefusesShortListing(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 3, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	// The primary loses a point behind tapeless's back (or its listing
	// comes back short): prune must not take that as "expired".
	if err := v.Primary.Remove(ctx, PointName(pts[2].id)); err != nil {
		t.Fatal(err)
	}
	before := objectList(t, v.Primary)
	_, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: func() time.Time { return now }})
	if !errors.Is(err, ErrShortListing) {
		t.Fatalf("Prune with a short listing: %v, want ErrShortListing", err)
	}
	if after := objectList(t, v.Primary); !slices.Equal(before, after) {
		t.Error("prune deleted objects despite the short listing")
	}
}

func TestPruneNeverExpiresPendingReplication(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, f := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 3, now)
	f[1].SetDown(true)
	offloadAll(t, s, v, now, OffloadOptions{})
	f[1].SetDown(false)
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 0 || res.ObjectsRemoved != 0 {
		t.Errorf("prune expired %d points and removed %d objects whose replication is pending", len(res.Expired), res.ObjectsRemoved)
	}
}

func TestPruneResumesAfterJournal(t *testing.T) {
	ctx := context.Background()
	s, k := offloadStore(t)
	v, f := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 3, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	policy := expireAllBut(1)
	// The secondary fails in the middle of the deletions: the journal
	// keeps what is left to do.
	f[1].FailNth(storage.OpRemove, 3, storage.ErrUnavailable)
	if r, err := Prune(ctx, s, v.target(), PruneOptions{Select: policy, Now: func() time.Time { return now }}); err == nil {
		t.Fatalf("Prune with a failing secondary succeeded: %+v, %d removes", r, f[1].Calls(storage.OpRemove))
	}
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: policy, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("second Prune: %v", err)
	}
	_ = res
	for _, b := range v.Copies() {
		st, err := Verify(ctx, b, k, false, 0, func(p VerifyProblem) { t.Errorf("verify %s: %v", b.Location(), p) })
		if err != nil {
			t.Fatal(err)
		}
		if st.Points != 1 || st.Unreferenced != 0 {
			t.Errorf("%s: %d points, %d unreferenced packs; want 1, 0", b.Location(), st.Points, st.Unreferenced)
		}
	}
	restoreFrom(t, v.Secondary, k, pts[2].id, pts[2].files)
}

// TestPruneObjectLockWaits runs against the object-lock buckets of both
// MinIO servers: expired objects under retention are reported as waiting
// and MinIO refuses to delete or overwrite them.
func TestPruneObjectLockWaits(t *testing.T) {
	ctx := context.Background()
	var bs [2]storage.Backend
	for i, which := range []string{"primary", "secondary"} {
		u, o := storagetest.MinIOLock(t, which)
		o.ObjectLockDays = 1
		b, err := storage.Open(ctx, u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs[i] = b
	}
	v := testVault{Name: "locked", Primary: bs[0], Secondary: bs[1]}
	s, _ := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	before := objectList(t, v.Primary)
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1),
		Now: func() time.Time { return now }, ImmutableDays: 1})
	if err != nil {
		t.Fatalf("Prune on an object-lock vault: %v", err)
	}
	if len(res.Expired) != 0 || len(res.Waiting) == 0 {
		t.Fatalf("expired %d, waiting %d; want 0 expired and the old point waiting", len(res.Expired), len(res.Waiting))
	}
	if res.Waiting[0].Name != PointName(pts[0].id) || res.Waiting[0].Until.Before(now) {
		t.Errorf("waiting %+v, want point %s until about a day from now", res.Waiting[0], pts[0].id)
	}
	if after := objectList(t, v.Primary); !slices.Equal(before, after) {
		t.Error("objects under retention were deleted")
	}
	// MinIO itself refuses: neither delete nor overwrite.
	name := PointName(pts[0].id)
	if err := bs[0].Remove(ctx, name); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("Remove of a locked object: %v, want ErrLocked", err)
	}
}

// TestPruneOrphansNeverFromEmptyPointListing: packs with no point listed
// at all are left alone, however old; with points listed, old objects no
// point references are collected and young ones are not.
func TestPruneOrphansNeverFromEmptyPointListing(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	for _, b := range v.Copies() {
		for _, p := range pts {
			if err := b.Remove(ctx, PointName(p.id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The catalogue would catch this; a server without one must not
	// delete either.
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketCatalog) }); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return now.Add(30 * 24 * time.Hour) }
	before := objectList(t, v.Primary)
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: later, MaxClockSkew: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.ObjectsRemoved != 0 {
		t.Errorf("prune removed %d objects with no point listed", res.ObjectsRemoved)
	}
	if after := objectList(t, v.Primary); !slices.Equal(before, after) {
		t.Error("prune changed the vault with no point listed")
	}
}

// TestPruneCollectsOldOrphansOnly: an object no point references (left by
// an offload killed before its point) is collected once it is older than
// the grace period, never before.
func TestPruneCollectsOldOrphansOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 1, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	orphan := PackName(ID{0xab, 1})
	for _, b := range v.Copies() {
		if err := b.Save(ctx, orphan, strings.NewReader("orphan"), 6); err != nil {
			t.Fatal(err)
		}
	}
	var keepAll SelectFunc // nil expires nothing
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: keepAll, Now: func() time.Time { return now }})
	if err != nil || res.ObjectsRemoved != 0 {
		t.Fatalf("prune within the grace period removed %d objects (%v), want 0", res.ObjectsRemoved, err)
	}
	later := func() time.Time { return now.Add(DefaultOrphanGrace + time.Hour) }
	res, err = Prune(ctx, s, v.target(), PruneOptions{Select: keepAll, Now: later, MaxClockSkew: -1})
	if err != nil || res.ObjectsRemoved != 1 || res.Orphans != 1 {
		t.Fatalf("prune after the grace period: removed %d, orphans %d (%v); want 1, 1", res.ObjectsRemoved, res.Orphans, err)
	}
	for _, b := range v.Copies() {
		if _, err := b.Stat(ctx, orphan); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("orphan still at %s: %v", b.Location(), err)
		}
	}
}

// TestPruneWaitsForTheVaultLock: while another live process holds the
// vault lock "prune", prune refuses and deletes nothing (safety invariant
// 4); once the lock is released it runs.
func TestPruneWaitsForTheVaultLock(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 3, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	held, err := vault.AcquireLock(ctx, v.Primary, "prune", "another prune", PruneLockTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	before := objectList(t, v.Primary)
	clock := func() time.Time { return now }
	if _, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: clock}); !errors.Is(err, vault.ErrLockHeld) {
		t.Fatalf("Prune while another holds the vault lock: %v, want ErrLockHeld", err)
	}
	if after := objectList(t, v.Primary); !slices.Equal(before, after) {
		t.Error("prune deleted objects without the vault lock")
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: clock})
	if err != nil || len(res.Expired) != 2 {
		t.Fatalf("Prune after the lock was released: %v, expired %d; want 2", err, len(res.Expired))
	}
}

// thiefBackend is a real backend where another prune tries to take the
// vault lock "prune" as stale just before the n-th object removal.
type thiefBackend struct {
	storage.Backend
	n, removes int
	now        func() time.Time
	stole      error // what the thief's AcquireLock returned
	tried      bool
}

func (b *thiefBackend) Remove(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, vault.LockPrefix) {
		if b.removes++; b.removes == b.n {
			_, b.stole = vault.AcquireLock(ctx, b.Backend, "prune", "thief", PruneLockTTL, b.now())
			b.tried = true
		}
	}
	return b.Backend.Remove(ctx, name)
}

// steppingClock starts at start and moves step on at every look.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step)
		return t
	}
}

// TestPruneKeepsItsLockThroughALongRun: a prune whose run outlasts the
// lock's TTL renews the lock as it goes, so another prune never takes it
// for stale (safety invariant 4).
func TestPruneKeepsItsLockThroughALongRun(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 4, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	// Every look at the clock moves it 20 minutes on: the run lasts hours.
	slow := steppingClock(now, 20*time.Minute)
	tb := &thiefBackend{Backend: v.Primary, n: 6, now: slow}
	v.Primary = tb
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: slow, MaxClockSkew: -1})
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if !tb.tried || !errors.Is(tb.stole, vault.ErrLockHeld) {
		t.Fatalf("another prune %v took the lock %s into the run: %v, want ErrLockHeld", tb.tried, slow().Sub(now), tb.stole)
	}
	if len(res.Expired) != 3 {
		t.Errorf("expired %d points, want 3", len(res.Expired))
	}
}

// TestPruneStopsWhenItsLockIsLost: when another prune broke the lock (its
// clock says ours is stale), prune stops at its next renewal instead of
// deleting on; the journal lets a later prune finish.
func TestPruneStopsWhenItsLockIsLost(t *testing.T) {
	ctx := context.Background()
	s, k := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 4, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	slow := steppingClock(now, 20*time.Minute)
	tb := &thiefBackend{Backend: v.Primary, n: 2, now: func() time.Time { return slow().Add(3 * PruneLockTTL) }}
	v.Primary = tb
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: slow, MaxClockSkew: -1})
	if tb.stole != nil || !errors.Is(err, vault.ErrLockLost) {
		t.Fatalf("Prune after its lock was broken (thief: %v): %v, want ErrLockLost", tb.stole, err)
	}
	if res == nil || res.ObjectsRemoved > 2 {
		t.Errorf("prune went on deleting after its lock was lost: %+v", res)
	}
	// The thief is gone without releasing; a later prune past the TTL
	// completes the work.
	v.Primary = tb.Backend
	later := func() time.Time { return slow().Add(10 * PruneLockTTL) }
	if _, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: later, MaxClockSkew: -1}); err != nil {
		t.Fatalf("later Prune: %v", err)
	}
	for _, b := range v.Copies() {
		st, err := Verify(ctx, b, k, false, 0, func(p VerifyProblem) { t.Errorf("verify %s: %v", b.Location(), p) })
		if err != nil || st.Points != 1 || st.Unreferenced != 0 {
			t.Errorf("%s: %d points, %d unreferenced packs (%v); want 1, 0", b.Location(), st.Points, st.Unreferenced, err)
		}
	}
	restoreFrom(t, v.Secondary, k, pts[3].id, pts[3].files)
}
