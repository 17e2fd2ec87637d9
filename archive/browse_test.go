package archive

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func openPointManifest(t *testing.T, r *Reader, id ID) *ManifestReader {
	t.Helper()
	ctx := context.Background()
	h, err := r.LoadPoint(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := OpenManifest(ctx, r, h.Tree)
	if err != nil {
		t.Fatal(err)
	}
	return mr
}

func TestDiffManifests(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	for p, c := range map[string]string{
		"keep.txt": "same", "gone.txt": "bye", "edit.txt": "old", "mode.txt": "m",
		"dir/a": "a", "dir/sub/b": "b", "old-dir/x": "x",
	} {
		mustWrite(t, filepath.Join(src, p), c)
	}
	os.Symlink("keep.txt", filepath.Join(src, "link"))
	a := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "d"})

	os.Remove(filepath.Join(src, "gone.txt"))
	os.RemoveAll(filepath.Join(src, "old-dir"))
	mustWrite(t, filepath.Join(src, "edit.txt"), "new content")
	mustWrite(t, filepath.Join(src, "dir/new"), "n")
	os.Chmod(filepath.Join(src, "mode.txt"), 0o600)
	os.Remove(filepath.Join(src, "link"))
	os.Symlink("edit.txt", filepath.Join(src, "link"))
	b := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "d"})

	r := s.Reader(k)
	defer r.Close()
	var got []string
	err := DiffManifests(openPointManifest(t, r, a.Point), openPointManifest(t, r, b.Point), func(c Change) error {
		if c.Kind == Metadata && (c.Path == "dir" || c.Path == "") {
			return nil // directory mtimes move with their entries
		}
		got = append(got, string(c.Kind)+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"added dir/new", "changed edit.txt", "removed gone.txt", "changed link", "metadata mode.txt", "removed old-dir", "removed old-dir/x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff =\n%q\nwant\n%q", got, want)
	}
	// A point against itself has no changes.
	n := 0
	DiffManifests(openPointManifest(t, r, a.Point), openPointManifest(t, r, a.Point), func(Change) error { n++; return nil })
	if n != 0 {
		t.Errorf("a point differs from itself in %d entries", n)
	}
}

func TestPathPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"*.log", "var/log/app.log", true},
		{"*.log", "app.log", true},
		{"*.log", "app.log.1", false},
		{"var/*/app.log", "var/log/app.log", true},
		{"var/*/app.log", "x/var/log/app.log", false},
		{"**/id_rsa", "home/u/.ssh/id_rsa", true},
		{"**/id_rsa", "id_rsa", true},
		{"home/**", "home/u/a/b", true},
		{"/etc/passwd", "etc/passwd", true},
		{"{a,b}.txt", "dir/b.txt", true},
	} {
		p, err := NewPathPattern(c.pattern)
		if err != nil {
			t.Fatalf("NewPathPattern(%q): %v", c.pattern, err)
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"[", "a/[b", ""} {
		if _, err := NewPathPattern(bad); err == nil {
			t.Errorf("NewPathPattern(%q) accepted", bad)
		}
	}
}

// Reading a point's manifest through a plain backend fetches the tree
// blobs and index objects only, not the packs' data.
func TestBrowsingFetchesOnlyTreeData(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "small.txt"), "s")
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "b"})
	cb := NewCountingBackend(s.Objects())
	r := NewReader(cb, k)
	defer r.Close()
	mr := openPointManifest(t, r, sum.Point)
	n := 0
	for {
		if _, err := mr.Next(); err != nil {
			break
		}
		n++
	}
	if n != 2 {
		t.Errorf("manifest has %d entries, want 2", n)
	}
	if f := cb.Fetched(); f == 0 || f > 64<<10 {
		t.Errorf("reading the manifest fetched %d bytes, want some, and far less than the 8 MiB of data", f)
	}
}
