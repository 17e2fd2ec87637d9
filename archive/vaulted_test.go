package archive

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// xtierRig is a store whose first point of a tree is offloaded (nothing
// kept locally, its packs retired to the vault) and whose second point of
// the same tree is local and names those vault-held packs.
type xtierRig struct {
	s             *Store
	k             *Keys
	v             testVault
	src           string
	first, second ID
	now           time.Time
}

func newXtierRig(t *testing.T) *xtierRig {
	t.Helper()
	ctx := context.Background()
	s, k := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, 3)
	first, err := Backup(ctx, s, BackupOptions{Sources: []string{src}, Name: "data", Now: now.Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	res := offloadAll(t, s, v, now, OffloadOptions{})
	if len(res.Archived) != 1 {
		t.Fatalf("offload archived %v, want the first point", res.Archived)
	}
	if packs, _ := s.Packs(ctx); len(packs) != 0 {
		t.Fatalf("the store still holds %d packs after offloading its only point", len(packs))
	}
	second, err := Backup(ctx, s, BackupOptions{Sources: []string{src}, Name: "data", Now: now.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if second.NewStoredBytes != 0 {
		t.Fatalf("the unchanged tree's backup stored %d bytes again, want 0 (dedup against the vault)", second.NewStoredBytes)
	}
	return &xtierRig{s: s, k: k, v: v, src: src, first: first.Point, second: second.Point, now: now}
}

// heldPacks returns the packs of point id that only the vault holds.
func (r *xtierRig) heldPacks(t *testing.T, id ID) []PackRef {
	t.Helper()
	h, err := LoadPointHeader(context.Background(), NewTieredBackend(r.s.Objects(), r.v.Primary), id)
	if err != nil {
		t.Fatal(err)
	}
	_, held, err := splitPacks(r.s, h)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

func TestBackupDedupsAgainstTheVaultAndRestoresFromBothTiers(t *testing.T) {
	ctx := context.Background()
	r := newXtierRig(t)
	held := r.heldPacks(t, r.second)
	if len(held) == 0 {
		t.Fatal("the second point names no vault-held pack")
	}
	// Read through the store alone, the point cannot be restored; with
	// the vault behind it, it restores byte-identical.
	target := t.TempDir()
	if _, err := Restore(ctx, NewReader(r.s.Objects(), r.k), r.second, RestoreOptions{Target: target}); err == nil {
		t.Error("restore from the store alone succeeded though the point's data is in the vault only")
	}
	tiered := NewTieredBackend(r.s.Objects(), r.v.Primary)
	target = filepath.Join(t.TempDir(), "t")
	if _, err := Restore(ctx, NewReader(tiered, r.k), r.second, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore through the store and the vault: %v", err)
	}
	if got, want := fileContents(t, target), fileContents(t, r.src); !sameContents(got, want) {
		t.Error("the point restored through both tiers differs from its source")
	}
	if tiered.FromVault() == 0 {
		t.Error("the tiered restore read nothing from the vault")
	}
	// The store's keyless check counts the vault-held packs, not as lost.
	st, err := Verify(ctx, r.s.Objects(), nil, false, 0, func(p VerifyProblem) { t.Errorf("verify: %v", p) })
	if err != nil {
		t.Fatal(err)
	}
	if st.VaultHeld != len(held) {
		t.Errorf("verify counts %d vault-held packs, want %d", st.VaultHeld, len(held))
	}
}

func TestPruneKeepsVaultPacksALocalPointNames(t *testing.T) {
	ctx := context.Background()
	r := newXtierRig(t)
	later := func() time.Time { return r.now.Add(DefaultOrphanGrace + time.Hour) }
	// Expire every vault point: the first one's packs are still named
	// by the local second point.
	res, err := Prune(ctx, r.s, r.v.target(), PruneOptions{Select: expireAllBut(0), Now: later, MaxClockSkew: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 1 {
		t.Fatalf("prune expired %v, want the first point", res.Expired)
	}
	for _, p := range r.heldPacks(t, r.second) {
		for _, b := range r.v.Copies() {
			if _, err := b.Stat(ctx, PackName(p.Pack)); err != nil {
				t.Errorf("pack %s, named by a local point, is gone from %s: %v", p.Pack, b.Location(), err)
			}
		}
	}
	// And the local point still offloads: the vault holds what it names.
	off := offloadAll(t, r.s, r.v, r.now, OffloadOptions{})
	if len(off.Archived) != 1 || off.Archived[0] != r.second || len(off.Incomplete) != 0 {
		t.Fatalf("offload after prune: archived %v, incomplete %v; want the second point", off.Archived, off.Incomplete)
	}
	target := filepath.Join(t.TempDir(), "t")
	if _, err := Restore(ctx, NewReader(r.v.Primary, r.k), r.second, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore from the vault: %v", err)
	}
	if !sameContents(fileContents(t, target), fileContents(t, r.src)) {
		t.Error("the restored point differs from its source")
	}
}

func TestPruneForgetsThePacksItRemoves(t *testing.T) {
	ctx := context.Background()
	r := newXtierRig(t)
	// Offload the second point too, then expire both: the packs leave the
	// vault, and the store must stop deduplicating against them.
	offloadAll(t, r.s, r.v, r.now, OffloadOptions{})
	held := r.heldPacks(t, r.first)
	if len(held) == 0 {
		t.Fatal("no pack of the first point is vault-held")
	}
	later := func() time.Time { return r.now.Add(DefaultOrphanGrace + time.Hour) }
	res, err := Prune(ctx, r.s, r.v.target(), PruneOptions{Select: expireAllBut(0), Now: later, MaxClockSkew: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 2 || res.ObjectsRemoved == 0 {
		t.Fatalf("prune expired %v and removed %d objects, want both points and their packs", res.Expired, res.ObjectsRemoved)
	}
	for _, p := range held {
		if _, err := r.v.Primary.Stat(ctx, PackName(p.Pack)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("pack %s is still in the vault: %v", p.Pack, err)
		}
		if only, _ := r.s.VaultOnly(p.Pack); only {
			t.Errorf("the store still counts pack %s, removed from the vault, as vault-held", p.Pack)
		}
	}
	sum, err := Backup(ctx, r.s, BackupOptions{Sources: []string{r.src}, Name: "data", Now: r.now})
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewStoredBytes == 0 {
		t.Fatal("a backup after prune removed the packs stored nothing: it references packs that no longer exist")
	}
	target := filepath.Join(t.TempDir(), "t")
	if _, err := Restore(ctx, NewReader(r.s.Objects(), r.k), sum.Point, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore of the new point from the store: %v", err)
	}
}

// TestPruneLeavesOtherServersOrphans: an object of another key that no
// point names may be what another server's store deduplicates against;
// only its own prune removes it.
func TestPruneLeavesOtherServersOrphans(t *testing.T) {
	ctx := context.Background()
	r := newXtierRig(t)
	other, _ := offloadStore(t)
	v2 := r.v // the same vault, reached by another server
	src := filepath.Join(t.TempDir(), "other")
	writeTree(t, src, 9)
	if _, err := Backup(ctx, other, BackupOptions{Sources: []string{src}, Name: "other", Now: r.now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	offloadAll(t, other, v2, r.now, OffloadOptions{})
	theirs, err := other.ListPoints(ctx)
	if err != nil || len(theirs) != 0 {
		t.Fatalf("the other store still lists %v (%v)", theirs, err)
	}
	vpts, err := ListPoints(ctx, r.v.Primary)
	if err != nil {
		t.Fatal(err)
	}
	var otherPacks []PackRef
	for _, p := range vpts {
		if p.KeyFingerprint == other.PublicKeys().Fingerprint {
			otherPacks = append(otherPacks, p.Packs...)
			// Their point goes (their prune expired it): their packs
			// become orphans that their store still knows.
			if err := r.v.target().Backend.Remove(ctx, PointName(p.ID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(otherPacks) == 0 {
		t.Fatal("the other server's point is not in the vault")
	}
	// As after an offload killed before its point object: the other
	// store knows of no archived point.
	if err := other.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketCatalog) }); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return r.now.Add(DefaultOrphanGrace + time.Hour) }
	if _, err := Prune(ctx, r.s, r.v.target(), PruneOptions{Now: later, MaxClockSkew: -1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range otherPacks {
		if _, err := r.v.Primary.Stat(ctx, PackName(p.Pack)); err != nil {
			t.Errorf("this server's prune removed pack %s of another server's key: %v", p.Pack, err)
		}
	}
	// Their own prune removes them.
	if _, err := Prune(ctx, other, v2.target(), PruneOptions{Now: later, MaxClockSkew: -1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range otherPacks {
		if _, err := r.v.Primary.Stat(ctx, PackName(p.Pack)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the other server's prune left its own orphan pack %s: %v", p.Pack, err)
		}
	}
}

func sameContents(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestAdoptVault: a new store of the same key learns the vault's packs
// of that key from their index objects and deduplicates against them; it
// skips other keys' packs and index objects whose pack the vault lacks,
// and stores that data again rather than reference it.
func TestAdoptVault(t *testing.T) {
	ctx := context.Background()
	r := newXtierRig(t)
	offloadAll(t, r.s, r.v, r.now, OffloadOptions{})
	// Another server's pack in the same vault.
	other, _ := offloadStore(t)
	osrc := filepath.Join(t.TempDir(), "other")
	writeTree(t, osrc, 5)
	if _, err := Backup(ctx, other, BackupOptions{Sources: []string{osrc}, Name: "other", Now: r.now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	offloadAll(t, other, r.v, r.now, OffloadOptions{})
	// An index object of ours whose pack the vault lost.
	src2 := filepath.Join(t.TempDir(), "second")
	writeTree(t, src2, 77)
	if _, err := Backup(ctx, r.s, BackupOptions{Sources: []string{src2}, Name: "second", Now: r.now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res := offloadAll(t, r.s, r.v, r.now, OffloadOptions{})
	h, err := LoadPointHeader(ctx, r.v.Primary, res.Archived[0])
	if err != nil {
		t.Fatal(err)
	}
	lost := dataPack(h)
	for _, b := range r.v.Copies() {
		if err := b.Remove(ctx, PackName(lost.Pack)); err != nil {
			t.Fatal(err)
		}
	}

	env, err := WrapKeys(r.k, []byte("a passphrase of 16+ characters"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	if err := InitStore(ctx, dir, r.k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	st, err := AdoptVault(ctx, fresh, r.v.Primary, r.k)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packs == 0 || st.Foreign == 0 || st.Skipped != 1 {
		t.Fatalf("adopt: %+v, want our intact packs, the other server's as foreign and the pack-less index skipped", st)
	}
	sum, err := Backup(ctx, fresh, BackupOptions{Sources: []string{r.src}, Name: "data", Now: r.now})
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewStoredBytes != 0 {
		t.Errorf("a backup of adopted data stored %d bytes, want 0", sum.NewStoredBytes)
	}
	sum2, err := Backup(ctx, fresh, BackupOptions{Sources: []string{src2}, Name: "second", Now: r.now})
	if err != nil {
		t.Fatal(err)
	}
	if sum2.NewStoredBytes == 0 {
		t.Errorf("a backup of data whose pack the vault lost stored nothing: it references a missing pack (packs %+v, summary %+v)", h.Packs, sum2)
	}
	target := filepath.Join(t.TempDir(), "t")
	if _, err := Restore(ctx, NewReader(NewTieredBackend(fresh.Objects(), r.v.Primary), r.k), sum.Point, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore through the adopted store and the vault: %v", err)
	}
	if !sameContents(fileContents(t, target), fileContents(t, r.src)) {
		t.Error("the restored point differs from its source")
	}
}
