package archive

import (
	"context"
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
