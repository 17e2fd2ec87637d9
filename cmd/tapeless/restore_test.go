package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
)

// TestRestorePartialCLI: with a pack of the point missing, restore refuses
// and points to --partial; restore --partial writes every file that does
// not need it, lists those it could not restore and exits 3.
func TestRestorePartialCLI(t *testing.T) {
	e := newStoreEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"old/a": strings.Repeat("alpha ", 2000), "old/b": strings.Repeat("bravo ", 2000)})
	first := backupJSON(t, e, src, "--name", "web")
	writeTree(t, src, map[string]string{"new/c": strings.Repeat("charlie ", 2000)})
	second := backupJSON(t, e, src, "--name", "web")

	// Lose the first point's pack (the second needs it for old/).
	v, err := archive.OpenStoreView(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	pts, err := archive.ListPoints(context.Background(), v.Objects)
	if err != nil {
		t.Fatal(err)
	}
	var pack string
	for _, p := range pts {
		if p.ID == first.Point {
			pack = archive.PackName(p.Packs[0].Pack)
		}
	}
	if err := v.Objects.Remove(context.Background(), pack); err != nil {
		t.Fatal(err)
	}
	id := second.Point.String()

	dst := filepath.Join(t.TempDir(), "dst")
	code, _, errOut := e.run(t, "restore", id, "--target", dst, "--passphrase-file", e.passFile)
	if code != exitError || !strings.Contains(errOut, "--partial") || !strings.Contains(errOut, "2 files cannot be restored") {
		t.Errorf("restore with a pack missing exited %d, want %d and a hint at --partial: %s", code, exitError, errOut)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("the refused restore created its target")
	}

	code, out, errOut2 := e.run(t, "restore", id, "--target", dst, "--partial", "--passphrase-file", e.passFile)
	if code != exitPartial {
		t.Fatalf("restore --partial exited %d, want %d: %s%s", code, exitPartial, out, errOut2)
	}
	for _, want := range []string{"2 files could not be restored", "old/a", "old/b", pack} {
		if !strings.Contains(out+errOut2, want) {
			t.Errorf("restore --partial output does not mention %q:\n%s%s", want, out, errOut2)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "new/c")); err != nil || string(b) != strings.Repeat("charlie ", 2000) {
		t.Errorf("new/c not restored: %v", err)
	}

	dst2 := filepath.Join(t.TempDir(), "dst")
	code, out, _ = e.run(t, "--json", "restore", id, "--target", dst2, "--partial", "--passphrase-file", e.passFile)
	var sum archive.RestoreSummary
	if code != exitPartial || json.Unmarshal([]byte(out), &sum) != nil || sum.NotRestoredCount != 2 || len(sum.NotRestored) != 2 || sum.Files != 1 {
		t.Errorf("restore --partial --json exited %d, printed %q; want exit 3, 1 file restored, 2 listed", code, out)
	}
}
