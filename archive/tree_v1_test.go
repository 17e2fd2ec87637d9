package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The format 1 fixture in testdata/v1: a small store written by this code
// (store/) and the tree it holds (source/). Every later version must restore
// it byte for byte. Regenerate only for a deliberate format change, with
//
//	go test ./archive -run TestGenerateV1 -update-v1
var updateV1 = flag.Bool("update-v1", false, "regenerate testdata/v1 (the format 1 fixture)")

// v1Passphrase unlocks testdata/v1/store. It is public on purpose.
const v1Passphrase = "tapeless format v1 fixture passphrase"

const v1Dir = "../testdata/v1"

// v1Entry is one entry of the fixture tree.
type v1Entry struct {
	path    string
	content []byte // files
	mode    uint32
	symlink string // symlink target
	dir     bool
	link    string // hard link to this earlier path
}

// v1Sparse is the fixture's sparse file: 128 KiB with 4 KiB of data at 0
// and at 96 KiB, the rest holes.
const (
	v1SparsePath = "data/sparse.img"
	v1SparseSize = 128 << 10
)

func v1SparseContent() []byte {
	b := make([]byte, v1SparseSize)
	copy(b, bytes.Repeat([]byte("head"), 1024))
	copy(b[96<<10:], bytes.Repeat([]byte("tail"), 1024))
	return b
}

func v1Tree() []v1Entry {
	var rnd []byte
	s := sha256.Sum256([]byte("tapeless v1 random"))
	for len(rnd) < 3000 {
		rnd = append(rnd, s[:]...)
		s = sha256.Sum256(s[:])
	}
	notes := strings.Repeat("Recovery points are deduplicated, compressed and encrypted.\n", 40)
	return []v1Entry{
		{path: "README.txt", content: []byte("tapeless format v1 fixture\n"), mode: 0o644},
		{path: "bin", dir: true, mode: 0o755},
		{path: "bin/run.sh", content: []byte("#!/bin/sh\necho restored\n"), mode: 0o755},
		{path: "data", dir: true, mode: 0o755},
		{path: "data/random.bin", content: rnd, mode: 0o644},
		{path: v1SparsePath, content: v1SparseContent(), mode: 0o644},
		{path: "docs", dir: true, mode: 0o755},
		{path: "docs/notes.md", content: []byte(notes), mode: 0o644},
		{path: "docs/ünïcødé ✓.txt", content: []byte("naïve café\n"), mode: 0o644},
		{path: "empty", dir: true, mode: 0o755},
		{path: "links", dir: true, mode: 0o755},
		{path: "links/dangling", symlink: "../nowhere"},
		{path: "links/hardlink.txt", link: "links/original.txt"},
		{path: "links/original.txt", content: []byte("one inode, two names\n"), mode: 0o644},
		{path: "links/to-readme", symlink: "../README.txt"},
	}
}

// v1Mtime is the fixed mtime of the i-th entry of v1Tree.
func v1Mtime(i int) int64 {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano() + int64(i)*1_000_000_007
}

// buildV1Source writes the fixture tree into dir with its modes, hard link,
// holes and mtimes.
func buildV1Source(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := v1Tree()
	for _, e := range tree {
		p := filepath.Join(dir, e.path)
		var err error
		switch {
		case e.dir:
			err = os.MkdirAll(p, 0o755)
		case e.symlink != "":
			err = os.Symlink(e.symlink, p)
		case e.path == v1SparsePath:
			var f *os.File
			if f, err = os.Create(p); err == nil {
				c := e.content
				f.Truncate(int64(len(c)))
				f.WriteAt(c[:4096], 0)
				f.WriteAt(c[96<<10:100<<10], 96<<10)
				err = f.Close()
			}
		case e.link == "":
			err = os.WriteFile(p, e.content, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !e.dir && e.symlink == "" && e.link == "" {
			if err := unix.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range tree { // links after their targets exist
		if e.link != "" {
			if err := os.Link(filepath.Join(dir, e.link), filepath.Join(dir, e.path)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := len(tree) - 1; i >= 0; i-- { // children before parents
		if tree[i].link == "" { // a hard link shares its target's inode
			lutimes(t, filepath.Join(dir, tree[i].path), v1Mtime(i))
		}
	}
}

// TestGenerateV1 rewrites testdata/v1 when run with -update-v1.
func TestGenerateV1(t *testing.T) {
	if !*updateV1 {
		t.Skip("run with -update-v1 to regenerate testdata/v1")
	}
	ctx := context.Background()
	defer SetKDFForTesting(KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "source")
	buildV1Source(t, src)

	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	env, err := WrapKeys(k, []byte(v1Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(tmp, "store")
	if err := InitStore(ctx, storeDir, k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(ctx, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Backup(ctx, s, BackupOptions{Sources: []string{src}, Name: "v1-fixture",
		Now: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Only what a reader needs: config, keys and objects. The bbolt state
	// and the lock file are local, rebuildable state.
	os.Remove(filepath.Join(storeDir, "state.db"))
	os.Remove(filepath.Join(storeDir, "lock"))

	if err := os.RemoveAll(v1Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(v1Dir, "store"), os.DirFS(storeDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(v1Dir, "source"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The source as git can hold it: no holes, no hard links, no empty
	// directories, no mtimes; the test knows what those should be.
	for _, e := range v1Tree() {
		p := filepath.Join(v1Dir, "source", e.path)
		var err error
		switch {
		case e.dir:
			if e.path != "empty" {
				err = os.MkdirAll(p, 0o755)
			}
		case e.symlink != "":
			err = os.Symlink(e.symlink, p)
		default:
			c, m := e.content, e.mode
			if e.link != "" {
				for _, o := range v1Tree() {
					if o.path == e.link {
						c, m = o.content, o.mode
					}
				}
			}
			if err = os.WriteFile(p, c, 0o644); err == nil {
				err = os.Chmod(p, fs.FileMode(m))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// What a reader needs besides the store: the passphrase and the listing.
	if err := os.WriteFile(filepath.Join(v1Dir, "passphrase"), []byte(v1Passphrase+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	*updateV1Listing = true
	TestV1ListingMatchesFixture(t)
	t.Logf("wrote %s: point %s, %d files", v1Dir, sum.Point, sum.Files)
}

// TestRestoreV1Fixture restores the checked-in format 1 store and compares
// it with testdata/v1/source: contents, types, symlink targets, executable
// bits, plus what git cannot hold (mtimes, the hard link, the hole, the
// empty directory) against the fixture's definition.
func TestRestoreV1Fixture(t *testing.T) {
	ctx := context.Background()
	v, err := OpenStoreView(ctx, filepath.Join(v1Dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	keys, err := UnwrapKeys(v.Envelope, []byte(v1Passphrase))
	if err != nil {
		t.Fatalf("unwrap the v1 fixture's keys: %v", err)
	}
	points, err := ListPoints(ctx, v.Objects)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 1 || points[0].Source != "v1-fixture" || points[0].Files != 7 || points[0].Format != 1 {
		t.Fatalf("v1 fixture points = %+v, want one format-1 point of v1-fixture with 7 files", points)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	r := NewReader(v.Objects, keys)
	defer r.Close()
	if _, err := Restore(ctx, r, points[0].ID, RestoreOptions{Target: dst}); err != nil {
		t.Fatalf("restore the v1 fixture: %v", err)
	}

	src := filepath.Join(v1Dir, "source")
	var want, got []string
	collect := func(root string, out *[]string) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if p != root {
				rel, _ := filepath.Rel(root, p)
				*out = append(*out, rel)
			}
			return nil
		})
		sort.Strings(*out)
	}
	collect(src, &want)
	collect(dst, &got)
	want = append(want, "empty") // git cannot hold an empty directory
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("restored entries:\n%q\nwant:\n%q", got, want)
	}
	for _, rel := range want {
		sp, dp := filepath.Join(src, rel), filepath.Join(dst, rel)
		dfi, err := os.Lstat(dp)
		if err != nil {
			t.Fatal(err)
		}
		if rel == "empty" {
			if es, _ := os.ReadDir(dp); !dfi.IsDir() || len(es) != 0 {
				t.Errorf("empty is not an empty directory")
			}
			continue
		}
		sfi, err := os.Lstat(sp)
		if err != nil {
			t.Fatal(err)
		}
		if sfi.Mode().Type() != dfi.Mode().Type() {
			t.Errorf("%s: type %v, want %v", rel, dfi.Mode().Type(), sfi.Mode().Type())
			continue
		}
		switch {
		case sfi.Mode()&fs.ModeSymlink != 0:
			st, _ := os.Readlink(sp)
			dt, _ := os.Readlink(dp)
			if st != dt {
				t.Errorf("%s: symlink to %q, want %q", rel, dt, st)
			}
		case sfi.Mode().IsRegular():
			sb, _ := os.ReadFile(sp)
			db, _ := os.ReadFile(dp)
			if !bytes.Equal(sb, db) {
				t.Errorf("%s: restored content differs from testdata", rel)
			}
			if sfi.Mode().Perm()&0o111 != dfi.Mode().Perm()&0o111 {
				t.Errorf("%s: mode %v, want executable bits of %v", rel, dfi.Mode(), sfi.Mode())
			}
		}
	}
	tree := v1Tree()
	for i, e := range tree {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dst, e.path), &st); err != nil {
			t.Fatal(err)
		}
		want := v1Mtime(i)
		for j, o := range tree {
			if e.link != "" && o.path == e.link {
				want = v1Mtime(j)
			}
		}
		if st.Mtim.Nano() != want {
			t.Errorf("%s: mtime %d, want %d", e.path, st.Mtim.Nano(), want)
		}
		if e.mode != 0 && !e.dir && st.Mode&0o7777 != e.mode {
			t.Errorf("%s: mode %o, want %o", e.path, st.Mode&0o7777, e.mode)
		}
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(dst, "links/original.txt"), &a)
	unix.Stat(filepath.Join(dst, "links/hardlink.txt"), &b)
	if a.Ino != b.Ino {
		t.Error("links/hardlink.txt is not a hard link of links/original.txt")
	}
	var sp unix.Stat_t
	unix.Stat(filepath.Join(dst, v1SparsePath), &sp)
	if sp.Size != v1SparseSize || sp.Blocks*512 > 16<<10 {
		t.Errorf("%s: size %d, %d bytes allocated; want %d bytes with at most 16 KiB allocated", v1SparsePath, sp.Size, sp.Blocks*512, v1SparseSize)
	}
}
