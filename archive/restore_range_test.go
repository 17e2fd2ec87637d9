package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// rangeTestPoint backs up a point of 64 MiB of random files (4 MiB each)
// plus small/one.bin (1 MiB) with the default pack size, offloads it to a
// GRS file vault and returns the vault, its fault wrappers, the keys, the
// point and the small file's content.
func rangeTestPoint(t *testing.T) (testVault, [2]*storagetest.Fault, *Keys, ID, []byte) {
	t.Helper()
	s, k := offloadStore(t)
	s.SetPackSize(DefaultPackSize)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 16 {
		mustWrite(t, filepath.Join(src, fmt.Sprintf("big/%02d.bin", i)), string(randomBytes(uint64(100+i), 4<<20)))
	}
	one := randomBytes(7, 1<<20)
	mustWrite(t, filepath.Join(src, "small/one.bin"), string(one))
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "range"})
	v, faults := fileVault(t)
	offloadAll(t, s, v, time.Now(), OffloadOptions{})
	if ids := localPointIDs(t, s); len(ids) != 0 {
		t.Fatalf("the point is still local after offload")
	}
	return v, faults, k, sum.Point, one
}

// restorePathFromVault restores path of point id from b through a fresh
// staging folder and returns the target.
func restorePathFromVault(t *testing.T, b storage.Backend, k *Keys, id ID, path string) string {
	t.Helper()
	ctx := context.Background()
	st, err := NewStagedVault(ctx, b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewReader(st, k)
	defer r.Close()
	target := t.TempDir()
	if _, err := Restore(ctx, r, id, RestoreOptions{Target: target, Path: path}); err != nil {
		t.Fatalf("Restore %s: %v", path, err)
	}
	return target
}

// A 1 MiB file out of a 64 MiB point in the vault downloads the point and
// index objects, the manifest and that file's blobs, not the packs whole.
func TestRestoreFromVaultFetchesRanges(t *testing.T) {
	v, _, k, id, one := rangeTestPoint(t)
	h, err := LoadPointHeader(context.Background(), v.Primary, id)
	if err != nil {
		t.Fatal(err)
	}
	var packBytes int64
	for _, p := range h.Packs {
		packBytes += p.Size
	}
	if packBytes < 64<<20 {
		t.Fatalf("the point's packs hold %d bytes, want at least 64 MiB", packBytes)
	}
	c := NewCountingBackend(v.target().Backend)
	target := restorePathFromVault(t, c, k, id, "small/one.bin")
	if got, err := os.ReadFile(filepath.Join(target, "small/one.bin")); err != nil || !bytes.Equal(got, one) {
		t.Fatalf("small/one.bin restored wrong (%d bytes, %v)", len(got), err)
	}
	t.Logf("restoring 1 MiB of a point of %.1f MiB in %d packs fetched %.2f MiB", float64(packBytes)/(1<<20), len(h.Packs), float64(c.Fetched())/(1<<20))
	if c.Fetched() >= 8<<20 {
		t.Errorf("restoring a 1 MiB file fetched %d bytes, want well under 8 MiB", c.Fetched())
	}

	// The whole point fetches about its packs' size once: ranges are
	// coalesced, nothing is read twice.
	c = NewCountingBackend(v.target().Backend)
	target = restorePathFromVault(t, c, k, id, "")
	if got, err := os.ReadFile(filepath.Join(target, "big/15.bin")); err != nil || !bytes.Equal(got, randomBytes(115, 4<<20)) {
		t.Fatalf("big/15.bin restored wrong (%d bytes, %v)", len(got), err)
	}
	if c.Fetched() > packBytes+packBytes/10 {
		t.Errorf("restoring the whole point fetched %d bytes, its packs hold %d", c.Fetched(), packBytes)
	}
}

// A range whose blob fails authentication on the primary copy is read
// from the secondary: a range read is checked as it arrives, inside the
// replicated backend's read.
func TestRestoreFromVaultRangeFallsBack(t *testing.T) {
	v, faults, k, id, one := rangeTestPoint(t)
	// Byte 200 of every read: inside the first blob of every blob range
	// (past the 126-byte key block), and inside every point and index
	// object.
	faults[0].CorruptLoads(200)
	var fellBack int
	b := storage.Replicated(v.Primary, v.Secondary, storage.WithFallbackReport(func(f storage.Fallback) {
		if strings.HasPrefix(f.Name, PacksPrefix) && f.Served {
			fellBack++
		}
	}),
		storage.WithContentHash(func(name string) ([32]byte, bool) {
			id, err := ParseID(path.Base(name))
			return id, err == nil
		}))
	target := restorePathFromVault(t, b, k, id, "small/one.bin")
	if got, err := os.ReadFile(filepath.Join(target, "small/one.bin")); err != nil || !bytes.Equal(got, one) {
		t.Fatalf("small/one.bin restored wrong (%d bytes, %v)", len(got), err)
	}
	if fellBack == 0 {
		t.Error("no range of a pack fell back to the secondary copy")
	}

	// Damaged on both copies: the range is refused, nothing is written.
	faults[1].CorruptLoads(200)
	ctx := context.Background()
	st, err := NewStagedVault(ctx, b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewReader(st, k)
	defer r.Close()
	if _, err := Restore(ctx, r, id, RestoreOptions{Target: t.TempDir(), Path: "small/one.bin"}); err == nil {
		t.Error("Restore with both copies damaged succeeded")
	}
}

// The rerun of an interrupted restore into the same target, without
// Overwrite, keeps the files already restored (checked by size and
// SHA-256), replaces what the interrupted run left half written, fetches
// only what is still missing, and still refuses a file that differs.
func TestRestoreResumesIntoSameTarget(t *testing.T) {
	v, _, k, id, one := rangeTestPoint(t)
	c := NewCountingBackend(v.target().Backend)
	target := restorePathFromVault(t, c, k, id, "")
	whole := c.Fetched()

	// As a killed run leaves it: the last files missing, one half written
	// under its temporary name, the rest in place.
	for i := 8; i < 16; i++ {
		os.Remove(filepath.Join(target, fmt.Sprintf("big/%02d.bin", i)))
	}
	os.Remove(filepath.Join(target, "small/one.bin"))
	mustWrite(t, filepath.Join(target, partName("big/08.bin")), "half")
	if err := writeResumeMarker(target, id, ""); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := NewStagedVault(ctx, c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewReader(st, k)
	defer r.Close()
	before := c.Fetched()
	sum, err := Restore(ctx, r, id, RestoreOptions{Target: target})
	if err != nil {
		t.Fatalf("rerun into the same target: %v", err)
	}
	again := c.Fetched() - before
	t.Logf("the whole point fetched %.1f MiB, the rerun with half of it in place %.1f MiB", float64(whole)/(1<<20), float64(again)/(1<<20))
	if again >= whole*3/4 {
		t.Errorf("the rerun fetched %d bytes, the whole restore %d: want about half", again, whole)
	}
	if sum.AlreadyPresent != 8 || sum.Files != 17 {
		t.Errorf("rerun: %d files, %d already present; want 17, 8", sum.Files, sum.AlreadyPresent)
	}
	if got, err := os.ReadFile(filepath.Join(target, "small/one.bin")); err != nil || !bytes.Equal(got, one) {
		t.Errorf("small/one.bin restored wrong (%d bytes, %v)", len(got), err)
	}
	for i := range 16 {
		got, err := os.ReadFile(filepath.Join(target, fmt.Sprintf("big/%02d.bin", i)))
		if err != nil || !bytes.Equal(got, randomBytes(uint64(100+i), 4<<20)) {
			t.Errorf("big/%02d.bin restored wrong (%d bytes, %v)", i, len(got), err)
		}
	}
	if got := listDir(t, filepath.Join(target, "big")); len(got) != 16 {
		t.Errorf("big holds %d entries after the rerun, want the 16 files only: %q", len(got), got)
	}

	if _, err := os.Lstat(filepath.Join(target, resumeMarker)); err == nil {
		t.Error("the finished restore left its marker in the target")
	}

	// A file that differs is in the way, as before.
	mustWrite(t, filepath.Join(target, "big/03.bin"), "mine")
	if _, err := Restore(ctx, r, id, RestoreOptions{Target: target}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("restore over a changed file without Overwrite: err = %v, want ErrExist", err)
	}
}
