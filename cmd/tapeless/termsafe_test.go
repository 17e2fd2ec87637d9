package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"home":              "home",
		"/srv/data,/etc":    "/srv/data,/etc",
		"café ünïcode":      "café ünïcode",
		"a\nb":              `"a\nb"`,
		"red\x1b[31mtext":   `"red\x1b[31mtext"`,
		"bell\a":            `"bell\a"`,
		"c1\u009bx":         `"c1\u009bx"`,
		"bad\xffutf8":       `"bad\xffutf8"`,
		"replacement\ufffd": "replacement\ufffd",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %s, want %s", in, got, want)
		}
	}
	if got, want := termSafeText("line one\n\tclear\x1b[2J\xfe"), "line one\n\tclear\\x1b[2J\\xfe"; got != want {
		t.Errorf("termSafeText = %q, want %q", got, want)
	}
}

// A source name or path holding terminal escapes reaches the table and the
// error output escaped; --json keeps it exact.
func TestTablesEscapeControlCharacters(t *testing.T) {
	e := newStoreEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"f": "data"})
	evil := "evil\x1b[2J\nname"
	if code, _, errOut := e.run(t, "backup", src, "--name", evil); code != exitOK {
		t.Fatalf("backup exited %d: %s", code, errOut)
	}
	code, out, _ := e.run(t, "points")
	if code != exitOK || strings.ContainsAny(out, "\x1b") || !strings.Contains(out, `"evil\x1b[2J\nname"`) {
		t.Errorf("points table = %q, want the name escaped and no raw ESC", out)
	}
	if lines := strings.Count(strings.TrimSpace(out), "\n"); lines != 1 {
		t.Errorf("points table has %d lines after the header, want 1: %q", lines, out)
	}
	_, out, _ = e.run(t, "--json", "points")
	var pl pointsJSON
	if err := json.Unmarshal([]byte(out), &pl); err != nil || len(pl.Points) != 1 || pl.Points[0].Source != evil {
		t.Errorf("points --json = %q (%v), want the exact name", out, err)
	}
	_, _, errOut := e.run(t, "backup", filepath.Join(src, "missing\x1b]0;title\a"))
	if strings.ContainsAny(errOut, "\x1b\a") || !strings.Contains(errOut, `\x1b]0;title\a`) {
		t.Errorf("backup error = %q, want the control characters escaped", errOut)
	}
}
