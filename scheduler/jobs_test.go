package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// testSite is a registered server: a store sealed to a fresh key, a GRS
// vault on two file:// accounts holding that key's envelope, and a source
// tree with one backup made a day before now.
type testSite struct {
	site   *Site
	store  *archive.Store
	keys   *archive.Keys
	vault  *vault.Vault
	source string
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestSite(t *testing.T) *testSite {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	primary := vault.Account{URL: "file://" + filepath.Join(root, "primary")}
	secondary := vault.Account{URL: "file://" + filepath.Join(root, "secondary")}
	for _, a := range []vault.Account{primary, secondary} {
		if err := os.MkdirAll(strings.TrimPrefix(a.URL, "file://"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	v, err := vault.CreateVault(ctx, primary, vault.CreateVaultOptions{Name: "jobs-test", Secondary: &secondary}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	keys, err := archive.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	env, err := archive.WrapKeys(keys, []byte("a passphrase of 16+ characters"))
	if err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(root, "store")
	if err := archive.InitStore(ctx, storeDir, keys.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	if _, err := v.SaveKeyEnvelope(ctx, keys.Fingerprint, env); err != nil {
		t.Fatal(err)
	}
	s, err := archive.OpenStore(ctx, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	src := filepath.Join(root, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("tapeless ", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Backup(ctx, s, archive.BackupOptions{Sources: []string{src}, Now: testNow.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	site := &Site{
		Store: storeDir,
		Vault: &VaultSpec{Name: "jobs-test", Primary: primary, SecondaryURL: secondary.URL, KeyFingerprint: keys.Fingerprint},
		// Offload everything older than an hour; the vault keeps one
		// daily point.
		Policy: retention.Policy{Local: retention.LocalPolicy{KeepWithin: time.Hour}, Vault: retention.VaultPolicy{Daily: 1}},
		Now:    func() time.Time { return testNow },
		Loc:    time.UTC,
	}
	return &testSite{site: site, store: s, keys: keys, vault: v, source: src}
}

func vaultPoints(t *testing.T, b storage.Backend) []archive.PointHeader {
	t.Helper()
	pts, err := archive.ListPoints(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return pts
}

func TestOffloadJobMovesOldPointsToBothCopies(t *testing.T) {
	ctx := context.Background()
	ts := newTestSite(t)

	dry, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Result != nil || len(dry.Plan.ByAction(retention.Offload)) != 1 {
		t.Fatalf("dry run: result %v, %d points to offload; want no result and 1", dry.Result, len(dry.Plan.ByAction(retention.Offload)))
	}
	if n := len(vaultPoints(t, ts.vault.Primary())); n != 0 {
		t.Fatalf("a dry run put %d points in the vault", n)
	}

	var opened []vault.VaultConfig
	ts.site.VaultOpened = func(vc vault.VaultConfig) { opened = append(opened, vc) }
	rep, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Result.Archived) != 1 || len(rep.Problems()) != 0 {
		t.Fatalf("archived %v, problems %v; want one point and none", rep.Result.Archived, rep.Problems())
	}
	if len(opened) != 1 || opened[0].Replication != vault.GRS {
		t.Errorf("VaultOpened saw %v, want the GRS vault's settings once", opened)
	}
	for name, b := range map[string]storage.Backend{"primary": ts.vault.Primary(), "secondary": ts.vault.Secondary()} {
		if pts := vaultPoints(t, b); len(pts) != 1 || pts[0].ID != rep.Result.Archived[0] {
			t.Errorf("%s copy holds %v, want the archived point", name, pts)
		}
	}
	local, err := archive.ListPoints(ctx, ts.store.Objects())
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 0 {
		t.Errorf("the store still holds %d points after a confirmed GRS offload", len(local))
	}

	// The vault keeps one daily point: the one there stays.
	pr, err := Prune(ctx, ts.site, ts.store, PruneRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Result.Expired) != 0 || len(pr.Problems()) != 0 {
		t.Errorf("prune expired %v (problems %v), want none", pr.Result.Expired, pr.Problems())
	}
}

func TestOffloadJobRefusesAVaultWithoutTheKeyEnvelope(t *testing.T) {
	ctx := context.Background()
	ts := newTestSite(t)
	if _, err := ts.vault.RemoveOldKeyEnvelopes(ctx, ts.keys.Fingerprint, 1<<62); err != nil {
		t.Fatal(err)
	}
	_, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy})
	if err == nil || !strings.Contains(err.Error(), "holds no key envelope") || !strings.Contains(err.Error(), "nothing was offloaded") {
		t.Fatalf("offload to a vault without the key envelope: %v", err)
	}
	if n := len(vaultPoints(t, ts.vault.Primary())); n != 0 {
		t.Errorf("%d points reached the vault", n)
	}
}

func TestJobsNeedARegisteredVault(t *testing.T) {
	ctx := context.Background()
	ts := newTestSite(t)
	ts.site.Vault = nil
	if _, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy}); err != ErrNotRegistered {
		t.Errorf("offload: %v, want ErrNotRegistered", err)
	}
	if _, err := Prune(ctx, ts.site, ts.store, PruneRequest{}); err != ErrNotRegistered {
		t.Errorf("prune: %v, want ErrNotRegistered", err)
	}
	// A dry run needs no vault.
	if _, err := Offload(ctx, ts.site, ts.store, OffloadRequest{Policy: ts.site.Policy, DryRun: true}); err != nil {
		t.Errorf("dry run without a vault: %v", err)
	}
}

func TestVaultCopiesSelection(t *testing.T) {
	ctx := context.Background()
	ts := newTestSite(t)
	v, err := ts.site.OpenVault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for which, want := range map[string]int{"primary": 1, "secondary": 1, "both": 2} {
		cs, err := v.Copies(which)
		if err != nil || len(cs) != want {
			t.Errorf("Copies(%q) = %d copies, %v; want %d", which, len(cs), err, want)
		}
	}
	if _, err := v.Copies("tertiary"); err == nil {
		t.Error("Copies(tertiary) succeeded")
	}
}
