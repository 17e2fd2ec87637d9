package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// walkPaths walks dir and returns the point paths it yielded.
func walkPaths(t *testing.T, dir string, o WalkOptions) ([]string, WalkStats) {
	t.Helper()
	got, st := walkAll(t, []string{dir}, o)
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	return paths, st
}

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExcludeGitignoreSemantics: each pattern form of .gitignore, run
// through a real walk.
func TestExcludeGitignoreSemantics(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"a.tmp", "keep.tmp", "src/b.tmp", "src/deep/c.tmp", "src/main.go",
		"build/out", "src/build/out", "build.txt",
		"logs/x.log", "logs/sub/y.log",
		"home/u1/.cache/blob", "home/u2/.cache/blob", "home/u1/notes",
		"a/b", "a/x/y/b", "id_rsa", "src/deep/id_rsa",
		"cache", // a file named like a directory pattern
		"!bang",
	} {
		mustWrite(t, filepath.Join(dir, f), f)
	}
	mkdirs(t, filepath.Join(dir, "sub/cache"))
	for _, c := range []struct {
		name     string
		patterns []string
		gone     []string // must not be yielded
		kept     []string // must be yielded
	}{
		{"unanchored name at any depth", []string{"*.tmp"}, []string{"a.tmp", "src/b.tmp", "src/deep/c.tmp"}, []string{"src/main.go"}},
		{"double star any depth", []string{"**/id_rsa"}, []string{"id_rsa", "src/deep/id_rsa"}, []string{"src/main.go"}},
		{"double star in the middle", []string{"a/**/b"}, []string{"a/b", "a/x/y/b"}, []string{"a", "a/x", "a/x/y"}},
		{"trailing double star keeps the dir", []string{"logs/**"}, []string{"logs/x.log", "logs/sub", "logs/sub/y.log"}, []string{"logs"}},
		{"anchored by a leading slash", []string{"/build"}, []string{"build", "build/out"}, []string{"src/build/out", "build.txt"}},
		{"unanchored dir name", []string{"build"}, []string{"build", "src/build"}, []string{"build.txt"}},
		{"anchored by a middle slash", []string{"home/*/.cache"}, []string{"home/u1/.cache", "home/u2/.cache/blob"}, []string{"home/u1/notes"}},
		{"trailing slash is dirs only", []string{"cache/"}, []string{"sub/cache"}, []string{"cache"}},
		{"negation re-includes", []string{"*.tmp", "!keep.tmp"}, []string{"a.tmp"}, []string{"keep.tmp"}},
		{"negation cannot reach below an excluded dir", []string{"src/", "!src/main.go"}, []string{"src", "src/main.go"}, nil},
		{"escaped bang", []string{`\!bang`}, []string{"!bang"}, nil},
		{"old path.Match pattern with a slash", []string{"src/*.tmp"}, []string{"src/b.tmp"}, []string{"src/deep/c.tmp", "a.tmp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			paths, st := walkPaths(t, dir, WalkOptions{Exclude: c.patterns})
			has := map[string]bool{}
			for _, p := range paths {
				has[p] = true
			}
			for _, p := range c.gone {
				if has[p] {
					t.Errorf("%q: %s was walked", c.patterns, p)
				}
			}
			for _, p := range c.kept {
				if !has[p] {
					t.Errorf("%q: %s was excluded", c.patterns, p)
				}
			}
			if st.Excluded == 0 || st.Excluded != st.ExcludedBy.Pattern {
				t.Errorf("%q: stats %+v, want every exclusion counted as a pattern's", c.patterns, st)
			}
		})
	}
}

func TestExcludeInvalidPatternsRefused(t *testing.T) {
	dir := t.TempDir()
	_, err := Walk(context.Background(), []string{dir}, WalkOptions{Exclude: []string{"[", "ok", "a/[b"}}, func(*Entry) error { return nil })
	if !errors.Is(err, ErrBadExclude) || !strings.Contains(err.Error(), `"["`) || !strings.Contains(err.Error(), `"a/[b"`) {
		t.Errorf("Walk with invalid patterns: %v, want both named", err)
	}
	if _, err := CompileExcludes([]string{""}); !errors.Is(err, ErrBadExclude) {
		t.Errorf("CompileExcludes(empty) = %v", err)
	}
}

func TestExcludeFile(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "src/a.o"), "")
	mustWrite(t, filepath.Join(dir, "src/a.c"), "")
	mustWrite(t, filepath.Join(dir, "trail "), "")
	list := filepath.Join(t.TempDir(), "excludes")
	mustWrite(t, list, "# objects\n\n*.o\r\ntrail\\ \n")
	paths, st := walkPaths(t, dir, WalkOptions{ExcludeFiles: []string{list}})
	if want := []string{"src", "src/a.c"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("walk with exclude file = %q, want %q", paths, want)
	}
	if st.ExcludedBy.Pattern != 2 {
		t.Errorf("stats %+v, want 2 excluded by pattern", st)
	}
	_, err := Walk(context.Background(), []string{dir}, WalkOptions{ExcludeFiles: []string{filepath.Join(dir, "missing")}}, func(*Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Walk with a missing exclude file: %v", err)
	}
	mustWrite(t, list, "[\n")
	if _, err := Walk(context.Background(), []string{dir}, WalkOptions{ExcludeFiles: []string{list}}, func(*Entry) error { return nil }); !errors.Is(err, ErrBadExclude) {
		t.Errorf("Walk with an invalid pattern in an exclude file: %v", err)
	}
}

// TestIgnoreFiles: .tapelessignore patterns are relative to their
// directory, a deeper file overrides a higher one, the command line
// overrides both, and a broken file is reported and not applied.
func TestIgnoreFiles(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, IgnoreFileName), "*.log\n/top-only\n")
	mustWrite(t, filepath.Join(dir, "top-only"), "")
	mustWrite(t, filepath.Join(dir, "a.log"), "")
	mustWrite(t, filepath.Join(dir, "proj", IgnoreFileName), "!keep.log\n/build/\n")
	mustWrite(t, filepath.Join(dir, "proj/keep.log"), "")
	mustWrite(t, filepath.Join(dir, "proj/other.log"), "")
	mustWrite(t, filepath.Join(dir, "proj/build/x"), "")
	mustWrite(t, filepath.Join(dir, "proj/top-only"), "")
	mustWrite(t, filepath.Join(dir, "proj/sub/build/y"), "")
	mustWrite(t, filepath.Join(dir, "bad", IgnoreFileName), "z.txt\n[\n")
	mustWrite(t, filepath.Join(dir, "bad/z.txt"), "") // kept: a broken file applies not even its good lines

	var reported []string
	o := WalkOptions{IgnoreFile: IgnoreFileName, OnError: func(p string, err error) error {
		reported = append(reported, p+": "+err.Error())
		return nil
	}}
	paths, st := walkPaths(t, dir, o)
	want := []string{
		IgnoreFileName, "bad", "bad/" + IgnoreFileName, "bad/z.txt",
		"proj", "proj/" + IgnoreFileName, "proj/keep.log", "proj/sub", "proj/sub/build", "proj/sub/build/y", "proj/top-only",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("walk with ignore files =\n%q\nwant\n%q", paths, want)
	}
	if st.ExcludedBy.IgnoreFile != 4 || st.Excluded != 4 || st.Errors != 1 {
		t.Errorf("stats %+v, want 4 excluded by ignore files and 1 error", st)
	}
	if len(reported) != 1 || !strings.Contains(reported[0], filepath.Join("bad", IgnoreFileName)) || !strings.Contains(reported[0], "invalid exclude pattern") {
		t.Errorf("reported %q, want the broken ignore file", reported)
	}

	o.Exclude = []string{"keep.log"}
	paths, _ = walkPaths(t, dir, o)
	for _, p := range paths {
		if p == "proj/keep.log" {
			t.Error("--exclude did not override an ignore file's !keep.log")
		}
	}
}

func TestExcludeCaches(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "cache", CacheTagName), CacheTagSignature+"\n# This file is a cache directory tag.\n")
	mustWrite(t, filepath.Join(dir, "cache/blob1"), "x")
	mustWrite(t, filepath.Join(dir, "cache/sub/blob2"), "x")
	mustWrite(t, filepath.Join(dir, "fake", CacheTagName), "Signature: not the right one\n")
	mustWrite(t, filepath.Join(dir, "fake/data"), "x")

	paths, st := walkPaths(t, dir, WalkOptions{ExcludeCaches: true})
	want := []string{"cache", "cache/" + CacheTagName, "fake", "fake/" + CacheTagName, "fake/data"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("walk with ExcludeCaches = %q, want %q", paths, want)
	}
	if st.ExcludedBy.Caches != 2 || st.Excluded != 2 {
		t.Errorf("stats %+v, want 2 excluded as caches", st)
	}
	paths, _ = walkPaths(t, dir, WalkOptions{})
	if len(paths) != 8 {
		t.Errorf("walk without ExcludeCaches = %q, want all 8 entries", paths)
	}
}

// TestOneFileSystem fakes a mount point through devOf: mounting needs
// privileges a test does not have. The decision (leavesFileSystem) and its
// place in the walk are what is tested; the device numbers are the real
// st_dev everywhere else.
func TestOneFileSystem(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "home/a"), "")
	mustWrite(t, filepath.Join(dir, "mnt/usb/photo"), "")
	mustWrite(t, filepath.Join(dir, "mnt/usb/more/photo2"), "")
	devOf := func(e *Entry) uint64 {
		if e.Path == "mnt/usb" || strings.HasPrefix(e.Path, "mnt/usb/") {
			return e.Dev + 1
		}
		return e.Dev
	}
	paths, st := walkPaths(t, dir, WalkOptions{OneFileSystem: true, devOf: devOf})
	if want := []string{"home", "home/a", "mnt", "mnt/usb"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("walk with OneFileSystem = %q, want %q (the mount point stored, not entered)", paths, want)
	}
	if st.ExcludedBy.OtherFS != 1 || st.Excluded != 1 {
		t.Errorf("stats %+v, want 1 mount point not entered", st)
	}
	paths, _ = walkPaths(t, dir, WalkOptions{devOf: devOf})
	if len(paths) != 7 {
		t.Errorf("walk without OneFileSystem = %q, want all 7 entries", paths)
	}
	// With the real device numbers nothing under a temporary directory
	// is another file system.
	paths, _ = walkPaths(t, dir, WalkOptions{OneFileSystem: true})
	if len(paths) != 7 {
		t.Errorf("walk with OneFileSystem on one file system = %q, want all 7 entries", paths)
	}
	if !leavesFileSystem(1, 2) || leavesFileSystem(3, 3) {
		t.Error("leavesFileSystem")
	}
}
