package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
)

// TestSourceCommands: source add checks like config check and writes
// nothing when a check fails; list and remove see what add wrote.
func TestSourceCommands(t *testing.T) {
	e := newStoreEnv(t)
	src := t.TempDir()
	list := filepath.Join(t.TempDir(), "excludes")
	if err := os.WriteFile(list, []byte("*.o\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"bad pattern and schedule at once", []string{"source", "add", "web", src, "--exclude", "[", "--schedule", "not a cron"}, exitUsage,
			[]string{`--exclude [: invalid exclude pattern "["`, `--schedule: invalid schedule "not a cron"`}},
		{"missing path", []string{"source", "add", "web", src + "-gone"}, exitUsage, []string{"path: " + src + "-gone: does not exist"}},
		{"unreadable exclude file", []string{"source", "add", "web", src, "--exclude-file", list + "-gone"}, exitUsage, []string{"--exclude-file: exclude file: open"}},
		{"name taken", []string{"source", "add", "docs", src}, exitUsage, []string{`a source named "docs" already exists`}},
		{"name with a slash", []string{"source", "add", "a/b", src}, exitUsage, []string{"holds a /"}},
		{"one path", []string{"source", "add", "web"}, exitUsage, []string{"NAME and PATH"}},
		{"remove unknown", []string{"source", "remove", "nosuch"}, exitError, []string{`no source named "nosuch" (configured: docs)`}},
	} {
		code, out, errOut := e.run(t, c.args...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", c.name, code, c.code, out, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr %q, want %q", c.name, errOut, w)
			}
		}
		if after, _ := os.ReadFile(e.config); string(after) != string(before) {
			t.Errorf("%s: the configuration changed", c.name)
		}
	}

	code, out, errOut := e.run(t, "source", "add", "web", src, "--exclude", "**/cache/", "--exclude-file", list,
		"--exclude-caches", "--one-file-system", "--schedule", "@every 6h")
	if code != exitOK || !strings.Contains(out, "Source web added: "+src) {
		t.Fatalf("source add exited %d: %s%s", code, out, errOut)
	}
	cfg, err := loadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	want := sourceConfig{Name: "web", Path: src, Schedule: "@every 6h", Exclude: []string{"**/cache/"}, ExcludeFile: []string{list},
		ExcludeCaches: true, OneFileSystem: true}
	if len(cfg.Sources) != 2 || !reflect.DeepEqual(cfg.Sources[1], want) {
		t.Errorf("configured sources after add = %+v, want docs and %+v", cfg.Sources, want)
	}
	code, out, _ = e.run(t, "source", "list")
	if code != exitOK || !strings.Contains(out, "NAME") || !strings.Contains(out, "web") || !strings.Contains(out, "@every 6h") || !strings.Contains(out, "one-file-system") {
		t.Errorf("source list exited %d:\n%s", code, out)
	}
	code, out, _ = e.run(t, "--json", "source", "list")
	var l struct {
		Sources []sourceJSON `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != exitOK || len(l.Sources) != 2 || l.Sources[1].Name != "web" || l.Sources[0].ExcludeFile == nil {
		t.Errorf("source list --json exited %d: %s", code, out)
	}
	if code, out, errOut := e.run(t, "source", "remove", "docs"); code != exitOK || !strings.Contains(out, "Source docs removed") {
		t.Errorf("source remove exited %d: %s%s", code, out, errOut)
	}
	if cfg, _ := loadConfig(e.config); len(cfg.Sources) != 1 || cfg.Sources[0].Name != "web" {
		t.Errorf("sources after remove: %+v", cfg.Sources)
	}
}

// TestBackupConfiguredExcludes: a configured source's exclude, exclude
// file, exclude_caches and the tree's .tapelessignore all apply through
// 'tapeless backup NAME', and the summary says why entries were left out.
func TestBackupConfiguredExcludes(t *testing.T) {
	e := newStoreEnv(t)
	cfg, err := loadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Sources[0].Path
	writeTree(t, src, map[string]string{
		"keep.txt": "k", "drop.tmp": "d", // exclude: *.tmp
		"a/node_modules/x.js": "x", "a/b/node_modules/y.js": "y", // exclude_file: **/node_modules/
		"cache/" + archive.CacheTagName: archive.CacheTagSignature + "\n", "cache/blob": "b", // exclude_caches
		"proj/" + archive.IgnoreFileName: "*.o\n", "proj/main.o": "o", "proj/main.c": "c", // .tapelessignore
	})
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.config), "excludes"), []byte("# from the exclude file\n**/node_modules/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Sources[0].ExcludeFile = []string{"excludes"} // relative to the config file
	cfg.Sources[0].ExcludeCaches = true
	if err := saveConfig(e.config, cfg); err != nil {
		t.Fatal(err)
	}
	sum := backupJSON(t, e, "docs")
	wantBy := archive.ExcludeCounts{Pattern: 3, IgnoreFile: 1, Caches: 1}
	if sum.Excluded != 5 || sum.ExcludedBy != wantBy || sum.Files != 4 {
		t.Errorf("backup summary: %d files, %d excluded %+v; want 4 files (keep.txt, the tag, the ignore file, main.c), 5 excluded %+v", sum.Files, sum.Excluded, sum.ExcludedBy, wantBy)
	}
	code, out, errOut := e.run(t, "backup", "docs")
	if code != exitOK || !strings.Contains(out, "5 excluded (3 by pattern, 1 by .tapelessignore, 1 in caches)") {
		t.Errorf("backup exited %d, summary:\n%s%s", code, out, errOut)
	}

	// An invalid pattern stops the backup before anything is written.
	pts, _ := filepath.Glob(filepath.Join(e.store, "objects", "points", "*"))
	code, _, errOut = e.run(t, "backup", src, "--exclude", "[")
	if code != exitUsage || !strings.Contains(errOut, `invalid exclude pattern "["`) {
		t.Errorf("backup --exclude '[' exited %d: %s", code, errOut)
	}
	cfg.Sources[0].Exclude = []string{"a/[b"}
	if err := saveConfig(e.config, cfg); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = e.run(t, "backup", "docs")
	if code != exitError || !strings.Contains(errOut, `invalid exclude pattern "a/[b"`) {
		t.Errorf("backup of a source with an invalid pattern exited %d: %s", code, errOut)
	}
	if after, _ := filepath.Glob(filepath.Join(e.store, "objects", "points", "*")); len(after) != len(pts) {
		t.Errorf("a refused backup made a point: %d points, then %d", len(pts), len(after))
	}
}
