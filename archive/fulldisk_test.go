package archive

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// TestBackupWhenTheDiskFills: the store's disk fills while a backup writes
// its packs (an injected ENOSPC, for machines where the full-disk test in
// cmd cannot mount a small filesystem). The backup fails saying so, no
// point is made, the earlier point still verifies with its data read, and
// the next backup, with room again, succeeds.
func TestBackupWhenTheDiskFills(t *testing.T) {
	ctx := context.Background()
	s, k := newTreeTestStore(t)
	s.SetPackSize(64 << 10)
	src := filepath.Join(t.TempDir(), "src")
	randomFiles(t, src, 5, 4)
	first := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a"})

	big := filepath.Join(t.TempDir(), "big")
	randomFiles(t, big, 6, 12)
	f := storagetest.NewFault(s.objects)
	f.FailNth(storage.OpSave, 3, &fs.PathError{Op: "write", Path: "pack", Err: syscall.ENOSPC})
	real := s.objects
	s.objects = f
	_, err := Backup(ctx, s, BackupOptions{Sources: []string{big}, Name: "big"})
	s.objects = real
	if err == nil || !strings.Contains(err.Error(), "is full") || !strings.Contains(err.Error(), "earlier points are intact") {
		t.Fatalf("backup with the disk full: %v; want an error saying the store's disk is full", err)
	}
	s.Close()

	s2, err := OpenStore(ctx, s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	pts, err := s2.ListPoints(ctx)
	if err != nil || len(pts) != 1 || pts[0].ID != first.Point {
		t.Fatalf("points after the failed backup: %v, %v; want only %s", pts, err, first.Point)
	}
	var problems []VerifyProblem
	if _, err := Verify(ctx, s2.Objects(), k, true, 0, func(p VerifyProblem) { problems = append(problems, p) }); err != nil || len(problems) != 0 {
		t.Fatalf("verify --read-data after the failed backup: %v, %v", err, problems)
	}
	again := mustBackup(t, s2, BackupOptions{Sources: []string{big}, Name: "big"})
	dst := t.TempDir()
	mustRestore(t, s2, k, again.Point, RestoreOptions{Target: dst})
	if got := fileContents(t, dst); len(got) != 12 {
		t.Errorf("restored %d files of the backup made with room again, want 12", len(got))
	}
}
