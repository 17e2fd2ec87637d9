package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func mustWrite(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func walkAll(t *testing.T, sources []string, o WalkOptions) ([]*Entry, WalkStats) {
	t.Helper()
	var got []*Entry
	st, err := Walk(context.Background(), sources, o, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got, st
}

func TestWalkTypesOrderAndLinks(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "b/z"), "z")
	mustWrite(t, filepath.Join(dir, "a"), "hello")
	mustWrite(t, filepath.Join(dir, "B"), "upper")
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b/hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a", filepath.Join(dir, "b/link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "skip.tmp"), "x")
	if err := unix.Chmod(filepath.Join(dir, "B"), 0o4755); err != nil {
		t.Fatal(err)
	}
	xattrOK := unix.Lsetxattr(filepath.Join(dir, "a"), "user.tapeless", []byte("v\x00al"), 0) == nil

	got, st := walkAll(t, []string{dir}, WalkOptions{Exclude: []string{"*.tmp"}})
	var paths []string
	byPath := map[string]*Entry{}
	for _, e := range got {
		paths = append(paths, e.Path)
		byPath[e.Path] = e
	}
	want := []string{"B", "a", "b", "b/hard", "b/link", "b/z"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("Walk paths = %q, want %q", paths, want)
	}
	if st.Special != 1 || st.Excluded != 1 || st.Errors != 0 {
		t.Errorf("Walk stats = %+v, want 1 special, 1 excluded, 0 errors", st)
	}
	if e := byPath["b/hard"]; e.LinkTo != "a" {
		t.Errorf("b/hard LinkTo = %q, want a", e.LinkTo)
	}
	if e := byPath["a"]; e.LinkTo != "" || e.Nlink != 2 || e.Size != 5 || e.Type != TypeFile {
		t.Errorf("a = %+v, want first link member of size 5", e)
	}
	if e := byPath["b/link"]; e.Type != TypeSymlink || e.Target != "../a" {
		t.Errorf("b/link = %+v, want symlink to ../a", e)
	}
	if e := byPath["B"]; e.Perm != 0o4755 {
		t.Errorf("B perm = %o, want 4755", e.Perm)
	}
	if e := byPath["b"]; e.Type != TypeDir {
		t.Errorf("b type = %v, want dir", e.Type)
	}
	if xattrOK {
		wantX := []Xattr{{Name: "user.tapeless", Value: []byte("v\x00al")}}
		if x := byPath["a"].Xattrs; !reflect.DeepEqual(x, wantX) {
			t.Errorf("a xattrs = %q, want %q", x, wantX)
		}
	}
}

func TestWalkSeveralSourcesAndErrors(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "one/f"), "1")
	mustWrite(t, filepath.Join(dir, "two"), "2")
	got, _ := walkAll(t, []string{filepath.Join(dir, "one"), filepath.Join(dir, "two")}, WalkOptions{})
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if want := []string{"one", "one/f", "two"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("Walk paths = %q, want %q", paths, want)
	}

	// A source given as a symlink is followed; its contents are walked.
	if err := os.Symlink("one", filepath.Join(dir, "via-link")); err != nil {
		t.Fatal(err)
	}
	got, _ = walkAll(t, []string{filepath.Join(dir, "via-link")}, WalkOptions{})
	if len(got) != 1 || got[0].Path != "f" || got[0].Type != TypeFile {
		t.Errorf("Walk of a symlinked source = %v, want its file f", got)
	}

	if _, err := Walk(context.Background(), []string{filepath.Join(dir, "one"), filepath.Join(dir, "x/one")}, WalkOptions{}, nil); err == nil {
		t.Error("Walk of a missing source succeeded")
	}
	mustWrite(t, filepath.Join(dir, "x/one/g"), "")
	if _, err := Walk(context.Background(), []string{filepath.Join(dir, "one"), filepath.Join(dir, "x/one")}, WalkOptions{}, func(*Entry) error { return nil }); err == nil {
		t.Error("Walk of two sources with one base name succeeded")
	}

	if os.Geteuid() == 0 {
		return // root reads everything; the unreadable case cannot be set up
	}
	locked := filepath.Join(dir, "one/locked")
	mustWrite(t, filepath.Join(locked, "f"), "")
	os.Chmod(locked, 0)
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	var reported []string
	_, st := walkAll(t, []string{filepath.Join(dir, "one")}, WalkOptions{OnError: func(p string, err error) error {
		reported = append(reported, p)
		return nil
	}})
	if st.Errors != 1 || len(reported) != 1 || reported[0] != locked {
		t.Errorf("errors = %d %q, want one for %s", st.Errors, reported, locked)
	}
}

func TestWalkOnErrorAborts(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "f"), "")
	boom := errors.New("boom")
	_, err := Walk(context.Background(), []string{dir}, WalkOptions{}, func(*Entry) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Walk error = %v, want boom", err)
	}
}

func TestDataExtents(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = 1
	}
	for _, off := range []int64{0, 32 << 20} {
		if _, err := f.WriteAt(block, off); err != nil {
			t.Fatal(err)
		}
	}
	ext, err := DataExtents(f, size)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{{0, 1 << 20}, {32 << 20, 1 << 20}}
	if !reflect.DeepEqual(ext, want) {
		t.Errorf("DataExtents = %v, want %v", ext, want)
	}
}

// A device, FIFO or socket given as the whole source is refused: backing it
// up would make an empty point and report success.
func TestWalkRefusesSpecialSource(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "tree/f"), "x")
	for _, src := range [][]string{{"/dev/null"}, {fifo}, {filepath.Join(dir, "tree"), fifo}} {
		_, err := Walk(context.Background(), src, WalkOptions{}, func(*Entry) error { return nil })
		if err == nil {
			t.Errorf("Walk(%q) succeeded, want a refusal", src)
			continue
		}
		bad := src[len(src)-1]
		if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "directories, regular files and symlinks") {
			t.Errorf("Walk(%q) error = %q, want it to name %s and say what can be a source", src, err, bad)
		}
	}
}
