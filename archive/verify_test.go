package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fixture is a store holding one point over several packs.
type fixture struct {
	s     *Store
	k     *Keys
	point ID
	blobs []ID // data blobs of the point, in order
	data  [][]byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, k := newTestStore(t)
	s.SetPackSize(1 << 20)
	f := &fixture{s: s, k: k}
	for i := range 4 {
		f.data = append(f.data, randomBytes(uint64(200+i), 400<<10))
	}
	f.data = append(f.data, textLike(300, 600<<10))
	f.point, f.blobs = savePoint(t, s, "src", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), f.data...)
	return f
}

// loc returns where data blob i lives.
func (f *fixture) loc(t *testing.T, i int) location {
	t.Helper()
	l, ok, err := f.s.lookup(makeBlobKey(BlobData, f.blobs[i]))
	if err != nil || !ok {
		t.Fatalf("lookup blob %d: %v %v", i, ok, err)
	}
	return l
}

// problems runs Verify and returns the problems, one string each.
func (f *fixture) problems(t *testing.T, k *Keys, readData bool) []string {
	t.Helper()
	var out []string
	_, err := Verify(context.Background(), f.s.Objects(), k, readData, 100, func(p VerifyProblem) {
		out = append(out, p.Error())
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return out
}

func mentions(ps []string, name string) bool {
	for _, p := range ps {
		if strings.HasPrefix(p, name+":") {
			return true
		}
	}
	return false
}

// loadBlobErr loads data blob i through a fresh backend Reader and through
// the store's Reader and returns both errors.
func (f *fixture) loadBlobErrs(t *testing.T, i int) []error {
	t.Helper()
	ctx := context.Background()
	var errs []error
	for _, r := range []*Reader{NewReader(f.s.Objects(), f.k), f.s.Reader(f.k)} {
		got, err := r.LoadBlob(ctx, BlobData, f.blobs[i])
		if err == nil && string(got) != string(f.data[i]) {
			t.Fatalf("LoadBlob returned wrong bytes without error")
		}
		errs = append(errs, err)
		r.Close()
	}
	return errs
}

func TestVerifyClean(t *testing.T) {
	f := newFixture(t)
	for _, k := range []*Keys{nil, f.k} {
		for _, rd := range []bool{false, true} {
			if ps := f.problems(t, k, rd); len(ps) != 0 {
				t.Errorf("key %v readData %v: problems %v", k != nil, rd, ps)
			}
		}
	}
	st, err := Verify(context.Background(), f.s.Objects(), f.k, true, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Points != 1 || st.Packs < 2 || st.PacksRead != st.Packs || st.Blobs != len(f.blobs)+1 || st.Indexes != st.Packs {
		t.Errorf("stats %+v", st)
	}
	st, _ = Verify(context.Background(), f.s.Objects(), nil, true, 1, nil)
	if st.PacksRead != 1 {
		t.Errorf("a 1%% subset read %d packs, want 1", st.PacksRead)
	}
}

func TestTamperPackBlob(t *testing.T) {
	f := newFixture(t)
	l := f.loc(t, 1)
	name := PackName(l.Pack)
	rewriteObject(t, f.s, name, func(b []byte) []byte { b[l.Offset+l.Length/2] ^= 1; return b })
	for _, err := range f.loadBlobErrs(t, 1) {
		if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), name) {
			t.Errorf("LoadBlob of a flipped blob = %v, want an authentication error naming %s", err, name)
		}
	}
	for _, k := range []*Keys{nil, f.k} {
		if ps := f.problems(t, k, true); !mentions(ps, name) {
			t.Errorf("Verify(readData, key %v) problems %v, want %s", k != nil, ps, name)
		}
	}
	// Without reading data the sizes still match: nothing to see.
	if ps := f.problems(t, nil, false); len(ps) != 0 {
		t.Errorf("Verify without readData found %v", ps)
	}
}

func TestTamperPackHeader(t *testing.T) {
	f := newFixture(t)
	l := f.loc(t, 0)
	name := PackName(l.Pack)
	rewriteObject(t, f.s, name, func(b []byte) []byte { b[prefixLen+40] ^= 0x80; return b })
	for _, err := range f.loadBlobErrs(t, 0) {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("LoadBlob under a flipped pack header = %v, want an error naming %s", err, name)
		}
	}
}

func TestTruncatePack(t *testing.T) {
	f := newFixture(t)
	l := f.loc(t, 2)
	name := PackName(l.Pack)
	rewriteObject(t, f.s, name, func(b []byte) []byte { return b[:l.Offset+l.Length/2] })
	for _, err := range f.loadBlobErrs(t, 2) {
		if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("LoadBlob from a truncated pack = %v, want a truncation error naming %s", err, name)
		}
	}
	for _, k := range []*Keys{nil, f.k} {
		for _, rd := range []bool{false, true} {
			if ps := f.problems(t, k, rd); !mentions(ps, name) {
				t.Errorf("Verify(key %v, readData %v) problems %v, want %s (size)", k != nil, rd, ps, name)
			}
		}
	}
}

func TestTamperIndex(t *testing.T) {
	f := newFixture(t)
	l := f.loc(t, 0)
	ps, _ := f.s.ListPoints(context.Background())
	var idx string
	for _, r := range ps[0].Packs {
		if r.Pack == l.Pack {
			idx = IndexName(r.Index)
		}
	}
	rewriteObject(t, f.s, idx, func(b []byte) []byte { b[len(b)-20] ^= 1; return b })
	r := NewReader(f.s.Objects(), f.k)
	defer r.Close()
	_, err := r.LoadBlob(context.Background(), BlobData, f.blobs[0])
	if !errors.Is(err, ErrBlobNotFound) || !strings.Contains(err.Error(), idx) {
		t.Errorf("LoadBlob via a flipped index object = %v, want not found naming %s", err, idx)
	}
	for _, k := range []*Keys{nil, f.k} {
		if ps := f.problems(t, k, false); !mentions(ps, idx) {
			t.Errorf("Verify(key %v) problems %v, want %s", k != nil, ps, idx)
		}
	}
}

func TestTamperPoint(t *testing.T) {
	f := newFixture(t)
	name := PointName(f.point)
	for _, off := range []int{prefixLen + 10, -5} { // clear header, sealed body
		t.Run(name, func(t *testing.T) {
			rewriteObject(t, f.s, name, func(b []byte) []byte {
				if off < 0 {
					off += len(b)
				}
				b[off] ^= 1
				return b
			})
			defer rewriteObject(t, f.s, name, func(b []byte) []byte { b[off] ^= 1; return b })
			r := NewReader(f.s.Objects(), f.k)
			defer r.Close()
			if _, err := r.LoadPoint(context.Background(), f.point); !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), name) {
				t.Errorf("LoadPoint of a flipped point = %v, want an error naming %s", err, name)
			}
			if _, err := f.s.ListPoints(context.Background()); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("ListPoints with a flipped point = %v, want an error naming %s", err, name)
			}
			if ps := f.problems(t, nil, false); !mentions(ps, name) {
				t.Errorf("Verify problems %v, want %s", ps, name)
			}
		})
	}
}

func TestSwappedBlobsFail(t *testing.T) {
	f := newFixture(t)
	a, b := f.loc(t, 0), f.loc(t, 1) // two random blobs of equal size
	if a.Pack != b.Pack || a.Length != b.Length {
		t.Fatalf("fixture: blobs 0 and 1 are not same-size neighbours: %+v %+v", a, b)
	}
	name := PackName(a.Pack)
	rewriteObject(t, f.s, name, func(p []byte) []byte {
		x := append([]byte(nil), p[a.Offset:a.Offset+a.Length]...)
		copy(p[a.Offset:], p[b.Offset:b.Offset+b.Length])
		copy(p[b.Offset:], x)
		return p
	})
	for _, i := range []int{0, 1} {
		for _, err := range f.loadBlobErrs(t, i) {
			if !errors.Is(err, ErrAuthentication) {
				t.Errorf("LoadBlob of swapped blob %d = %v, want an authentication error", i, err)
			}
		}
	}
	if ps := f.problems(t, f.k, true); !mentions(ps, name) {
		t.Errorf("Verify problems %v, want %s", ps, name)
	}
}

func TestBlobTypeIsBound(t *testing.T) {
	k := mustKeys(t)
	p, err := newPackBuilder(k.Public, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a chunk that pretends to be a manifest")
	id := chunkID(&k.ChunkKey, data)
	if err := p.add(BlobData, id, len(data), compressBlob(nil, data)); err != nil {
		t.Fatal(err)
	}
	pack, err := p.finish()
	if err != nil {
		t.Fatal(err)
	}
	e := p.entries[0]
	sealed := pack[e.Offset : e.Offset+e.Length]
	if _, err := openBlob(&p.dataKey, &k.ChunkKey, CurrentFormat, e, sealed); err != nil {
		t.Fatalf("as data: %v", err)
	}
	e.Type = BlobTree
	if _, err := openBlob(&p.dataKey, &k.ChunkKey, CurrentFormat, e, sealed); !errors.Is(err, ErrAuthentication) {
		t.Errorf("data blob opened as tree blob: %v, want an authentication error", err)
	}
	e.Type = BlobData
	e.ID[0] ^= 1
	if _, err := openBlob(&p.dataKey, &k.ChunkKey, CurrentFormat, e, sealed); !errors.Is(err, ErrAuthentication) {
		t.Errorf("blob opened under another ID: %v, want an authentication error", err)
	}
}

func TestCheckPackCatchesFaults(t *testing.T) {
	k := mustKeys(t)
	build := func() *packBuilder {
		p, err := newPackBuilder(k.Public, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			data := textLike(uint64(i), 50<<10)
			if err := p.add(BlobData, chunkID(&k.ChunkKey, data), len(data), compressBlob(nil, data)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	p := build()
	pack, _ := p.finish()
	if err := checkPack(pack, &p.dataKey, &k.ChunkKey, p.entries); err != nil {
		t.Fatalf("sound pack: %v", err)
	}
	// A memory fault after sealing.
	pack[p.entries[1].Offset+30] ^= 4
	if err := checkPack(pack, &p.dataKey, &k.ChunkKey, p.entries); err == nil {
		t.Error("checkPack missed a flipped bit")
	}
	// A compressor that produced the wrong output: sealed fine, but it
	// does not decompress to content with the recorded ID.
	p = build()
	bad := compressBlob(nil, []byte("not what the ID says"))
	if err := p.add(BlobData, chunkID(&k.ChunkKey, []byte("something else")), len("not what the ID says"), bad); err != nil {
		t.Fatal(err)
	}
	pack, _ = p.finish()
	if err := checkPack(pack, &p.dataKey, &k.ChunkKey, p.entries); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Errorf("checkPack on a wrong compressor output = %v", err)
	}
}

func TestWrongKeyFails(t *testing.T) {
	f := newFixture(t)
	other := mustKeys(t)
	ctx := context.Background()
	r := NewReader(f.s.Objects(), other)
	defer r.Close()
	if _, err := r.LoadPoint(ctx, f.point); !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), f.k.Fingerprint) {
		t.Errorf("LoadPoint with other keys = %v, want an error naming the key %s", err, f.k.Fingerprint)
	}
	// Even knowing where a blob is, its pack's data key does not open.
	sr := f.s.Reader(other)
	defer sr.Close()
	if _, err := sr.LoadBlob(ctx, BlobData, f.blobs[0]); !errors.Is(err, ErrAuthentication) {
		t.Errorf("Store.Reader.LoadBlob with other keys = %v", err)
	}
	// In a vault shared by several servers, objects sealed to another
	// key set are not damage: keyless checks only, counted as foreign.
	st, err := Verify(ctx, f.s.Objects(), other, true, 100, func(p VerifyProblem) { t.Errorf("problem: %v", p) })
	if err != nil || st.Foreign != st.Points+st.Indexes+st.PacksRead || st.Foreign == 0 || st.Blobs != 0 {
		t.Errorf("Verify with other keys = %+v, %v; want everything foreign", st, err)
	}
	r2 := NewReader(f.s.Objects(), other)
	defer r2.Close()
	if _, err := r2.LoadBlob(ctx, BlobData, f.blobs[0]); !errors.Is(err, ErrBlobNotFound) {
		t.Errorf("LoadBlob with other keys = %v, want not found", err)
	}
}

func TestVerifyKeylessMissingPackAndSize(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ps, _ := f.s.ListPoints(ctx)
	gone, short := PackName(ps[0].Packs[0].Pack), PackName(ps[0].Packs[1].Pack)
	if err := f.s.Objects().Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	rewriteObject(t, f.s, short, func(b []byte) []byte { return b[:len(b)-1] })
	got := f.problems(t, nil, false)
	if !mentions(got, gone) || !mentions(got, short) {
		t.Fatalf("Verify problems %v, want %s (missing) and %s (size)", got, gone, short)
	}
	for _, p := range got {
		if strings.HasPrefix(p, gone+":") && !strings.Contains(p, "missing") {
			t.Errorf("problem %q does not say missing", p)
		}
		if strings.HasPrefix(p, short+":") && !strings.Contains(p, "size") {
			t.Errorf("problem %q does not say size", p)
		}
	}
}
