package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// truncateObject cuts the last 10 bytes off an object on b (tests only:
// objects are never rewritten) and returns its former bytes.
func truncateObject(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	ctx := context.Background()
	var data []byte
	if err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	short := data[:len(data)-10]
	if err := b.Save(ctx, name, bytes.NewReader(short), int64(len(short))); err != nil {
		t.Fatal(err)
	}
	return data
}

// replaceObject puts data back under name on b.
func replaceObject(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	ctx := context.Background()
	if err := b.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func namesUnder(t *testing.T, b storage.Backend, prefixes ...string) []string {
	t.Helper()
	var out []string
	for _, n := range objectList(t, b) {
		for _, p := range prefixes {
			if strings.HasPrefix(n, p) {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestListPointsSkipsDamagedPoint: one truncated point object is named in a
// *DamagedPointsError and the others are returned; a point that cannot be
// read because of an outage is not taken for damage.
func TestListPointsSkipsDamagedPoint(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []ID
	for i := range 3 {
		id, _ := savePoint(t, s, "src", base.Add(time.Duration(i)*time.Hour), []byte{byte(i), 1, 2, 3})
		ids = append(ids, id)
	}
	truncateObject(t, s.Objects(), PointName(ids[1]))

	pts, err := ListPoints(ctx, s.Objects())
	if len(pts) != 2 || pts[0].ID != ids[0] || pts[1].ID != ids[2] {
		t.Errorf("ListPoints returned %d points, want the 2 undamaged ones", len(pts))
	}
	d := DamagedPoints(err)
	if len(d) != 1 || d[0].Name != PointName(ids[1]) || d[0].Location != s.Objects().Location() || !OnlyDamage(err) {
		t.Fatalf("ListPoints error %v: damaged %+v, only damage %v; want points/%s alone", err, d, OnlyDamage(err), ids[1])
	}
	if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), PointName(ids[1])) {
		t.Errorf("error %q does not name the point or wrap ErrAuthentication", err)
	}

	// An outage while reading a point is an error, not damage.
	f := storagetest.NewFault(s.Objects())
	f.FailNth(storage.OpLoad, 1, storage.ErrUnavailable)
	_, err = ListPoints(ctx, f)
	if err == nil || OnlyDamage(err) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("ListPoints with a failing load: %v; want ErrUnavailable, not only damage", err)
	}
}

// TestOffloadSkipsDamagedLocalPoint: a damaged point in the store is left
// out of the plan and reported; the others are offloaded; the damaged one
// stays in the store and so do all its packs.
func TestOffloadSkipsDamagedLocalPoint(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 3, now)
	hs, err := s.ListPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := hs[1]
	truncateObject(t, s.Objects(), PointName(bad.ID))
	damagedBytes := mustLoad(t, s.Objects(), PointName(bad.ID))

	plan, err := PlanOffload(ctx, s, offloadAllBut(0))
	if err != nil {
		t.Fatalf("PlanOffload with a damaged point: %v", err)
	}
	if len(plan.Damaged) != 1 || plan.Damaged[0].Name != PointName(bad.ID) {
		t.Errorf("plan.Damaged = %+v, want points/%s", plan.Damaged, bad.ID)
	}
	if want := []ID{pts[0].id, pts[2].id}; !slices.Equal(plan.Offload, want) {
		t.Errorf("plan offloads %v, want %v", plan.Offload, want)
	}
	var notes []string
	res, err := Offload(ctx, s, v.target(), plan, OffloadOptions{Now: func() time.Time { return now }, Log: func(m string) { notes = append(notes, m) }})
	if err != nil {
		t.Fatalf("Offload: %v", err)
	}
	if len(res.Archived) != 2 {
		t.Errorf("archived %d points, want 2", len(res.Archived))
	}
	if got := mustLoad(t, s.Objects(), PointName(bad.ID)); !bytes.Equal(got, damagedBytes) {
		t.Error("offload changed or deleted the damaged point object")
	}
	for _, r := range bad.Packs {
		for _, n := range []string{PackName(r.Pack), IndexName(r.Index)} {
			if _, err := s.Objects().Stat(ctx, n); err != nil {
				t.Errorf("the damaged point's %s is gone from the store: %v", n, err)
			}
		}
	}
	if !strings.Contains(strings.Join(notes, "\n"), "not collecting local packs") {
		t.Errorf("offload did not say why it collected no packs: %q", notes)
	}
}

func mustLoad(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	var data []byte
	if err := b.Load(context.Background(), name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return data
}

// testPruneDamagedVaultPoint: a point object damaged on every copy is
// skipped and reported; the points the policy expires are removed, but no
// pack or index object is, since the damaged point may need any of them.
// Once the point is whole again, the next prune collects what the expired
// points left behind.
func testPruneDamagedVaultPoint(t *testing.T, v testVault) {
	ctx := context.Background()
	s, k := offloadStore(t)
	now := time.Now()
	pts := backupSeries(t, s, 4, now)
	offloadAll(t, s, v, now, OffloadOptions{})
	bad := PointName(pts[2].id)
	var whole []byte
	for _, b := range v.Copies() {
		whole = truncateObject(t, b, bad)
	}
	clock := func() time.Time { return now }
	var before [][]string
	for _, b := range v.Copies() {
		before = append(before, namesUnder(t, b, PacksPrefix, IndexPrefix))
	}

	// The policy expires all but the newest: the damaged point is not
	// shown to it, so the two oldest.
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: clock})
	if err != nil {
		t.Fatalf("Prune with a damaged vault point: %v", err)
	}
	if len(res.Damaged) != 1 || res.Damaged[0].Name != bad {
		t.Errorf("prune reported damaged %+v, want %s", res.Damaged, bad)
	}
	got := slices.Clone(res.Expired)
	slices.SortFunc(got, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	want := []ID{pts[0].id, pts[1].id}
	slices.SortFunc(want, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Errorf("prune expired %v, want the two oldest %v", got, want)
	}
	for i, b := range v.Copies() {
		if after := namesUnder(t, b, PacksPrefix, IndexPrefix); !slices.Equal(before[i], after) {
			t.Errorf("%s: prune removed packs or index objects while a point was damaged (%d before, %d after)", b.Location(), len(before[i]), len(after))
		}
	}

	// The point is repaired (here: its bytes put back).
	for _, b := range v.Copies() {
		replaceObject(t, b, bad, whole)
	}
	res, err = Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(2), Now: clock})
	if err != nil {
		t.Fatalf("Prune after the repair: %v", err)
	}
	if len(res.Damaged) != 0 || res.ObjectsRemoved == 0 {
		t.Errorf("prune after the repair: damaged %v, %d objects removed; want none damaged and the expired points' objects removed", res.Damaged, res.ObjectsRemoved)
	}
	for _, b := range v.Copies() {
		st, err := Verify(ctx, b, k, false, 0, func(p VerifyProblem) { t.Errorf("verify %s: %v", b.Location(), p) })
		if err != nil {
			t.Fatal(err)
		}
		if st.Unreferenced != 0 {
			t.Errorf("%s: %d unreferenced packs after the second prune", b.Location(), st.Unreferenced)
		}
	}
	for _, p := range pts[2:] {
		restoreFrom(t, v.Secondary, k, p.id, p.files)
	}
}

func TestPruneDamagedVaultPointFile(t *testing.T) {
	v, _ := fileVault(t)
	testPruneDamagedVaultPoint(t, v)
}

func TestPruneDamagedVaultPointMinIO(t *testing.T) {
	testPruneDamagedVaultPoint(t, minioVault(t))
}

// TestPruneSkipsDamagedLocalPoint: a damaged point in the store does not
// stop prune; it is reported.
func TestPruneSkipsDamagedLocalPoint(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	pts := backupSeries(t, s, 4, now)
	plan, err := PlanOffload(ctx, s, offloadAllBut(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Offload(ctx, s, v.target(), plan, OffloadOptions{Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	truncateObject(t, s.Objects(), PointName(pts[3].id))
	res, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("Prune with a damaged local point: %v", err)
	}
	if len(res.Expired) != 2 || len(res.Damaged) != 1 || res.Damaged[0].Name != PointName(pts[3].id) {
		t.Errorf("prune expired %d points, damaged %+v; want 2 and the local point %s", len(res.Expired), res.Damaged, pts[3].id)
	}
}

// emptyListing is a real backend whose List shows nothing.
type emptyListing struct{ storage.Backend }

func (emptyListing) List(context.Context, string, func(storage.Info) error) error { return nil }

// TestListPointsKnownReadsUnlistedByName: points the caller knows of that
// the listing lacks are read by name and the shortfall is reported; one
// not there by name either is named as missing.
func TestListPointsKnownReadsUnlistedByName(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []ID
	for i := range 3 {
		id, _ := savePoint(t, s, "src", base.Add(time.Duration(i)*time.Hour), []byte{byte(i), 4, 5, 6})
		ids = append(ids, id)
	}
	b := emptyListing{s.Objects()}
	pts, err := ListPointsKnown(ctx, b, ids[:2])
	var short *ShortListingError
	if len(pts) != 2 || pts[0].ID != ids[0] || pts[1].ID != ids[1] || !errors.As(err, &short) || !errors.Is(err, ErrShortListing) {
		t.Fatalf("ListPointsKnown over an empty listing: %d points, %v; want the 2 known points and a ShortListingError", len(pts), err)
	}
	if len(short.Unlisted) != 2 || len(short.Missing) != 0 || short.Known != 2 {
		t.Errorf("ShortListingError %+v; want 2 of 2 unlisted, none missing", short)
	}

	gone := ID{1, 2, 3}
	truncateObject(t, s.Objects(), PointName(ids[2]))
	pts, err = ListPointsKnown(ctx, b, []ID{ids[0], ids[2], gone})
	if !errors.As(err, &short) || len(short.Missing) != 1 || short.Missing[0] != gone || len(pts) != 1 {
		t.Errorf("ListPointsKnown with a point gone: %d points, %v; want 1 point and %s missing", len(pts), err, gone)
	}
	if d := DamagedPoints(err); len(d) != 1 || d[0].Name != PointName(ids[2]) {
		t.Errorf("ListPointsKnown with a damaged unlisted point: damaged %+v, want points/%s", d, ids[2])
	}

	// A complete listing is no shortfall.
	if pts, err := ListPointsKnown(ctx, s.Objects(), ids[:2]); err == nil || len(pts) != 2 || errors.Is(err, ErrShortListing) {
		t.Errorf("ListPointsKnown over the real listing: %d points, %v; want 2 and only the damage", len(pts), err)
	}
}
