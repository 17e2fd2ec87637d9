package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
	"github.com/tapeless/tapeless/storage/vault"
)

const offloadTestPassphrase = "offload test passphrase, long enough"

// offloadStore makes an open store with cheap KDF parameters.
func offloadStore(t *testing.T) (*Store, *Keys) {
	t.Helper()
	t.Cleanup(SetKDFForTesting(KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	ctx := context.Background()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	env, err := WrapKeys(k, []byte(offloadTestPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	if err := InitStore(ctx, dir, k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPackSize(256 << 10) // several packs per point
	t.Cleanup(func() { s.Close() })
	return s, k
}

// writeTree fills dir with files derived from seed; a later seed changes
// some files and adds others, so consecutive points share most packs.
func writeTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range 12 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%02d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if i%4 == int(seed%4) || seed == 0 {
			b := make([]byte, 20<<10+r.IntN(200<<10))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A large file only this point has: once the point expires, the
	// packs holding it are garbage.
	if seed > 0 {
		os.Remove(filepath.Join(dir, fmt.Sprintf("only-%d", seed-1)))
	}
	only := make([]byte, 3<<20)
	for j := range only {
		only[j] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("only-%d", seed)), only, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("new-%d.txt", seed)), []byte(strings.Repeat("tapeless ", int(seed)+3)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileContents maps every regular file under dir to its content.
func fileContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type backedUp struct {
	id    ID
	files map[string]string
}

// backupSeries makes n points of one source, a day apart, ending yesterday.
func backupSeries(t *testing.T, s *Store, n int, now time.Time) []backedUp {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	var out []backedUp
	for i := range n {
		writeTree(t, src, uint64(i))
		sum, err := Backup(context.Background(), s, BackupOptions{Sources: []string{src}, Name: "data",
			Now: now.Add(-time.Duration(n-i) * 24 * time.Hour)})
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		out = append(out, backedUp{sum.Point, fileContents(t, src)})
	}
	return out
}

// testVault is a vault under test: its copies, which tests reach and
// fault on their own, and the target Offload and Prune are given.
type testVault struct {
	Name               string
	Primary, Secondary storage.Backend // Secondary is nil for LRS
}

// target is the vault as the CLI assembles it: the replicated backend over
// both copies for GRS, the one copy for LRS.
func (v testVault) target(opts ...storage.ReplicatedOption) VaultTarget {
	if v.Secondary == nil {
		return VaultTarget{Name: v.Name, Backend: v.Primary}
	}
	return VaultTarget{Name: v.Name, Backend: storage.Replicated(v.Primary, v.Secondary, opts...)}
}

// Copies returns the copies, primary first.
func (v testVault) Copies() []storage.Backend {
	if v.Secondary == nil {
		return []storage.Backend{v.Primary}
	}
	return []storage.Backend{v.Primary, v.Secondary}
}

// fileVault returns a GRS target over two file:// folders.
func fileVault(t *testing.T) (testVault, [2]*storagetest.Fault) {
	t.Helper()
	var f [2]*storagetest.Fault
	for i := range f {
		b, err := storage.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir()), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f[i] = storagetest.NewFault(b)
	}
	return testVault{Name: "test", Primary: f[0], Secondary: f[1]}, f
}

// minioVault returns a GRS target over both test MinIO servers.
func minioVault(t *testing.T) testVault {
	t.Helper()
	var bs [2]storage.Backend
	for i, which := range []string{"primary", "secondary"} {
		u, o := storagetest.MinIO(t, which)
		b, err := storage.Open(context.Background(), u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs[i] = b
	}
	return testVault{Name: "test", Primary: bs[0], Secondary: bs[1]}
}

// offloadAllBut selects every local point but the keep newest of each
// source: what a short-term policy of "keep last N" offloads.
func offloadAllBut(keep int) SelectFunc {
	return func(pts []PointStatus) ([]ID, error) {
		return allBut(pts, keep, func(p PointStatus) bool { return p.Local }), nil
	}
}

// expireAllBut selects every archived point but the keep newest of each
// source; it makes no exception for pending replication (Prune must).
func expireAllBut(keep int) SelectFunc {
	return func(pts []PointStatus) ([]ID, error) {
		return allBut(pts, keep, func(p PointStatus) bool { return p.Archived }), nil
	}
}

// allBut returns the IDs of the points in pts (oldest first) that match,
// except the keep newest matching points of each source.
func allBut(pts []PointStatus, keep int, match func(PointStatus) bool) []ID {
	kept := map[string]int{}
	var out []ID
	for i := len(pts) - 1; i >= 0; i-- {
		p := pts[i]
		if !match(p) {
			continue
		}
		if kept[p.Source] < keep {
			kept[p.Source]++
			continue
		}
		out = append(out, p.ID)
	}
	return out
}

func offloadAll(t *testing.T, s *Store, v testVault, now time.Time, o OffloadOptions) *OffloadResult {
	t.Helper()
	return offloadTo(t, s, v.target(), now, o)
}

// offloadTo is offloadAll into a target of the test's making.
func offloadTo(t *testing.T, s *Store, v VaultTarget, now time.Time, o OffloadOptions) *OffloadResult {
	t.Helper()
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(0))
	if err != nil {
		t.Fatal(err)
	}
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	res, err := Offload(context.Background(), s, v, plan, o)
	if err != nil {
		t.Fatalf("Offload: %v", err)
	}
	return res
}

// restoreFrom restores point id from b (through a staging folder) and
// compares it with want.
func restoreFrom(t *testing.T, b storage.Backend, k *Keys, id ID, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	st, err := NewStagedVault(ctx, b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewReader(st, k)
	defer r.Close()
	target := t.TempDir()
	if _, err := Restore(ctx, r, id, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("Restore %s: %v", id, err)
	}
	got := fileContents(t, target)
	if len(got) != len(want) {
		t.Errorf("restored %d files, want %d", len(got), len(want))
	}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("restored %s differs (%d bytes, want %d)", p, len(got[p]), len(c))
		}
	}
	if st.StagedBytes() == 0 {
		t.Error("nothing was staged in the staging folder")
	}
}

// checkComplete fails unless every object point id needs is on b.
func checkComplete(t *testing.T, b storage.Backend, id ID) {
	t.Helper()
	ctx := context.Background()
	h, err := ListPoints(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range h {
		if p.ID != id {
			continue
		}
		for _, r := range p.Packs {
			for _, n := range []string{PackName(r.Pack), IndexName(r.Index)} {
				if _, err := b.Stat(ctx, n); err != nil {
					t.Errorf("point %s at %s: %v", id, b.Location(), err)
				}
			}
		}
		return
	}
	t.Errorf("point %s is not at %s", id, b.Location())
}

func localPointIDs(t *testing.T, s *Store) []ID {
	t.Helper()
	ps, err := s.ListPoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []ID
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func testOffloadRoundTrip(t *testing.T, v testVault) {
	s, k := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 3, now)
	res := offloadAll(t, s, v, now, OffloadOptions{})
	if len(res.Archived) != 3 || len(res.Pending) != 0 {
		t.Fatalf("Offload archived %d, pending %d; want 3, 0", len(res.Archived), len(res.Pending))
	}
	if ids := localPointIDs(t, s); len(ids) != 0 {
		t.Errorf("store still holds %d points after offloading all", len(ids))
	}
	if packs, _ := s.Packs(context.Background()); len(packs) != 0 {
		t.Errorf("store still holds %d packs no local point needs", len(packs))
	}
	for _, b := range v.Copies() {
		for _, p := range pts {
			checkComplete(t, b, p.id)
		}
		st, err := Verify(context.Background(), b, k, true, 0, func(p VerifyProblem) { t.Errorf("verify %s: %v", b.Location(), p) })
		if err != nil || st.Points != 3 {
			t.Errorf("Verify %s: %d points, %v", b.Location(), st.Points, err)
		}
	}
	cat, err := Catalog(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat {
		if e.State != StateArchived || e.Local {
			t.Errorf("catalogue: point %s is %s (local %v), want archived and not local", e.Point, e.State, e.Local)
		}
	}
	// A second run finds nothing to do and sends nothing.
	again := offloadAll(t, s, v, now, OffloadOptions{})
	if again.ObjectsUploaded != 0 || len(again.Archived) != 0 {
		t.Errorf("second offload uploaded %d objects, archived %d; want 0, 0", again.ObjectsUploaded, len(again.Archived))
	}
	for _, p := range pts {
		restoreFrom(t, storage.Replicated(v.Primary, v.Secondary), k, p.id, p.files)
	}
}

func TestOffloadRoundTripFile(t *testing.T) {
	v, _ := fileVault(t)
	testOffloadRoundTrip(t, v)
}

func TestOffloadRoundTripMinIO(t *testing.T) {
	testOffloadRoundTrip(t, minioVault(t))
}

func TestOffloadKeepsYoungAndSharedPacks(t *testing.T) {
	s, k := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 3, now)
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(plan.Offloads()); got != 2 {
		t.Fatalf("plan offloads %d points, want 2", got)
	}
	if _, err := Offload(context.Background(), s, v.target(), plan, OffloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if ids := localPointIDs(t, s); len(ids) != 1 || ids[0] != pts[2].id {
		t.Fatalf("local points %v, want only the newest %s", ids, pts[2].id)
	}
	// The newest point still restores from local disk: the packs it
	// shares with offloaded points were kept.
	target := t.TempDir()
	r := s.Reader(k)
	defer r.Close()
	if _, err := Restore(context.Background(), r, pts[2].id, RestoreOptions{Target: target}); err != nil {
		t.Fatalf("local restore after offload: %v", err)
	}
	if got := fileContents(t, target); len(got) != len(pts[2].files) {
		t.Errorf("local restore has %d files, want %d", len(got), len(pts[2].files))
	}
}

func testSecondaryDown(t *testing.T, v testVault, down, up func()) {
	s, k := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	down()
	res := offloadAll(t, s, v, now, OffloadOptions{})
	if len(res.Pending) != 2 || len(res.Archived) != 0 {
		t.Fatalf("with the secondary down: archived %d, pending %d; want 0, 2", len(res.Archived), len(res.Pending))
	}
	if res.PendingReplication.Objects == 0 || res.PendingReplication.Bytes == 0 || res.PendingReplication.Oldest.IsZero() {
		t.Errorf("pending summary %+v, want objects, bytes and oldest", res.PendingReplication)
	}
	if ids := localPointIDs(t, s); len(ids) != 2 {
		t.Fatalf("with replication pending, %d local points remain, want 2 (local copies kept)", len(ids))
	}
	for _, p := range pts {
		checkComplete(t, v.Primary, p.id)
	}
	cat, _ := Catalog(context.Background(), s)
	for _, e := range cat {
		if e.State != StatePending {
			t.Errorf("catalogue: %s is %s, want %s", e.Point, e.State, StatePending)
		}
	}
	up()
	res = offloadAll(t, s, v, now, OffloadOptions{})
	if len(res.Archived) != 2 || len(res.CaughtUp) != 2 || res.PendingReplication.Objects != 0 {
		t.Fatalf("after the secondary returned: archived %d, caught up %d, pending %+v; want 2, 2, none",
			len(res.Archived), len(res.CaughtUp), res.PendingReplication)
	}
	if ids := localPointIDs(t, s); len(ids) != 0 {
		t.Errorf("after catching up, %d local points remain", len(ids))
	}
	for _, p := range pts {
		checkComplete(t, v.Secondary, p.id)
		restoreFrom(t, v.Secondary, k, p.id, p.files)
	}
}

func TestOffloadSecondaryDownFile(t *testing.T) {
	v, f := fileVault(t)
	testSecondaryDown(t, v, func() { f[1].SetDown(true) }, func() { f[1].SetDown(false) })
}

func TestOffloadSecondaryDownMinIO(t *testing.T) {
	v := minioVault(t)
	f := storagetest.NewFault(v.Secondary)
	v.Secondary = f
	testSecondaryDown(t, v, func() { f.SetDown(true) }, func() { f.SetDown(false) })
}

func TestRestoreFallsBackToSecondary(t *testing.T) {
	s, k := offloadStore(t)
	v, f := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 1, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	for _, tc := range []struct {
		name  string
		fault func()
	}{
		{"primary down", func() { f[0].SetDown(true) }},
		{"primary corrupt", func() { f[0].CorruptLoads(40) }},
		// Last: it damages the primary for good. A copy of another size
		// must not decide how many bytes are staged from the secondary.
		{"primary truncated", func() { truncateVaultObject(t, v.Primary, pts[0].id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f[0].Reset()
			tc.fault()
			var mu sync.Mutex
			var reports []storage.Fallback
			rb := storage.Replicated(v.Primary, v.Secondary,
				storage.WithFallbackReport(func(fb storage.Fallback) { mu.Lock(); reports = append(reports, fb); mu.Unlock() }),
				storage.WithContentHash(func(name string) ([32]byte, bool) {
					id, err := idFromName(name)
					return id, err == nil
				}))
			restoreFrom(t, rb, k, pts[0].id, pts[0].files)
			if len(reports) == 0 {
				t.Error("no fallback to the secondary was reported")
			}
			for _, r := range reports {
				if !r.Served {
					t.Errorf("fallback not served: %s", r)
				}
			}
		})
	}
}

// truncateVaultObject replaces the first pack of point id on b with its
// first half (tests only: objects are never rewritten).
func truncateVaultObject(t *testing.T, b storage.Backend, id ID) {
	t.Helper()
	ctx := context.Background()
	hs, err := ListPoints(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.ID != id {
			continue
		}
		name := PackName(h.Packs[0].Pack)
		var data []byte
		if err := b.Load(ctx, name, 0, -1, func(r io.Reader) error { data, err = io.ReadAll(r); return err }); err != nil {
			t.Fatal(err)
		}
		half := data[:len(data)/2]
		if err := b.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := b.Save(ctx, name, bytes.NewReader(half), int64(len(half))); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("point %s is not at %s", id, b.Location())
}

// clockBackend is a real backend whose server clock runs skew ahead.
type clockBackend struct {
	storage.Backend
	skew time.Duration
}

func (c clockBackend) ServerTime(context.Context) (time.Time, error) {
	return time.Now().Add(c.skew), nil
}

func TestOffloadRefusesClockSkew(t *testing.T) {
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 1, now)
	v.Secondary = clockBackend{v.Secondary, 7 * time.Minute}
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Offload(context.Background(), s, v.target(), plan, OffloadOptions{})
	var ce *storage.ClockSkewError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "7m") {
		t.Fatalf("Offload with a 7-minute skew: %v, want a ClockSkewError naming 7m", err)
	}
	if n := len(localPointIDs(t, s)); n != 1 {
		t.Errorf("after a refused offload %d local points, want 1", n)
	}
	var objs []string
	v.Primary.List(context.Background(), "", func(i storage.Info) error { objs = append(objs, i.Name); return nil })
	if len(objs) != 0 {
		t.Errorf("a refused offload wrote %v", objs)
	}
	_, err = Prune(context.Background(), s, v.target(), PruneOptions{Select: expireAllBut(1)})
	if !errors.Is(err, storage.ErrClockSkew) {
		t.Errorf("Prune with a 7-minute skew: %v, want ErrClockSkew", err)
	}
}

func TestPlanOffloadDryRunChangesNothing(t *testing.T) {
	s, _ := offloadStore(t)
	now := time.Now()
	backupSeries(t, s, 2, now)
	before := objectList(t, s.Objects())
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Offloads()) != 1 || plan.Upload == 0 || plan.Objects == 0 {
		t.Errorf("plan: %d offloads, %d bytes in %d objects", len(plan.Offloads()), plan.Upload, plan.Objects)
	}
	if len(plan.Points) != 2 {
		t.Errorf("plan shows %d points, want 2", len(plan.Points))
	}
	for _, p := range plan.Points {
		if p.Stored == 0 || !p.Local || p.Archived {
			t.Errorf("plan shows %+v, want a local, unarchived point with its stored size", p)
		}
	}
	if after := objectList(t, s.Objects()); !slices.Equal(before, after) {
		t.Error("planning changed the store")
	}
	if cat, _ := Catalog(context.Background(), s); len(cat) != 0 {
		t.Errorf("planning wrote %d catalogue entries", len(cat))
	}
}

func objectList(t *testing.T, b storage.Backend) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), "", func(i storage.Info) error {
		if strings.HasPrefix(i.Name, vault.LockPrefix) {
			return nil // the vault lock's records come and go
		}
		out = append(out, fmt.Sprintf("%s %d", i.Name, i.Size))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOffloadAbortsIncompleteUploadsMinIO: a multipart upload a killed run
// of this store left behind (under one of its own object names) is aborted
// by the next offload at once; a young upload of another name may be
// another server's live offload and stays until it is old.
func TestOffloadAbortsIncompleteUploadsMinIO(t *testing.T) {
	ctx := context.Background()
	v := minioVault(t)
	// As the CLI does: the vault is a folder of the bucket's prefix.
	v.Primary, v.Secondary = storage.Prefixed(v.Primary, "vaults/test"), storage.Prefixed(v.Secondary, "vaults/test")
	s3, ok := storage.Innermost(v.Primary).(*storage.S3)
	if !ok {
		t.Fatalf("primary is %T, want *storage.S3", storage.Innermost(v.Primary))
	}
	u, err := storage.ParseURL(s3.Location())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 1, now)
	hs, err := s.ListPoints(ctx)
	if err != nil || len(hs) != 1 {
		t.Fatalf("ListPoints: %d points, %v", len(hs), err)
	}
	ownKey := u.Prefix + "/vaults/test/" + PackName(hs[0].Packs[0].Pack)
	foreignKey := u.Prefix + "/vaults/test/packs/00/" + strings.Repeat("0", 64)
	core := minio.Core{Client: s3.Client()}
	for _, key := range []string{ownKey, foreignKey} {
		if _, err := core.NewMultipartUpload(ctx, s3.Bucket(), key, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	incomplete := func() map[string]bool {
		m := map[string]bool{}
		for up := range s3.Client().ListIncompleteUploads(ctx, s3.Bucket(), "", true) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			m[up.Key] = true
		}
		return m
	}
	res := offloadAll(t, s, v, now, OffloadOptions{})
	if res.UploadsAborted != 1 || len(res.Archived) != 1 {
		t.Errorf("offload aborted %d incomplete uploads and archived %d points, want 1 (its own leftover) and 1", res.UploadsAborted, len(res.Archived))
	}
	left := incomplete()
	if left[ownKey] {
		t.Errorf("this store's own leftover upload of %s is still there", ownKey)
	}
	if !left[foreignKey] {
		t.Errorf("a young upload of another name (%s) was aborted: it may be another server's live offload", foreignKey)
	}
	// Once it is old, it is abandoned whoever started it.
	res = offloadAll(t, s, v, now, OffloadOptions{AbortUploadsOlderThan: time.Nanosecond, Now: time.Now})
	if res.UploadsAborted < 1 || incomplete()[foreignKey] {
		t.Errorf("offload aborted %d uploads; the old one of %s is still there: %v", res.UploadsAborted, foreignKey, incomplete()[foreignKey])
	}
	checkComplete(t, v.Primary, pts[0].id)
}

// TestOffloadLRS: with one copy, a point is archived and deleted locally
// once the primary confirms it; --read-back downloads every object again.
func TestOffloadLRS(t *testing.T) {
	s, k := offloadStore(t)
	v, _ := fileVault(t)
	v.Secondary = nil
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	res := offloadAll(t, s, v, now, OffloadOptions{ReadBack: true})
	if len(res.Archived) != 2 || len(res.Pending) != 0 || res.PendingReplication.Objects != 0 {
		t.Fatalf("LRS offload: archived %d, pending %d; want 2, 0", len(res.Archived), len(res.Pending))
	}
	for _, p := range pts {
		checkComplete(t, v.Primary, p.id)
		restoreFrom(t, v.Primary, k, p.id, p.files)
	}
}

// TestOffloadRefusesDamagedLocalObject: a local pack whose bytes no longer
// match its name is never uploaded, and its point stays local.
func TestOffloadRefusesDamagedLocalObject(t *testing.T) {
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 1, now)
	h, err := s.ListPoints(context.Background())
	if err != nil || len(h) != 1 {
		t.Fatal(err)
	}
	pack := PackName(h[0].Packs[0].Pack)
	rewriteObject(t, s, pack, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Offload(context.Background(), s, v.target(), plan, OffloadOptions{})
	if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), pack) {
		t.Fatalf("Offload of a damaged pack: %v, want ErrAuthentication naming %s", err, pack)
	}
	if ids := localPointIDs(t, s); len(ids) != 1 || ids[0] != pts[0].id {
		t.Errorf("local points %v after the refused offload, want %s kept", ids, pts[0].id)
	}
	for _, b := range v.Copies() {
		if _, err := b.Stat(context.Background(), pack); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the damaged pack reached %s: %v", b.Location(), err)
		}
		if _, err := b.Stat(context.Background(), PointName(pts[0].id)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the point reached %s although a pack failed: %v", b.Location(), err)
		}
	}
}

// virtualClock is a throttle clock whose time moves only when the
// throttle sleeps, so a test sees how long a transfer would take.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) SleepUntil(_ context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// TestOffloadThrottleCoversBothCopies: the bandwidth limit holds for the
// offload as a whole, both GRS copies together, not per copy.
func TestOffloadThrottleCoversBothCopies(t *testing.T) {
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 1, now)
	sched, err := storage.ParseThrottle("off=1MiB/s")
	if err != nil {
		t.Fatal(err)
	}
	clock := &virtualClock{now: now}
	// The throttle paces the vault's copies together, as the CLI sets it.
	res := offloadTo(t, s, v.target(storage.WithThrottle(sched, clock)), now, OffloadOptions{})
	if res.BytesUploaded == 0 {
		t.Fatal("nothing uploaded")
	}
	took := clock.Now().Sub(now)
	t.Logf("uploaded %d bytes to both copies in %s of throttle time", res.BytesUploaded, took)
	// BytesUploaded counts both copies; one 1 MiB/s limit for both
	// means at least that many bytes' worth of seconds, less a burst.
	want := time.Duration(float64(res.BytesUploaded-(1<<20)/10) / (1 << 20) * float64(time.Second))
	if took < want {
		t.Errorf("throttled offload of %d bytes (both copies) took %s of throttle time, want at least %s", res.BytesUploaded, took, want)
	}
	if took > 2*want+time.Second {
		t.Errorf("throttled offload took %s, far more than the %s the limit allows", took, want)
	}
}

// TestOffloadCollectsNothingFromAShortLocalListing: when the store's
// listing lacks a point the plan saw and no offload deleted, no local pack
// is collected.
func TestOffloadCollectsNothingFromAShortLocalListing(t *testing.T) {
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 2, now)
	plan, err := PlanOffload(context.Background(), s, offloadAllBut(1))
	if err != nil {
		t.Fatal(err)
	}
	// The newest point vanishes from the listing behind offload's back.
	if err := os.Remove(objectPath(s, PointName(pts[1].id))); err != nil {
		t.Fatal(err)
	}
	packsBefore, _ := s.Packs(context.Background())
	var notes []string
	res, err := Offload(context.Background(), s, v.target(), plan, OffloadOptions{Log: func(m string) { notes = append(notes, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Archived) != 1 || res.PacksCollected != 0 {
		t.Errorf("archived %d, collected %d packs; want 1 archived and nothing collected", len(res.Archived), res.PacksCollected)
	}
	if packsAfter, _ := s.Packs(context.Background()); len(packsAfter) != len(packsBefore) {
		t.Errorf("%d local packs before, %d after: packs were collected from a short listing", len(packsBefore), len(packsAfter))
	}
	if !strings.Contains(strings.Join(notes, "\n"), "not collecting local packs") {
		t.Errorf("offload did not say why it collected nothing: %q", notes)
	}
}

// TestOffloadNeverOverwritesADifferentObject: when a copy already holds a
// different object under the name of one the point needs, offload stops
// with ErrCorrupt (a *MismatchError) naming it, leaves that object as it is, keeps the point
// local and never archives it (safety invariants 1 and 2). It is not taken
// for an outage of the secondary.
func TestOffloadNeverOverwritesADifferentObject(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 1, now)
	hs, err := s.ListPoints(ctx)
	if err != nil || len(hs) != 1 {
		t.Fatalf("ListPoints: %d, %v", len(hs), err)
	}
	name := IndexName(hs[0].Packs[0].Index)
	info, err := s.Objects().Stat(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{7}, int(info.Size))
	if err := v.Secondary.Save(ctx, name, bytes.NewReader(other), info.Size); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanOffload(ctx, s, offloadAllBut(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Offload(ctx, s, v.target(), plan, OffloadOptions{Now: func() time.Time { return now }})
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Offload over a different object: %v, want ErrCorrupt naming %s", err, name)
	}
	var got []byte
	if err := v.Secondary.Load(ctx, name, 0, -1, func(r io.Reader) error { got, err = io.ReadAll(r); return err }); err != nil || !bytes.Equal(got, other) {
		t.Errorf("the secondary's object was changed (%v)", err)
	}
	if ids := localPointIDs(t, s); len(ids) != 1 || ids[0] != pts[0].id {
		t.Errorf("local points %v, want %s kept", ids, pts[0].id)
	}
	for _, b := range v.Copies() {
		if _, err := b.Stat(ctx, PointName(pts[0].id)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the point reached %s: %v", b.Location(), err)
		}
	}
	if cat, _ := Catalog(ctx, s); len(cat) != 1 || cat[0].Archived() {
		t.Errorf("catalogue %+v, want the point not archived", cat)
	}
}

// TestStagedRestoreAsksADownSecondaryOnce: with the secondary copy down, a
// staged restore from the primary still compares the copies' sizes, but
// asks the failed copy only once, not once per object.
func TestStagedRestoreAsksADownSecondaryOnce(t *testing.T) {
	s, k := offloadStore(t)
	v, f := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 1, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	f[1].Reset()
	f[1].SetDown(true)
	restoreFrom(t, storage.Replicated(v.Primary, v.Secondary), k, pts[0].id, pts[0].files)
	if n := f[1].Calls(storage.OpStat); n != 1 {
		t.Errorf("the down secondary was asked %d times for a Stat, want once", n)
	}
}
