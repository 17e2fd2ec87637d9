package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

const treeTestPassphrase = "correct horse battery staple"

// newTreeTestStore makes a store with cheap KDF parameters and returns it
// open, with its keys.
func newTreeTestStore(t testing.TB) (*Store, *Keys) {
	t.Helper()
	return newStoreForTest(t, treeTestPassphrase)
}

func mustBackup(t testing.TB, s *Store, o BackupOptions) *BackupSummary {
	t.Helper()
	sum, err := Backup(context.Background(), s, o)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return sum
}

func mustRestore(t testing.TB, s *Store, k *Keys, id ID, o RestoreOptions) *RestoreSummary {
	t.Helper()
	r := s.Reader(k)
	defer r.Close()
	sum, err := Restore(context.Background(), r, id, o)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return sum
}

// objectBytes is the total size of the store's objects (packs, indexes,
// points): what a backup adds to the store, apart from its local index.
func objectBytes(t testing.TB, s *Store) int64 {
	t.Helper()
	var n int64
	if err := s.Objects().List(context.Background(), "", func(i storage.Info) error {
		n += i.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// dirBytes is the total size of the files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func treeRandom(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func lutimes(t testing.TB, p string, ns int64) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("lutimes %s: %v", p, err)
	}
}

// buildTree creates the round-trip fixture: every kind of entry and name the
// issue lists, with odd modes, xattrs and nanosecond mtimes. It returns the
// number of special files it made.
func buildTree(t testing.TB, dir string) (special int) {
	t.Helper()
	w := func(rel string, data []byte, perm uint32) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(rel string) {
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sym := func(target, rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	w("empty-file", nil, 0o644)
	mkdir("empty-dir")
	w("ünïcødé/日本語 ファイル.txt", []byte("こんにちは\n"), 0o644)
	w("line\nbreak", []byte("newline in the name"), 0o640)
	w("tab\tand\\backslash \"quoted\"", []byte("x"), 0o600)
	w("bad\xff\xfename", []byte("not UTF-8"), 0o644)
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("é", 60) + "/" + strings.Repeat("x", 200) + "/" + strings.Repeat("f", 250)
	w(long, []byte("deep"), 0o644)
	w("data/random.bin", treeRandom(1, 3<<20+12345), 0o644)
	w("data/text.txt", bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 20000), 0o644)
	w("links/a", []byte("hard-linked content"), 0o644)
	for _, l := range []string{"links/b", "links/sub/c"} {
		mkdir(filepath.Dir(l))
		if err := os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	sym("does-not-exist", "sym/dangling")
	sym("../data", "sym/todir")
	sym("../data/text.txt", "sym/relative")
	sym("/etc/hostname", "sym/absolute")
	sym("../line\nbreak", "sym/odd\ntarget")
	w("modes/setuid", []byte("#!/bin/sh\n"), 0o4755)
	w("modes/readonly", []byte("ro"), 0o444)
	w("modes/rodir/inside", []byte("in a read-only dir"), 0o644)
	mkdir("modes/sticky")
	if err := unix.Chmod(filepath.Join(dir, "modes/sticky"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "data/text.txt"), "user.comment", []byte("hello\x00xattr"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	// A small sparse file: data, hole, data, trailing hole.
	sp := filepath.Join(dir, "sparse/small")
	mkdir("sparse")
	f, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(16 << 20)
	f.WriteAt(treeRandom(2, 64<<10), 0)
	f.WriteAt(treeRandom(3, 64<<10), 8<<20)
	f.Close()

	mkdir("special")
	if err := unix.Mkfifo(filepath.Join(dir, "special/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	special++
	if l, err := net.Listen("unix", filepath.Join(dir, "special/sock")); err == nil {
		t.Cleanup(func() { l.Close() })
		special++
	}

	// Distinct nanosecond mtimes everywhere, directories last and deepest
	// first so their own times stick.
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	base := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano()
	for i, p := range paths {
		lutimes(t, p, base+int64(i)*1_000_003_007)
	}
	if err := unix.Chmod(filepath.Join(dir, "modes/rodir"), 0o555); err != nil {
		t.Fatal(err)
	}
	lutimes(t, filepath.Join(dir, "modes/rodir"), base-77)
	return special
}

// fileInfo is what compareTrees checks for one path.
type fileInfo struct {
	mode   uint32
	uid    uint32
	gid    uint32
	size   int64
	mtime  int64
	target string
	sum    [32]byte
	xattrs string
	ino    uint64
}

// scanTree lstat()s every entry under dir except dir itself and special
// files.
func scanTree(t testing.TB, dir string, withContent bool) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFREG && typ != unix.S_IFDIR && typ != unix.S_IFLNK {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi := fileInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano(), ino: st.Ino}
		switch typ {
		case unix.S_IFREG:
			fi.size = st.Size
			if withContent {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fi.sum = sha256.Sum256(b)
			}
		case unix.S_IFLNK:
			fi.target, _ = os.Readlink(p)
		}
		if typ != unix.S_IFLNK {
			x, err := readXattrs(p)
			if err != nil {
				return err
			}
			for _, a := range x {
				fi.xattrs += a.Name + "=" + string(a.Value) + ";"
			}
		}
		out[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails unless got holds exactly the regular files, dirs and
// symlinks of want with identical content, mode, owner, mtime, target,
// xattrs and hard-link grouping.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	w, g := scanTree(t, want, true), scanTree(t, got, true)
	// Hard-link groups: paths sharing an inode in want share one in got.
	groups := map[uint64][]string{}
	for p, wi := range w {
		groups[wi.ino] = append(groups[wi.ino], p)
	}
	for _, ps := range groups {
		for _, q := range ps[1:] {
			if gp, gq := g[ps[0]], g[q]; gp.ino != gq.ino {
				t.Errorf("%q and %q are hard links in the source but not restored as such", ps[0], q)
			}
		}
	}
	for p, wi := range w {
		gi, ok := g[p]
		if !ok {
			t.Errorf("restored tree lacks %q", p)
			continue
		}
		wi.ino, gi.ino = 0, 0
		if gi != wi {
			t.Errorf("%q: restored %+v, want %+v", p, gi, wi)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("restored tree has extra %q", p)
		}
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	special := buildTree(t, src)
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "fixture"})
	if sum.Special != int64(special) {
		t.Errorf("Backup skipped %d special files, want %d", sum.Special, special)
	}
	if sum.HardLinks != 2 || sum.Symlinks != 5 {
		t.Errorf("Backup counted %d hard links and %d symlinks, want 2 and 5", sum.HardLinks, sum.Symlinks)
	}
	if sum.Partial() {
		t.Errorf("Backup is partial: %+v", sum)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	rsum := mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst, SpecialBits: true})
	compareTrees(t, src, dst)
	if rsum.Files != sum.Files || rsum.HardLinks != 2 || rsum.Symlinks != 5 {
		t.Errorf("Restore summary %+v does not match backup %+v", rsum, sum)
	}

	// Without SpecialBits the setuid bit is dropped, nothing else changes.
	dst2 := filepath.Join(t.TempDir(), "dst2")
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst2})
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst2, "modes/setuid"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 {
		t.Errorf("setuid file restored without SpecialBits has mode %o, want 755", st.Mode&0o7777)
	}
}

func TestRestoreSubPath(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})

	// links/sub/c is a hard link whose group's first member (links/a) lies
	// outside the restored path: it must get the content.
	dst := t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst, Path: "links/sub"})
	got := scanTree(t, dst, true)
	want := scanTree(t, src, true)
	if len(got) != 3 { // links, links/sub, links/sub/c
		t.Errorf("sub-path restore wrote %d entries, want 3: %v", len(got), got)
	}
	if got["links/sub/c"].sum != want["links/a"].sum {
		t.Errorf("links/sub/c content differs from the source")
	}
	if got["links"].mtime != want["links"].mtime {
		t.Errorf("parent dir mtime %d, want %d", got["links"].mtime, want["links"].mtime)
	}

	// A single file, with a name that needs escaping.
	dst = t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst, Path: "line\nbreak"})
	if b, err := os.ReadFile(filepath.Join(dst, "line\nbreak")); err != nil || string(b) != "newline in the name" {
		t.Errorf("restored line\\nbreak = %q, %v", b, err)
	}

	r := s.Reader(k)
	defer r.Close()
	if _, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: t.TempDir(), Path: "no/such"}); !errors.Is(err, ErrPathNotInPoint) {
		t.Errorf("Restore of a missing path: err = %v, want ErrPathNotInPoint", err)
	}
}

func TestRestoreRefusesToOverwrite(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "a/f"), "new")
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	dst := t.TempDir()
	mustWrite(t, filepath.Join(dst, "a/f"), "old")
	r := s.Reader(k)
	defer r.Close()
	_, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: dst})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Restore over an existing file: err = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a/f")); string(b) != "old" {
		t.Errorf("existing file changed to %q without Overwrite", b)
	}
	if _, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: dst, Overwrite: true}); err != nil {
		t.Fatalf("Restore with Overwrite: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a/f")); string(b) != "new" {
		t.Errorf("file after Overwrite = %q, want new", b)
	}
}

func TestManySmallFilesRoundTrip(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	const n = 10000
	for i := range n {
		d := filepath.Join(src, "dir"+strconv.Itoa(i%100))
		if i < 100 {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(i)), []byte(strconv.Itoa(i*7919)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	t.Logf("backup of %d files: %v", n, time.Since(start))
	if sum.Files != n {
		t.Fatalf("Backup stored %d files, want %d", sum.Files, n)
	}
	dst := t.TempDir()
	start = time.Now()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	t.Logf("restore of %d files: %v", n, time.Since(start))
	compareTrees(t, src, dst)
}

func TestSparseFileRoundTrip(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	p := filepath.Join(src, "big.sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 30
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{0, 400 << 20, size - 1<<20} {
		if _, err := f.WriteAt(treeRandom(uint64(10+i), 1<<20), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	const data = 3 << 20

	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if sum.BytesRead != data {
		t.Errorf("Backup read %d bytes of the sparse file, want only its %d data bytes", sum.BytesRead, data)
	}
	if sum.Bytes != size {
		t.Errorf("Backup logical bytes = %d, want %d", sum.Bytes, size)
	}
	dst := t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "big.sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Errorf("restored size %d, want %d", st.Size, size)
	}
	if alloc := st.Blocks * 512; alloc > 2*data {
		t.Errorf("restored file allocates %d bytes, want at most %d (twice its data)", alloc, 2*data)
	}
	// Same data extents, same bytes in them.
	rf, _ := os.Open(filepath.Join(dst, "big.sparse"))
	defer rf.Close()
	sf, _ := os.Open(p)
	defer sf.Close()
	ge, err := DataExtents(rf, size)
	if err != nil {
		t.Fatal(err)
	}
	we, _ := DataExtents(sf, size)
	if len(ge) != len(we) {
		t.Fatalf("restored extents %v, want %v", ge, we)
	}
	for i := range we {
		if ge[i] != we[i] {
			t.Errorf("extent %d = %v, want %v", i, ge[i], we[i])
		}
		a, b := make([]byte, we[i].Length), make([]byte, we[i].Length)
		sf.ReadAt(a, we[i].Offset)
		rf.ReadAt(b, we[i].Offset)
		if !bytes.Equal(a, b) {
			t.Errorf("extent %d content differs", i)
		}
	}

	// An incremental backup of the sparse file reads nothing.
	sum2 := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if sum2.BytesRead != 0 || sum2.FilesUnchanged != 1 {
		t.Errorf("second backup read %d bytes, %d unchanged; want 0 and 1", sum2.BytesRead, sum2.FilesUnchanged)
	}
}

func TestIncrementalBackupReadsNothing(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	first := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "tree"})
	before, beforeAll := objectBytes(t, s), dirBytes(t, s.Dir())
	second := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "tree"})
	grown := objectBytes(t, s) - before
	t.Logf("second backup: objects +%d bytes, store directory (with its bbolt index) +%d bytes", grown, dirBytes(t, s.Dir())-beforeAll)
	if second.BytesRead != 0 || second.FilesRead != 0 {
		t.Errorf("second backup read %d bytes of %d files, want none", second.BytesRead, second.FilesRead)
	}
	if grown >= 1<<20 {
		t.Errorf("second backup grew the store by %d bytes, want under 1 MiB", grown)
	}
	if second.Parent == nil || *second.Parent != first.Point {
		t.Errorf("second backup parent = %v, want %s", second.Parent, first.Point)
	}
	if second.Point == first.Point {
		t.Errorf("second point has the same ID as the first")
	}
	dst := t.TempDir()
	mustRestore(t, s, k, second.Point, RestoreOptions{Target: dst, SpecialBits: true})
	compareTrees(t, src, dst)

	// A touched file is read again; the rest is not.
	p := filepath.Join(src, "data/text.txt")
	if err := os.WriteFile(p, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "tree"})
	if third.FilesRead != 1 || third.BytesRead != int64(len("changed")) {
		t.Errorf("third backup read %d files, %d bytes; want 1 file of 7 bytes", third.FilesRead, third.BytesRead)
	}
	// NoCache reads everything.
	all := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "tree", NoCache: true})
	if all.FilesRead != all.Files-0 || all.NewStoredBytes >= 1<<20 {
		t.Errorf("NoCache backup read %d of %d files and stored %d new bytes", all.FilesRead, all.Files, all.NewStoredBytes)
	}
}

func TestInsertedByteAddsLittle(t *testing.T) {
	s, _ := newTreeTestStore(t)
	src := t.TempDir()
	p := filepath.Join(src, "big.bin")
	data := treeRandom(42, 100<<20)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustBackup(t, s, BackupOptions{Sources: []string{src}})
	before := objectBytes(t, s)
	mid := len(data) / 2
	edited := append(append(append([]byte(nil), data[:mid]...), 'X'), data[mid:]...)
	if err := os.WriteFile(p, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	grown := objectBytes(t, s) - before
	t.Logf("one inserted byte: +%d bytes of objects, %d new chunks", grown, sum.NewChunks)
	if grown >= 3<<20 {
		t.Errorf("one inserted byte grew the store by %d bytes, want under 3 MiB", grown)
	}
	if sum.BytesRead != int64(len(edited)) {
		t.Errorf("backup read %d bytes, want %d", sum.BytesRead, len(edited))
	}
}

func TestBackupSkipsUnreadableAndFlagsChanging(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "ok"), "fine")
	mustWrite(t, filepath.Join(src, "unreadable"), "secret")
	mustWrite(t, filepath.Join(src, "growing"), "start")
	if err := os.Link(filepath.Join(src, "unreadable"), filepath.Join(src, "x-link")); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(src, "unreadable")
	growing := filepath.Join(src, "growing")
	openForBackup = func(p string) (*os.File, error) {
		if p == unreadable {
			return nil, &os.PathError{Op: "open", Path: p, Err: unix.EACCES}
		}
		return openNoFollow(p)
	}
	testHookAfterRead = func(p string) {
		if p == growing {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("+"))
			f.Close()
		}
	}
	t.Cleanup(func() { openForBackup, testHookAfterRead = openNoFollow, nil })

	var reported []string
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}, OnError: func(p string, err error) error {
		reported = append(reported, p)
		return nil
	}})
	// The unreadable file and its hard link are both skipped.
	if sum.ErrorCount != 2 || len(reported) != 2 || reported[0] != unreadable {
		t.Errorf("errors = %d %q, want the unreadable file and its link", sum.ErrorCount, reported)
	}
	if len(sum.Changed) != 1 || sum.Changed[0] != growing {
		t.Errorf("changed = %q, want [%s]", sum.Changed, growing)
	}
	if !sum.Partial() {
		t.Error("summary not partial")
	}
	dst := t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	if b, err := os.ReadFile(filepath.Join(dst, "ok")); err != nil || string(b) != "fine" {
		t.Errorf("ok restored as %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "unreadable")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unreadable file restored: %v", err)
	}
	// The changing file holds what was read last, consistent with its hash.
	if b, err := os.ReadFile(filepath.Join(dst, "growing")); err != nil || !strings.HasPrefix(string(b), "start") {
		t.Errorf("growing restored as %q, %v", b, err)
	}
	// A changed file is not cached: the next backup reads it again.
	testHookAfterRead = nil
	sum2 := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if sum2.FilesRead != 1 || len(sum2.Changed) != 0 {
		t.Errorf("next backup read %d files, changed %q; want only the formerly changing one", sum2.FilesRead, sum2.Changed)
	}
}

// A file that shrinks between its fstat and the end of the read is stored
// as what was read (size and hash agree), marked changed and reported.
func TestBackupFileShrinkingDuringRead(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	shrinking := filepath.Join(src, "shrinking")
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	if err := os.WriteFile(shrinking, content, 0o644); err != nil {
		t.Fatal(err)
	}
	// Every read finds the file half as long as fstat said, so it never
	// settles within the retries.
	testHookBeforeRead = func(p string) {
		if p != shrinking {
			return
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			return
		}
		if err := os.Truncate(p, st.Size()/2); err != nil {
			t.Errorf("truncate: %v", err)
		}
	}
	t.Cleanup(func() { testHookBeforeRead = nil })

	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if len(sum.Changed) != 1 || sum.Changed[0] != shrinking {
		t.Fatalf("changed = %q, want [%s]", sum.Changed, shrinking)
	}
	if !sum.Partial() {
		t.Error("summary not partial")
	}
	final, err := os.ReadFile(shrinking)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(content) >> (changeRetries + 1); len(final) != want {
		t.Fatalf("file is %d bytes after the backup, want %d", len(final), want)
	}
	// Restore checks each file's hash as it writes: the stored node must
	// describe exactly the bytes of the last read.
	dst := t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	got, err := os.ReadFile(filepath.Join(dst, "shrinking"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, final) {
		t.Errorf("restored %d bytes, want the %d bytes of the last read", len(got), len(final))
	}
}

func TestBackupChecksLimitsBeforeWriting(t *testing.T) {
	s, _ := newTreeTestStore(t)
	src := t.TempDir()
	p := filepath.Join(src, "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file claiming more than the free space twenty times over
	// breaks the 5% scratch rule without using any disk.
	var st unix.Statfs_t
	if err := unix.Statfs(s.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if err := f.Truncate(free * 21); err != nil {
		t.Skipf("cannot make a %d-byte sparse file: %v", free*21, err)
	}
	f.Close()
	before := dirBytes(t, s.Dir())
	_, err = Backup(context.Background(), s, BackupOptions{Sources: []string{src}})
	if err == nil || !strings.Contains(err.Error(), "scratch space") {
		t.Fatalf("Backup of a source 21x the free space: err = %v, want a scratch-space error", err)
	}
	if after := dirBytes(t, s.Dir()); after != before {
		t.Errorf("refused backup wrote %d bytes into the store", after-before)
	}
	if ps, _ := s.ListPoints(context.Background()); len(ps) != 0 {
		t.Errorf("refused backup made %d points", len(ps))
	}
}

func TestBackupRefusesTooLargeSource(t *testing.T) {
	s, _ := newTreeTestStore(t)
	src := t.TempDir()
	// Four sparse files of 13 TiB: 57.2 TB, over the 54,400 GB limit,
	// without using any disk (ext4 allows 16 TiB per file).
	for i := range 4 {
		f, err := os.Create(filepath.Join(src, "huge"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		err = f.Truncate(13 << 40)
		f.Close()
		if err != nil {
			t.Skipf("cannot make a 13 TiB sparse file here: %v", err)
		}
	}
	before := objectBytes(t, s)
	_, err := Backup(context.Background(), s, BackupOptions{Sources: []string{src}, Name: "huge"})
	if !errors.Is(err, vault.ErrSourceTooLarge) || !strings.Contains(err.Error(), "54,400 GB") {
		t.Fatalf("Backup of a 57 TB source: err = %v, want ErrSourceTooLarge naming the limit", err)
	}
	if objectBytes(t, s) != before {
		t.Error("refused backup wrote objects")
	}
}

func TestFileCacheForgetsDeletedFiles(t *testing.T) {
	s, _ := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "a"), "a")
	mustWrite(t, filepath.Join(src, "b"), "b")
	count := func() int {
		n := 0
		s.DB().View(func(tx *bbolt.Tx) error {
			return tx.Bucket(fileCacheBucket).ForEach(func(k, v []byte) error {
				if bytes.HasPrefix(k, []byte("src\x00")) {
					n++
				}
				return nil
			})
		})
		return n
	}
	mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "src"})
	mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "other"})
	if got := count(); got != 2 {
		t.Fatalf("file cache holds %d entries for src, want 2", got)
	}
	os.Remove(filepath.Join(src, "b"))
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "src"})
	if got := count(); got != 1 {
		t.Errorf("after b was deleted the cache holds %d entries for src, want 1", got)
	}
	if sum.FilesUnchanged != 1 {
		t.Errorf("backup took %d files from the cache, want 1", sum.FilesUnchanged)
	}
	// Entries of another source are untouched.
	n := 0
	s.DB().View(func(tx *bbolt.Tx) error {
		return tx.Bucket(fileCacheBucket).ForEach(func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte("other\x00")) {
				n++
			}
			return nil
		})
	})
	if n != 2 {
		t.Errorf("cache holds %d entries for the other source, want 2", n)
	}
}

func TestBackupSkipsTheStoreInsideItsSource(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Dir(s.Dir()) // the store lives in src/store
	mustWrite(t, filepath.Join(src, "data.txt"), "data")
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	if sum.Files != 1 || sum.Excluded != 1 {
		t.Errorf("backup of the store's parent stored %d files, excluded %d; want 1 and the store", sum.Files, sum.Excluded)
	}
	dst := t.TempDir()
	mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	if got := listDir(t, dst); strings.Join(got, ",") != "data.txt" {
		t.Errorf("restored %q, want only data.txt", got)
	}
}
