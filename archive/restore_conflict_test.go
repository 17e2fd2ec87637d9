package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreConflictsFoundBeforeWriting: an existing file in the target
// that sorts after hundreds of other entries refuses the restore before
// any of them is written, and the error names every conflict.
func TestRestoreConflictsFoundBeforeWriting(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	for i := range 300 {
		mustWrite(t, filepath.Join(src, fmt.Sprintf("a/f%03d", i)), fmt.Sprint("content ", i))
	}
	mustWrite(t, filepath.Join(src, "zz/last"), "new")
	mustWrite(t, filepath.Join(src, "zz/other"), "new")
	if err := os.Symlink("last", filepath.Join(src, "zz/link")); err != nil {
		t.Fatal(err)
	}
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})

	dst := t.TempDir()
	mustWrite(t, filepath.Join(dst, "zz/last"), "old")
	if err := os.Symlink("elsewhere", filepath.Join(dst, "zz/link")); err != nil {
		t.Fatal(err)
	}
	r := s.Reader(k)
	defer r.Close()
	_, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: dst})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Restore over existing entries: err = %v, want ErrExist", err)
	}
	for _, want := range []string{"zz/last", "zz/link", "2 entries", "--overwrite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := listDir(t, dst); len(got) != 1 || got[0] != "zz" {
		t.Errorf("refused restore wrote into the target: it holds %q, want only zz", got)
	}
	if got := listDir(t, filepath.Join(dst, "zz")); len(got) != 2 {
		t.Errorf("refused restore wrote into zz: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "zz/last")); string(b) != "old" {
		t.Errorf("existing file changed to %q without Overwrite", b)
	}

	// A directory where the point has a file is in the way even with
	// Overwrite (restore never deletes a directory tree): also found first.
	dst2 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dst2, "zz/other/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(context.Background(), r, sum.Point, RestoreOptions{Target: dst2, Overwrite: true})
	if err == nil || !strings.Contains(err.Error(), "zz/other") || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Restore with a directory in the way: err = %v, want one naming zz/other", err)
	}
	if got := listDir(t, dst2); len(got) != 1 || got[0] != "zz" {
		t.Errorf("refused restore wrote into the target: it holds %q, want only zz", got)
	}

	// With Overwrite the same target restores.
	if _, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: dst, Overwrite: true}); err != nil {
		t.Fatalf("Restore with Overwrite: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "zz/last")); string(b) != "new" {
		t.Errorf("zz/last after Overwrite = %q, want new", b)
	}
}
