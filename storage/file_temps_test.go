package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFileRemoveTemps: only regular files named like an in-progress save
// go; objects, look-alike names, directories and symlinks stay.
func TestFileRemoveTemps(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f, err := NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "packs/ab/obj", bytes.NewReader([]byte("object")), 6); err != nil {
		t.Fatal(err)
	}
	write := func(rel, content string) string {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := []string{write("packs/ab/.tapeless-tmp-1", "12345"), write(".tapeless-tmp-2", "67")}
	kept := []string{filepath.Join(root, "packs", "ab", "obj"), write("packs/tapeless-tmp-3", "x"), write("index/x.tapeless-tmp-4", "x")}
	dir := filepath.Join(root, "points", ".tapeless-tmp-dir")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := write("points/target", "keep me")
	link := filepath.Join(root, "points", ".tapeless-tmp-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, dir, link, target)

	n, size, err := f.RemoveTemps(ctx)
	if err != nil || n != 2 || size != 7 {
		t.Errorf("RemoveTemps = %d files, %d bytes, %v; want 2, 7, nil", n, size, err)
	}
	for _, p := range gone {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
