package scheduler

import (
	"context"
	"slices"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// offloadedSite is a test site whose one point was offloaded to both copies
// and whose store was closed again, as between two daemon jobs. It returns
// the point's largest pack (one holding file data).
func offloadedSite(t *testing.T) (*testSite, archive.ID) {
	t.Helper()
	ctx := context.Background()
	ts := newTestSite(t)
	rep, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy})
	if err != nil || len(rep.Result.Archived) != 1 {
		t.Fatalf("offload: %v, %+v", err, rep)
	}
	h, err := archive.LoadPointHeader(ctx, ts.vault.Primary(), rep.Result.Archived[0])
	if err != nil {
		t.Fatal(err)
	}
	big := h.Packs[0]
	for _, r := range h.Packs {
		if r.Size > big.Size {
			big = r
		}
	}
	if err := ts.store.Close(); err != nil {
		t.Fatal(err)
	}
	return ts, big.Pack
}

func backupAgain(t *testing.T, ts *testSite) *archive.BackupSummary {
	t.Helper()
	ctx := context.Background()
	s, err := archive.OpenStore(ctx, ts.site.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := archive.Backup(ctx, s, archive.BackupOptions{Sources: []string{ts.source}, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestVerifyVaultForgetsAPackLostOnEveryCopy: a vault pack deleted behind
// tapeless's back from both copies is named by verify with the point it
// hurts, the store stops deduplicating against it, and the next backup
// stores the data again, so the new point is complete.
func TestVerifyVaultForgetsAPackLostOnEveryCopy(t *testing.T) {
	ctx := context.Background()
	ts, lost := offloadedSite(t)
	for _, b := range []storage.Backend{ts.vault.Primary(), ts.vault.Secondary()} {
		if err := b.Remove(ctx, archive.PackName(lost)); err != nil {
			t.Fatal(err)
		}
	}
	// Before the check the store trusts the pack: an unchanged backup
	// would store nothing and name the lost pack.
	rep, err := VerifyVault(ctx, ts.site, VaultVerifyRequest{Copy: "both"})
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, p := range rep.Check.Problems {
		if p.Object == archive.PackName(lost) && len(p.Points) == 1 {
			named++
		}
	}
	if named != 2 {
		t.Errorf("verify named the lost pack with its point on %d copies, want 2: %+v", named, rep.Check.Problems)
	}
	if rep.ForgetErr != nil || !slices.Equal(rep.Forgotten, []archive.ID{lost}) {
		t.Fatalf("verify forgot %v (%v), want the lost pack %s", rep.Forgotten, rep.ForgetErr, lost)
	}

	sum := backupAgain(t, ts)
	if sum.NewChunks == 0 {
		t.Fatalf("the backup after the loss stored no chunk: its point names the lost pack (%+v)", sum)
	}
	dst := t.TempDir()
	r := archive.NewReader(archive.NewTieredBackend(mustView(t, ts).Objects, ts.vault.Primary()), ts.keys)
	defer r.Close()
	if _, err := archive.Restore(ctx, r, sum.Point, archive.RestoreOptions{Target: dst}); err != nil {
		t.Fatalf("restore of the point made after the loss: %v", err)
	}
	// Again: nothing left to forget, the new data is local.
	rep, err = VerifyVault(ctx, ts.site, VaultVerifyRequest{Copy: "both"})
	if err != nil || len(rep.Forgotten) != 0 {
		t.Errorf("second verify forgot %v (%v), want nothing", rep.Forgotten, err)
	}
}

// TestVerifyVaultKeepsAPackOneCopyStillHolds: lost on the primary only, the
// pack is repairable from the secondary, so the store keeps trusting it;
// a check of one copy alone never forgets anything.
func TestVerifyVaultKeepsAPackOneCopyStillHolds(t *testing.T) {
	ctx := context.Background()
	ts, lost := offloadedSite(t)
	if err := ts.vault.Primary().Remove(ctx, archive.PackName(lost)); err != nil {
		t.Fatal(err)
	}
	for _, which := range []string{"both", "primary"} {
		rep, err := VerifyVault(ctx, ts.site, VaultVerifyRequest{Copy: which})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Check.Problems) == 0 {
			t.Errorf("verify --copy %s found nothing wrong", which)
		}
		if len(rep.Forgotten) != 0 || rep.ForgetErr != nil {
			t.Errorf("verify --copy %s forgot %v (%v), want nothing", which, rep.Forgotten, rep.ForgetErr)
		}
	}
	if sum := backupAgain(t, ts); sum.NewChunks != 0 {
		t.Errorf("backup stored %d chunks again though the secondary holds the pack", sum.NewChunks)
	}
}

func mustView(t *testing.T, ts *testSite) *archive.StoreView {
	t.Helper()
	v, err := archive.OpenStoreView(context.Background(), ts.site.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
