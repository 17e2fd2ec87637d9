package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// TestOffloadDefersLocalCleanupWhileRead: while a reader holds the store's
// read lock, Offload archives every point but deletes nothing locally,
// and says so; once the lock is released the next Offload deletes the
// points and collects their packs.
func TestOffloadDefersLocalCleanupWhileRead(t *testing.T) {
	s, _ := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	v, _ := fileVault(t)
	ctx := context.Background()
	packsBefore := len(listNames(t, s.Objects(), PacksPrefix))

	lock, err := LockForRead(ctx, s.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := offloadAll(t, s, v, now, OffloadOptions{MaxClockSkew: -1})
	if len(res.Archived) != 0 || len(res.LocalDeleteDeferred) != 2 || res.LocalCleanupDeferred == "" || res.PacksCollected != 0 {
		t.Errorf("offload while read: archived %d, deferred %d (%q), collected %d; want 0, 2, a reason, 0",
			len(res.Archived), len(res.LocalDeleteDeferred), res.LocalCleanupDeferred, res.PacksCollected)
	}
	local, err := s.ListPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 2 || len(listNames(t, s.Objects(), PacksPrefix)) != packsBefore {
		t.Errorf("offload while read deleted local objects: %d points, packs %d of %d", len(local), len(listNames(t, s.Objects(), PacksPrefix)), packsBefore)
	}
	cat, err := Catalog(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat {
		if e.State != StateArchived || !e.Local {
			t.Errorf("catalogue: %s is %s, local %v; want archived and still local", e.Point, e.State, e.Local)
		}
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}

	res = offloadAll(t, s, v, now, OffloadOptions{MaxClockSkew: -1})
	want := []ID{pts[0].id, pts[1].id}
	if !slices.Equal(res.Archived, want) || res.LocalCleanupDeferred != "" || res.PacksCollected != packsBefore {
		t.Errorf("offload after the read: archived %v, deferred %q, collected %d; want %v, none, %d",
			res.Archived, res.LocalCleanupDeferred, res.PacksCollected, want, packsBefore)
	}
	if n := len(listNames(t, s.Objects(), PacksPrefix)); n != 0 {
		t.Errorf("%d local packs left", n)
	}
}

// TestLockForReadWaitsForCleanup: a reader arriving while offload deletes
// local objects waits for it (and is told it waits), and holds the
// cleanup off once it has the lock.
func TestLockForReadWaitsForCleanup(t *testing.T) {
	s, _ := offloadStore(t)
	release, ok, err := s.tryLockCleanup()
	if err != nil || !ok {
		t.Fatalf("tryLockCleanup = %v, %v", ok, err)
	}
	waited := make(chan struct{})
	got := make(chan error, 1)
	var lock *ReadLock
	go func() {
		var err error
		lock, err = LockForRead(context.Background(), s.Dir(), func() { close(waited) })
		got <- err
	}()
	select {
	case <-waited:
	case err := <-got:
		t.Fatalf("LockForRead returned (%v) while cleanup held the lock", err)
	case <-time.After(10 * time.Second):
		t.Fatal("LockForRead neither waited nor returned")
	}
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.tryLockCleanup(); ok || err != nil {
		t.Errorf("tryLockCleanup with a reader = %v, %v; want false", ok, err)
	}
	lock.Release()
	if release, ok, err := s.tryLockCleanup(); !ok || err != nil {
		t.Errorf("tryLockCleanup after the reader = %v, %v; want true", ok, err)
	} else {
		release()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	release, _, _ = s.tryLockCleanup()
	defer release()
	if _, err := LockForRead(ctx, s.Dir(), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockForRead past its deadline: %v", err)
	}
}

// TestLockForReadReadOnlyStore: a store the reader may not create the lock
// file in is read without the lock, with ErrNoReadLock saying why.
func TestLockForReadReadOnlyStore(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	_, err := LockForRead(context.Background(), dir, nil)
	if !errors.Is(err, ErrNoReadLock) {
		t.Errorf("LockForRead in a read-only store: %v, want ErrNoReadLock", err)
	}
	if _, err := os.Stat(filepath.Join(dir, readersFile)); err == nil {
		t.Error("lock file created")
	}
}

func listNames(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error { out = append(out, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
