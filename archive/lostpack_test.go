package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// BenchmarkUnchangedBackup times a backup of 4000 small files that the
// file cache says are unchanged, over a store whose packs are small (about
// 300 of them), so a per-pack cost of the dedup check shows.
func BenchmarkUnchangedBackup(b *testing.B) {
	s, _ := newStoreForTest(b, treeTestPassphrase)
	s.SetPackSize(64 << 10)
	src := filepath.Join(b.TempDir(), "src")
	for i := range 4000 {
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, treeRandom(uint64(i), 4<<10+i%4096), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	first := mustBackup(b, s, BackupOptions{Sources: []string{src}, Name: "bench"})
	packs, _ := s.Packs(b.Context())
	b.Logf("first backup: %d files, %d packs", first.Files, len(packs))
	// CPU time as well as wall time: on a shared machine the wall time
	// of a 200 ms run varies by half.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	for range b.N {
		sum := mustBackup(b, s, BackupOptions{Sources: []string{src}, Name: "bench"})
		if sum.FilesRead != 0 {
			b.Fatalf("unchanged backup read %d files", sum.FilesRead)
		}
	}
	b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// randomFiles writes n incompressible files of 20–50 KiB under dir, with
// content no other seed shares.
func randomFiles(t testing.TB, dir string, seed uint64, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("f%02d", i)
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], seed)
		binary.LittleEndian.PutUint64(key[8:], uint64(i))
		data := make([]byte, 20<<10+int(seed*7919+uint64(i)*104729)%(30<<10))
		rand.NewChaCha8(key).Read(data)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = string(data)
	}
	return want
}

// dataPack returns the largest pack of a point: one that holds file data.
// Packs are listed by ID, so the first may hold only tree blobs, which a
// backup stores again too but does not count as new chunks.
func dataPack(h PointHeader) PackRef {
	big := h.Packs[0]
	for _, r := range h.Packs {
		if r.Size > big.Size {
			big = r
		}
	}
	return big
}

// pointOf returns the clear header of a point in the store.
func pointOf(t testing.TB, s *Store, id ID) PointHeader {
	t.Helper()
	hs, err := s.ListPoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.ID == id {
			return h
		}
	}
	t.Fatalf("point %s is not in the store", id)
	return PointHeader{}
}

// TestBackupStoresALostPackAgain: a pack file removed from the store
// behind its back (or cut short) must not be deduplicated against. The next backup, on the
// same open Store as a daemon would hold it, with or without the file
// cache, stores that data again and names the missing pack; the new point
// restores; verify blames only the old point; the loss is reported once.
func TestBackupStoresALostPackAgain(t *testing.T) {
	lose := map[string]func(t *testing.T, p string){
		"removed": func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		},
		"truncated": func(t *testing.T, p string) {
			if err := os.Truncate(p, 1000); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, c := range []struct {
		how     string
		noCache bool
	}{{"removed", false}, {"removed", true}, {"truncated", false}} {
		noCache := c.noCache
		t.Run(fmt.Sprintf("%s/NoCache=%v", c.how, noCache), func(t *testing.T) {
			ctx := context.Background()
			s, k := newTreeTestStore(t)
			s.SetPackSize(64 << 10)
			src := filepath.Join(t.TempDir(), "src")
			want := randomFiles(t, src, 1, 8)
			first := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a"})
			h := pointOf(t, s, first.Point)
			if len(h.Packs) < 3 {
				t.Fatalf("first point has %d packs, want several", len(h.Packs))
			}
			lost := dataPack(h).Pack
			lose[c.how](t, objectPath(s, PackName(lost)))

			second := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a", NoCache: noCache})
			if second.NewStoredBytes == 0 || second.NewChunks == 0 {
				t.Errorf("backup after the loss stored %d chunks, %d bytes; want the lost ones stored again", second.NewChunks, second.NewStoredBytes)
			}
			if len(second.MissingPacks) != 1 || second.MissingPacks[0] != lost {
				t.Errorf("backup after the loss reports missing packs %v, want [%s]", second.MissingPacks, lost)
			}
			if !second.Partial() {
				t.Error("backup after the loss is not partial: the damage would go unnoticed")
			}
			for _, r := range pointOf(t, s, second.Point).Packs {
				if r.Pack == lost {
					t.Errorf("the new point lists the lost pack %s", lost)
				}
			}
			dst := t.TempDir()
			mustRestore(t, s, k, second.Point, RestoreOptions{Target: dst})
			got := fileContents(t, dst)
			if len(got) != len(want) {
				t.Errorf("restored %d files, want %d", len(got), len(want))
			}
			for name, c := range want {
				if got[name] != c {
					t.Errorf("restored %s differs", name)
				}
			}

			var problems []string
			if _, err := Verify(ctx, s.Objects(), k, false, 0, func(p VerifyProblem) { problems = append(problems, p.Error()) }); err != nil {
				t.Fatal(err)
			}
			if !mentions(problems, PackName(lost)) || !strings.Contains(strings.Join(problems, "\n"), first.Point.String()) {
				t.Errorf("verify problems %q do not name the lost pack %s and point %s", problems, PackName(lost), first.Point)
			}
			if strings.Contains(strings.Join(problems, "\n"), second.Point.String()) {
				t.Errorf("verify blames the new, intact point: %q", problems)
			}

			third := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a"})
			if len(third.MissingPacks) != 0 || third.NewStoredBytes != 0 || third.FilesRead != 0 {
				t.Errorf("third backup: missing %v, stored %d new bytes, read %d files; want nothing", third.MissingPacks, third.NewStoredBytes, third.FilesRead)
			}
		})
	}
}

// TestOffloadGoesOnPastAPointWithALostPack: a local point whose pack is
// gone is reported as damaged, by name, and kept; every other point is
// offloaded, this run and the next.
func TestOffloadGoesOnPastAPointWithALostPack(t *testing.T) {
	ctx := context.Background()
	s, _ := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	srcA, srcB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	randomFiles(t, srcA, 1, 12)
	randomFiles(t, srcB, 2, 12)
	a, err := Backup(ctx, s, BackupOptions{Sources: []string{srcA}, Name: "a", Now: now.Add(-72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Backup(ctx, s, BackupOptions{Sources: []string{srcB}, Name: "b", Now: now.Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ha := pointOf(t, s, a.Point)
	lost := PackName(ha.Packs[0].Pack)
	if err := os.Remove(objectPath(s, lost)); err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		plan, err := PlanOffload(ctx, s, offloadAllBut(0))
		if err != nil {
			t.Fatalf("run %d: PlanOffload: %v", run, err)
		}
		res, err := Offload(ctx, s, v.target(), plan, OffloadOptions{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("run %d: Offload: %v", run, err)
		}
		if len(res.Incomplete) != 1 || res.Incomplete[0].Point != a.Point || !slices.Contains(res.Incomplete[0].Missing, lost) {
			t.Errorf("run %d: damaged %+v, want point %s missing %s", run, res.Incomplete, a.Point, lost)
		}
		if run == 0 && (len(res.Archived) != 1 || res.Archived[0] != b.Point) {
			t.Errorf("run %d: archived %v, want only %s", run, res.Archived, b.Point)
		}
		if ids := localPointIDs(t, s); len(ids) != 1 || ids[0] != a.Point {
			t.Errorf("run %d: local points %v, want the damaged %s kept", run, ids, a.Point)
		}
		for _, r := range ha.Packs[1:] {
			if _, err := s.Objects().Stat(ctx, PackName(r.Pack)); err != nil {
				t.Errorf("run %d: an intact pack of the damaged point is gone: %v", run, err)
			}
		}
	}
	for _, c := range v.Copies() {
		if _, err := c.Stat(ctx, PointName(a.Point)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the damaged point reached %s: %v", c.Location(), err)
		}
		checkComplete(t, c, b.Point)
	}
	if e, ok, err := catalogGet(s, a.Point); err != nil || (ok && e.Archived()) {
		t.Errorf("catalogue entry of the damaged point: %+v, %v, %v; want not archived", e, ok, err)
	}
}

// TestBackupOverridesEntriesIntoAnUnrecordedLostPack: a dedup index whose
// blob entries name a pack it has no record of (a damaged state.db), with
// the pack gone too. The entries cannot be found through the pack, so the
// new copies of the blobs must replace them, or the point could not be
// saved.
func TestBackupOverridesEntriesIntoAnUnrecordedLostPack(t *testing.T) {
	s, k := newTreeTestStore(t)
	s.SetPackSize(64 << 10)
	src := filepath.Join(t.TempDir(), "src")
	want := randomFiles(t, src, 3, 6)
	first := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a"})
	lost := dataPack(pointOf(t, s, first.Point)).Pack
	err := s.DB().Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketPackBlobs).Delete(lost[:]); err != nil {
			return err
		}
		return tx.Bucket(bucketPacks).Delete(lost[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(objectPath(s, PackName(lost))); err != nil {
		t.Fatal(err)
	}
	second := mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "a", NoCache: true})
	if len(second.MissingPacks) != 1 || second.MissingPacks[0] != lost || second.NewChunks == 0 {
		t.Errorf("backup: missing packs %v, %d new chunks; want [%s] and its chunks stored again", second.MissingPacks, second.NewChunks, lost)
	}
	dst := t.TempDir()
	mustRestore(t, s, k, second.Point, RestoreOptions{Target: dst})
	if got := fileContents(t, dst); len(got) != len(want) {
		t.Errorf("restored %d files, want %d", len(got), len(want))
	}
}
