package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
)

// twoPackPoint backs up old/ (one pack), then old/ plus new/ (a second
// pack): the second point needs both packs, and its manifest lives in the
// second. It returns the store, keys, the point and the first pack.
func twoPackPoint(t *testing.T) (*Store, *Keys, ID, string, string) {
	t.Helper()
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "old/a"), strings.Repeat("alpha ", 3000))
	mustWrite(t, filepath.Join(src, "old/b"), strings.Repeat("bravo ", 3000))
	if err := os.Link(filepath.Join(src, "old/b"), filepath.Join(src, "old/b-link")); err != nil {
		t.Fatal(err)
	}
	first := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	h1, err := NewReader(s.Objects(), nil).loadHeader(first.Point)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(src, "new/c"), strings.Repeat("charlie ", 3000))
	mustWrite(t, filepath.Join(src, "new/empty"), "")
	if err := os.Symlink("c", filepath.Join(src, "new/link")); err != nil {
		t.Fatal(err)
	}
	second := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if len(h1.Packs) != 1 {
		t.Fatalf("first point has %d packs, want 1", len(h1.Packs))
	}
	return s, k, second.Point, PackName(h1.Packs[0].Pack), IndexName(h1.Packs[0].Index)
}

// loadHeader reads a point's clear header (no key needed).
func (r *Reader) loadHeader(id ID) (PointHeader, error) {
	pts, err := ListPoints(context.Background(), r.b)
	if err != nil {
		return PointHeader{}, err
	}
	for _, p := range pts {
		if p.ID == id {
			return p, nil
		}
	}
	return PointHeader{}, storage.ErrNotFound
}

// TestRestorePartial: with one pack missing, a partial restore writes
// every file that does not need it (byte-identical) and lists the ones it
// could not restore; without Partial nothing is written and the error
// counts the files and says to use --partial.
func TestRestorePartial(t *testing.T) {
	for _, c := range []struct {
		name   string
		remove func(pack, index string) []string
		reader func(s *Store, k *Keys) *Reader
	}{
		{"pack missing, objects only", func(p, _ string) []string { return []string{p} }, func(s *Store, k *Keys) *Reader { return NewReader(s.Objects(), k) }},
		{"pack missing, dedup index", func(p, _ string) []string { return []string{p} }, func(s *Store, k *Keys) *Reader { return s.Reader(k) }},
		{"pack and index missing", func(p, i string) []string { return []string{p, i} }, func(s *Store, k *Keys) *Reader { return NewReader(s.Objects(), k) }},
		{"pack damaged", nil, func(s *Store, k *Keys) *Reader { return NewReader(s.Objects(), k) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, k, id, pack, index := twoPackPoint(t)
			ctx := context.Background()
			if c.remove != nil {
				for _, name := range c.remove(pack, index) {
					if err := s.Objects().Remove(ctx, name); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				rewriteStored(t, s.Objects(), pack, func(b []byte) []byte {
					b = slices.Clone(b)
					b[len(b)/2] ^= 1
					return b
				})
			}
			r := c.reader(s, k)
			defer r.Close()

			target := filepath.Join(t.TempDir(), "all-or-nothing")
			_, err := Restore(ctx, r, id, RestoreOptions{Target: target})
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("Restore without Partial: err = %v, want an UnavailableError", err)
			}
			for _, want := range []string{"3 files", "--partial", pack} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused restore created the target (%v)", err)
			}

			target = filepath.Join(t.TempDir(), "partial")
			sum, err := Restore(ctx, r, id, RestoreOptions{Target: target, Partial: true})
			if err != nil {
				t.Fatalf("partial Restore: %v", err)
			}
			wantMissing := []string{"old/a", "old/b", "old/b-link"}
			if sum.NotRestoredCount != 3 || !slices.Equal(sum.NotRestored, wantMissing) {
				t.Errorf("not restored: %d %q, want 3 %q", sum.NotRestoredCount, sum.NotRestored, wantMissing)
			}
			if len(sum.Unavailable) == 0 || !strings.Contains(strings.Join(sum.Unavailable, "\n"), pack) {
				t.Errorf("Unavailable = %q, want it to name %s", sum.Unavailable, pack)
			}
			if b, err := os.ReadFile(filepath.Join(target, "new/c")); err != nil || string(b) != strings.Repeat("charlie ", 3000) {
				t.Errorf("new/c = %d bytes (err %v), want the original", len(b), err)
			}
			if fi, err := os.Stat(filepath.Join(target, "new/empty")); err != nil || fi.Size() != 0 {
				t.Errorf("new/empty: %v", err)
			}
			if l, err := os.Readlink(filepath.Join(target, "new/link")); err != nil || l != "c" {
				t.Errorf("new/link -> %q (err %v), want c", l, err)
			}
			for _, p := range wantMissing {
				if _, err := os.Lstat(filepath.Join(target, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a partial restore that could not restore it (%v)", p, err)
				}
			}
			if sum.Files != 2 {
				t.Errorf("Files = %d, want 2", sum.Files)
			}

			// A sub-path that needs nothing missing restores whole, even
			// without Partial.
			target = filepath.Join(t.TempDir(), "sub")
			sum, err = Restore(ctx, r, id, RestoreOptions{Target: target, Path: "new"})
			if err != nil || sum.NotRestoredCount != 0 {
				t.Fatalf("Restore of new/ with old/'s pack missing: %v (not restored %d)", err, sum.NotRestoredCount)
			}
		})
	}
}

// countingLists counts List calls under the index prefix.
type countingLists struct {
	storage.Backend
	n int
}

func (c *countingLists) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if prefix == IndexPrefix {
		c.n++
	}
	return c.Backend.List(ctx, prefix, fn)
}

// TestPartialRestoreListsIndexesOnce: with an index object lost, every
// chunk it described is unknown; the Reader lists the backend's index
// objects once, not once per chunk (a LIST of the vault each).
func TestPartialRestoreListsIndexesOnce(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	for i := range 50 {
		mustWrite(t, filepath.Join(src, "old", strings.Repeat("f", i+1)), strings.Repeat(string(rune('a'+i%26)), 100+i))
	}
	first := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	h1, err := NewReader(s.Objects(), nil).loadHeader(first.Point)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(src, "new/c"), "charlie")
	second := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if err := s.Objects().Remove(context.Background(), IndexName(h1.Packs[0].Index)); err != nil {
		t.Fatal(err)
	}
	b := &countingLists{Backend: s.Objects()}
	r := NewReader(b, k)
	defer r.Close()
	sum, err := Restore(context.Background(), r, second.Point, RestoreOptions{Target: t.TempDir(), Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.NotRestoredCount != 50 || sum.Files != 1 {
		t.Errorf("restored %d files, %d not restored; want 1 and 50", sum.Files, sum.NotRestoredCount)
	}
	if b.n > 1 {
		t.Errorf("the index objects were listed %d times, want once", b.n)
	}
}
