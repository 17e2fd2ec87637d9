package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// treeHash hashes every file under dir: path, mode, mtime and bytes.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00" + fi.Mode().String() + fi.ModTime().UTC().String() + "\x00"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func mustPlan(t *testing.T, p Params) *Plan {
	t.Helper()
	pl, err := NewPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func TestSameSeedSameTree(t *testing.T) {
	p := Params{Seed: 7, Scale: 0.02, Day: 1}
	a, b := mustPlan(t, p), mustPlan(t, p)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of the same parameters differ")
	}
	d1, d2 := t.TempDir(), t.TempDir()
	ctx := context.Background()
	if err := Write(ctx, d1, a, 0); err != nil {
		t.Fatal(err)
	}
	if err := Write(ctx, d2, b, 1); err != nil {
		t.Fatal(err)
	}
	h1, h2 := treeHash(t, d1), treeHash(t, d2)
	if h1 != h2 {
		t.Fatalf("the same plan written twice (4 and 1 writers) gives trees %s and %s", h1, h2)
	}
	// Every file on disk has its spec's size and mode.
	for _, f := range a.Files {
		fi, err := os.Stat(filepath.Join(d1, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != f.Size() || fi.Mode().Perm() != f.Mode || !fi.ModTime().Equal(f.MTime) {
			t.Errorf("%s: size %d mode %v mtime %v, want %d %v %v", f.Path, fi.Size(), fi.Mode(), fi.ModTime(), f.Size(), f.Mode, f.MTime)
		}
	}

	// Day 2 applied in place equals day 2 written from scratch.
	day2 := mustPlan(t, Params{Seed: 7, Scale: 0.02, Day: 2})
	if err := Apply(ctx, d1, a, day2, 0); err != nil {
		t.Fatal(err)
	}
	d3 := t.TempDir()
	if err := Write(ctx, d3, day2, 0); err != nil {
		t.Fatal(err)
	}
	if h1, h3 := treeHash(t, d1), treeHash(t, d3); h1 != h3 {
		t.Fatalf("day 2 applied over day 1 gives %s, written afresh %s", h1, h3)
	} else if h3 == h2 {
		t.Fatal("day 2 is the same tree as day 1")
	}
	// And back again.
	if err := Apply(ctx, d1, day2, a, 0); err != nil {
		t.Fatal(err)
	}
	if h := treeHash(t, d1); h != h2 {
		t.Fatalf("day 1 applied over day 2 gives %s, want %s", h, h2)
	}
}

func TestOtherSeedOtherTree(t *testing.T) {
	a := mustPlan(t, Params{Seed: 1, Scale: 0.02, Day: 1})
	b := mustPlan(t, Params{Seed: 2, Scale: 0.02, Day: 1})
	changed, added, removed := Diff(a, b)
	if len(changed) != 0 || len(added) != len(b.Files) || len(removed) != len(a.Files) {
		t.Errorf("seeds 1 and 2 share paths: %d changed, %d added of %d, %d removed of %d",
			len(changed), len(added), len(b.Files), len(removed), len(a.Files))
	}
	// Same names would still need other bytes: compare the first bytes of
	// the first file of each.
	var x, y hashWriter
	if err := WriteContent(&x, &a.Files[0]); err != nil {
		t.Fatal(err)
	}
	if err := WriteContent(&y, &b.Files[0]); err != nil {
		t.Fatal(err)
	}
	if x.sum() == y.sum() {
		t.Error("the first files of seeds 1 and 2 have the same bytes")
	}
}

type hashWriter struct{ b []byte }

func (h *hashWriter) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
func (h *hashWriter) sum() [32]byte               { return sha256.Sum256(h.b) }

func TestShapeAtScale1(t *testing.T) {
	p := mustPlan(t, Params{Seed: 1, Scale: 1, Day: 1})
	if n := len(p.Files); n != 20000 {
		t.Errorf("%d files, want 20000", n)
	}
	if n := len(p.Dirs); n != 600 {
		t.Errorf("%d directories, want 600", n)
	}
	depth := 0
	for _, d := range p.Dirs {
		if d == "" {
			continue
		}
		depth = max(depth, countSlash(d)+1)
	}
	if depth < 4 || depth > 5 {
		t.Errorf("deepest directory at depth %d, want 4 or 5", depth)
	}
	if gib := float64(p.Bytes()) / (1 << 30); gib < 1.0 || gib > 1.2 {
		t.Errorf("%.3f GiB, want about 1.1", gib)
	}
	count := map[string]int{}
	var bigLogs, bigRand int
	for _, f := range p.Files {
		count[f.Class]++
		size := f.Size()
		switch f.Class {
		case "text":
			if size > 128<<10 {
				bigLogs++
				if size < 8<<20 || size > 48<<20+64<<10 || f.Segs[0].Src.Kind != Log {
					t.Errorf("large text file %s: %d bytes of %v, want an 8–48 MiB log", f.Path, size, f.Segs[0].Src.Kind)
				}
			} else if size < 1<<10 {
				t.Errorf("text file %s has %d bytes, want at least 1 KiB", f.Path, size)
			}
		case "random":
			if size > 256<<10 {
				bigRand++
				if size < 2<<20 || size > 64<<20 {
					t.Errorf("large random file %s: %d bytes, want 2–64 MiB", f.Path, size)
				}
			} else if size < 1<<10 {
				t.Errorf("random file %s has %d bytes, want at least 1 KiB", f.Path, size)
			}
		case "dup-overwrite":
			if size != 64<<20 || len(f.Segs) != 3 || f.Segs[1].Len != 4<<10 {
				t.Errorf("overwritten copy: %d bytes in %d segments, want 64 MiB with 4 KiB replaced", size, len(f.Segs))
			}
		case "dup-insert":
			if len(f.Segs) != 3 || f.Segs[0].Len != 1<<20 || f.Segs[1].Len != 100 || size < 48<<20 {
				t.Errorf("copy with an insert: %d bytes in %v, want 100 bytes at 1 MiB of the 48 MiB log", size, f.Segs)
			}
		case "dup-append":
			if len(f.Segs) != 2 || f.Segs[1].Len != 1<<20 {
				t.Errorf("log with an append: %v, want 1 MiB appended", f.Segs)
			}
		}
	}
	if count["text"] != 8000 || count["random"] != 8000 || count["dup"]+3 != 4000 {
		t.Errorf("classes %v, want 8000 text, 8000 random, 4000 duplicates", count)
	}
	if bigLogs < 3 || bigLogs > 8 {
		t.Errorf("%d large logs, want a few", bigLogs)
	}
	if bigRand != 20 {
		t.Errorf("%d large random files, want 20", bigRand)
	}
}

func countSlash(s string) (n int) {
	for _, c := range s {
		if c == '/' {
			n++
		}
	}
	return n
}

func TestDay2(t *testing.T) {
	d1 := mustPlan(t, Params{Seed: 3, Scale: 1, Day: 1})
	d2 := mustPlan(t, Params{Seed: 3, Scale: 1, Day: 2})
	changed, added, removed := Diff(d1, d2)
	if len(added) != 500 || len(removed) != 50 {
		t.Errorf("day 2 adds %d and deletes %d files, want 500 and 50", len(added), len(removed))
	}
	touched := float64(len(changed)+len(added)+len(removed)) / float64(len(d1.Files))
	if touched < 0.04 || touched > 0.06 {
		t.Errorf("day 2 touches %.1f %% of the files, want about 5 %%", touched*100)
	}
	kinds := map[string]int{}
	for _, p := range changed {
		f := d2.File(p)
		kinds[f.Class]++
		if !f.MTime.After(d1.File(p).MTime) {
			t.Errorf("%s changed on day 2 but its mtime did not advance", p)
		}
	}
	for _, k := range []string{"appended", "rewritten", "inserted"} {
		if kinds[k] < 100 {
			t.Errorf("%d files %s on day 2, want about 150 (all: %v)", kinds[k], k, kinds)
		}
	}
}

func TestScale5(t *testing.T) {
	if testing.Short() {
		t.Skip("plans 100,000 files")
	}
	p := mustPlan(t, Params{Seed: 1, Scale: 5, Day: 1})
	if len(p.Files) != 100000 {
		t.Errorf("%d files at scale 5, want 100000", len(p.Files))
	}
	if gib := float64(p.Bytes()) / (1 << 30); gib < 4.5 || gib > 6 {
		t.Errorf("%.2f GiB at scale 5, want about 5.5", gib)
	}
}

func TestBadParams(t *testing.T) {
	for _, p := range []Params{{Scale: 0, Day: 1}, {Scale: -1, Day: 1}, {Scale: 1, Day: 0}} {
		if _, err := NewPlan(p); err == nil {
			t.Errorf("NewPlan(%+v) accepted", p)
		}
	}
}
