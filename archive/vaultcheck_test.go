package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
)

// twoCopies makes a store with three points and copies its objects to two
// file backends, as an offload to a GRS vault leaves them.
func twoCopies(t *testing.T) (copies []VaultCopy, dirs []string, points []ID, k *Keys) {
	t.Helper()
	s, k := newTreeTestStore(t)
	s.SetPackSize(64 << 10)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 3 {
		mustWrite(t, filepath.Join(src, fmt.Sprintf("f%d.txt", i)), string(textLike(uint64(i), 200<<10)))
		points = append(points, mustBackup(t, s, BackupOptions{Sources: []string{src}, Name: "v"}).Point)
	}
	ctx := context.Background()
	for _, name := range []string{"primary", "secondary"} {
		dir := filepath.Join(t.TempDir(), name)
		b, err := storage.NewFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		for _, prefix := range archivePrefixes {
			for _, n := range objectNames(t, s.Objects(), prefix) {
				data, err := loadWhole(ctx, s.Objects(), n)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Save(ctx, n, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
			}
		}
		copies = append(copies, VaultCopy{Name: name, B: b})
		dirs = append(dirs, dir)
	}
	return copies, dirs, points, k
}

func damage(t *testing.T, dir, name string, f func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAndRepairVaultCopies(t *testing.T) {
	ctx := context.Background()
	copies, dirs, points, k := twoCopies(t)
	packs := objectNames(t, copies[0].B, PacksPrefix)
	indexes := objectNames(t, copies[0].B, IndexPrefix)
	if len(packs) < 3 {
		t.Fatalf("want several packs, have %d", len(packs))
	}
	flipped, deleted, truncated := packs[0], packs[1], indexes[2]
	damage(t, dirs[0], flipped, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	if err := copies[1].B.Remove(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	damage(t, dirs[0], truncated, func(b []byte) []byte { return b[:len(b)-10] })

	for _, key := range []*Keys{nil, k} {
		check, err := CheckVault(ctx, copies, key, CheckOptions{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]CopyProblem{}
		for _, p := range check.Problems {
			got[p.Copy+" "+p.Object] = p
		}
		for _, want := range []string{"primary " + flipped, "secondary " + deleted, "primary " + truncated} {
			p, ok := got[want]
			if !ok {
				t.Errorf("key %v: no problem reported for %s; got %v", key != nil, want, check.Problems)
				continue
			}
			if len(p.Points) == 0 || !slices.ContainsFunc(p.Points, func(id ID) bool { return slices.Contains(points, id) }) {
				t.Errorf("%s: hurt points %v, want some of %v", want, p.Points, points)
			}
		}
		for k, p := range got {
			// The secondary's index object of the deleted pack says so.
			if strings.HasPrefix(k, "secondary ") && k != "secondary "+deleted && !strings.Contains(p.Error, deleted) {
				t.Errorf("the intact secondary copy reported %s: %s", k, p.Error)
			}
		}
	}

	check, _ := CheckVault(ctx, copies, nil, CheckOptions{ReadData: true})
	res, err := RepairVault(ctx, copies, check)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repaired) != 3 || len(res.Lost) != 0 || len(res.Failed) != 0 {
		t.Fatalf("repair = %+v, want 3 objects repaired", res)
	}
	after, err := CheckVault(ctx, copies, k, CheckOptions{ReadData: true})
	if err != nil || len(after.Problems) != 0 {
		t.Fatalf("after repair: %v %+v", err, after.Problems)
	}
	// A repaired vault restores every point byte for byte (from the
	// primary, whose pack and index were the damaged ones).
	for _, id := range points {
		r := NewReader(copies[0].B, k)
		if _, err := Restore(ctx, r, id, RestoreOptions{Target: filepath.Join(t.TempDir(), "r")}); err != nil {
			t.Errorf("restore %s after repair: %v", id, err)
		}
		r.Close()
	}

	// The same object bad on both copies: repair refuses it and names the
	// points lost; nothing good is overwritten.
	both := packs[2]
	damage(t, dirs[0], both, func(b []byte) []byte { b[10] ^= 1; return b })
	damage(t, dirs[1], both, func(b []byte) []byte { b[20] ^= 1; return b })
	check, _ = CheckVault(ctx, copies, nil, CheckOptions{ReadData: true})
	res, err = RepairVault(ctx, copies, check)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repaired) != 0 || len(res.Lost) != 2 || res.Lost[0].Object != both || len(res.Lost[0].Points) == 0 {
		t.Errorf("repair of an object bad on both copies = %+v, want it lost on both with its points", res)
	}
}

// Ten runs of a 10 % scrub read every pack once, whatever the count.
func TestScrubCursorCoversEverything(t *testing.T) {
	for _, n := range []int{1, 7, 10, 23, 100} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("packs/%03d", i))
		}
		c := &ScrubCursor{}
		seen := map[string]int{}
		for range 10 {
			for _, name := range c.take(10)(slices.Clone(names)) {
				seen[name]++
			}
		}
		for _, name := range names {
			if seen[name] == 0 {
				t.Errorf("n=%d: %s never read in ten 10%% runs", n, name)
			}
		}
		if n >= 10 && c.Cycles != 1 {
			t.Errorf("n=%d: %d cycles after ten runs, want 1", n, c.Cycles)
		}
	}
}
