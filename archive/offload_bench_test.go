package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// benchStore returns a store holding one point of size bytes of random
// (incompressible) data in default-size packs.
func benchStore(b *testing.B, size int) *Store {
	b.Helper()
	s, _ := benchStoreKeys(b, size, nil)
	return s
}

// benchStoreKeys is benchStore that also returns the keys; extra, when
// set, adds its own files to the source first.
func benchStoreKeys(b *testing.B, size int, extra func(src string)) (*Store, *Keys) {
	b.Helper()
	ctx := context.Background()
	s, k := benchEmptyStoreKeys(b)
	src := b.TempDir()
	r := rand.NewChaCha8([32]byte{9})
	for i := 0; i < size/(8<<20); i++ {
		buf := make([]byte, 8<<20)
		r.Read(buf)
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if extra != nil {
		extra(src)
	}
	if _, err := Backup(ctx, s, BackupOptions{Sources: []string{src}, Name: "bench", Now: time.Now().Add(-time.Hour)}); err != nil {
		b.Fatal(err)
	}
	return s, k
}

// BenchmarkOffloadMinIO measures offload of 128 MiB of incompressible data
// into a MinIO vault, LRS (primary only) and GRS (both servers): upload,
// confirmation on each copy, local delete and collection. Compare with
// storage's raw S3 PUT benchmark.
func BenchmarkOffloadMinIO(b *testing.B) {
	const size = 128 << 20
	for _, mode := range []string{"LRS", "GRS"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				s := benchStore(b, size)
				pu, o := storagetest.MinIO(b, "primary")
				p, err := storage.Open(context.Background(), pu, o)
				if err != nil {
					b.Fatal(err)
				}
				v := testVault{Name: "bench", Primary: p}
				if mode == "GRS" {
					su, _ := storagetest.MinIO(b, "secondary")
					if v.Secondary, err = storage.Open(context.Background(), su, o); err != nil {
						b.Fatal(err)
					}
				}
				plan, err := PlanOffload(context.Background(), s, offloadAllBut(0))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := Offload(context.Background(), s, v.target(), plan, OffloadOptions{})
				if err != nil || len(res.Archived) != 1 {
					b.Fatalf("Offload: %v, %d archived", err, len(res.Archived))
				}
			}
		})
	}
}

// benchEmptyStore returns a new store with no point.
func benchEmptyStore(b *testing.B) *Store {
	s, _ := benchEmptyStoreKeys(b)
	return s
}

// benchEmptyStoreKeys is benchEmptyStore with its keys.
func benchEmptyStoreKeys(b *testing.B) (*Store, *Keys) {
	b.Helper()
	b.Cleanup(SetKDFForTesting(KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	ctx := context.Background()
	k, err := GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	env, _ := WrapKeys(k, []byte(offloadTestPassphrase))
	dir := filepath.Join(b.TempDir(), "store")
	if err := InitStore(ctx, dir, k.PublicKeys, env); err != nil {
		b.Fatal(err)
	}
	s, err := OpenStore(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, k
}

// BenchmarkVaultGrowthMinIO is incremental forever across both tiers:
// five backups of a 64 MiB tree in which one 1 MiB file changes each
// time, each offloaded at once with nothing kept locally (the shortest
// local retention). It prints the vault's bytes after each offload beside
// the source bytes; with deduplication across the tiers the vault grows
// by about the changed data, not by the tree.
func BenchmarkVaultGrowthMinIO(b *testing.B) {
	const files, fileSize, steps = 64, 1 << 20, 5
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s := benchEmptyStore(b)
		pu, o := storagetest.MinIO(b, "primary")
		p, err := storage.Open(ctx, pu, o)
		if err != nil {
			b.Fatal(err)
		}
		v := testVault{Name: "growth", Primary: p}
		src := b.TempDir()
		r := rand.NewChaCha8([32]byte{4})
		write := func(i int) {
			buf := make([]byte, fileSize)
			r.Read(buf)
			if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		for i := range files {
			write(i)
		}
		b.StartTimer()
		var vaultBytes int64
		b.Logf("%-6s %14s %14s %14s %8s", "STEP", "SOURCE", "SENT", "VAULT", "VAULT/SRC")
		for step := range steps {
			if step > 0 {
				write(step) // one file changes
			}
			if _, err := Backup(ctx, s, BackupOptions{Sources: []string{src}, Name: "growth", Now: time.Now().Add(-time.Hour)}); err != nil {
				b.Fatal(err)
			}
			plan, err := PlanOffload(ctx, s, offloadAllBut(0))
			if err != nil {
				b.Fatal(err)
			}
			res, err := Offload(ctx, s, v.target(), plan, OffloadOptions{})
			if err != nil || len(res.Archived) != 1 {
				b.Fatalf("offload step %d: %v, archived %v", step, err, res.Archived)
			}
			vaultBytes = 0
			if err := p.List(ctx, "", func(i storage.Info) error { vaultBytes += i.Size; return nil }); err != nil {
				b.Fatal(err)
			}
			b.Logf("%-6d %14d %14d %14d %8.3f", step+1, int64(files*fileSize), res.BytesUploaded, vaultBytes,
				float64(vaultBytes)/float64(files*fileSize))
		}
		b.ReportMetric(float64(vaultBytes)/float64(files*fileSize), "vault/source")
	}
}
