package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	info := func(main string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: main}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, c := range []struct {
		name, stamped string
		info          func() (*debug.BuildInfo, bool)
		want          string
	}{
		{"stamped by make", "v0.3.0-4-gabc", info("v9.9.9"), "v0.3.0-4-gabc"},
		{"go install @version", "dev", info("v1.2.3"), "1.2.3"},
		{"go build in a checkout", "dev", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "devel-0123456789ab"},
		{"dirty checkout", "dev", info("(devel)", "vcs.revision", "0123456789abcdef", "vcs.modified", "true"), "devel-0123456789ab-dirty"},
		{"nothing known", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", none, "dev"},
	} {
		if got := resolveVersion(c.stamped, c.info); got != c.want {
			t.Errorf("%s: resolveVersion = %q, want %q", c.name, got, c.want)
		}
	}
}

// The hidden man command writes a page per command, generated from the
// same tree as --help.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd(t, "man", dir, "--quiet")
	if code != exitOK {
		t.Fatalf("man exited %d: %s", code, errOut)
	}
	for _, page := range []string{"tapeless.1", "tapeless-backup.1", "tapeless-restore.1", "tapeless-vault-create.1"} {
		b := mustRead(t, dir+"/"+page)
		if len(b) == 0 || !containsAll(string(b), ".TH \"TAPELESS\" \"1\"", ".SH NAME") {
			t.Errorf("%s is not a man page: %.200q", page, b)
		}
	}
	if b := mustRead(t, dir+"/tapeless-backup.1"); !strings.Contains(string(b), "--name") && !strings.Contains(string(b), `\-\-name`) {
		t.Errorf("tapeless-backup.1 lacks the --name flag: %.400q", b)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
