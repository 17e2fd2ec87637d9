package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// smallDisk mounts a tmpfs of sizeMiB for the test and returns its path.
// It skips where mounting is not allowed (not root, or a container
// without the capability); the same failure inside the store is also
// covered by archive's injected-ENOSPC test.
func smallDisk(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+itoa(sizeMiB)+"m", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small tmpfs for the full-disk test (%v: %s); needs root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestBackupOnAFullDisk: the store sits on a small filesystem. A backup
// larger than the space left fails with an error that says the disk is
// full, leaves no point behind (nor temporary files), the earlier point
// still verifies with its data read, and prune still runs.
func TestBackupOnAFullDisk(t *testing.T) {
	s := newSession(t)
	disk := smallDisk(t, 24)
	const pass = "full disk test passphrase"
	_, _, creds := fileVault(t, s, "full")
	dir := t.TempDir()
	passFile := writeFile(t, filepath.Join(dir, "pass"), pass)
	s.ok("register", "--credentials", creds, "--passphrase-file", passFile, "--store", filepath.Join(disk, "store"), "--server", "host1")

	small := filepath.Join(dir, "small")
	writeRandom(t, filepath.Join(small, "a"), 1<<20, 1)
	first := s.backupJSON(small, "--name", "small")

	big := filepath.Join(dir, "big")
	for i := range 4 {
		writeRandom(t, filepath.Join(big, "f"+itoa(i)), 8<<20, uint64(10+i))
	}
	code, out, errOut := s.run("backup", big, "--name", "big")
	if code == exitOK {
		t.Fatalf("a 32 MiB backup onto a 24 MiB disk succeeded:\n%s\n%s", out, errOut)
	}
	t.Logf("backup on the full disk: exit %d: %s", code, strings.TrimSpace(errOut))
	if !strings.Contains(errOut, "no space left on device") || !strings.Contains(errOut, "earlier points are intact") {
		t.Errorf("backup on a full disk: exit %d, stderr %q; want it to say the disk is full", code, errOut)
	}

	var listing struct {
		Points []struct {
			ID string `json:"id"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(s.ok("--json", "points")), &listing); err != nil {
		t.Fatal(err)
	}
	if pts := listing.Points; len(pts) != 1 || pts[0].ID != first.Point.String() {
		t.Errorf("points after the failed backup: %+v; want only %s", listing.Points, first.Point)
	}
	s.ok("verify", "--read-data", "--passphrase-file", passFile)
	s.ok("prune")
	target := filepath.Join(dir, "restored")
	s.ok("restore", first.Point.String(), "--target", target, "--passphrase-file", passFile)
	if got, want := mustRead(t, filepath.Join(target, "a")), mustRead(t, filepath.Join(small, "a")); string(got) != string(want) {
		t.Error("the point made before the disk filled restored different bytes")
	}
	// Nothing half-written is left to fill the disk for the next run.
	var leftovers []string
	filepath.Walk(filepath.Join(disk, "store"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && (strings.Contains(fi.Name(), ".tmp") || strings.HasPrefix(fi.Name(), ".")) {
			leftovers = append(leftovers, p)
		}
		return nil
	})
	if len(leftovers) > 0 {
		t.Errorf("temporary files left in the store after the failed backup: %v", leftovers)
	}
	// With room again (the big tree gone), a backup succeeds.
	s.backupJSON(small, "--name", "small")
}

func writeRandom(t *testing.T, p string, n int, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	var key [32]byte
	key[0] = byte(seed)
	rand.NewChaCha8(key).Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
