package archive

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// benchChunks returns n distinct chunks of 1 MiB: "text" is real text (the
// Go toolchain's own sources, falling back to synthetic text), "random" is
// incompressible.
func benchChunks(kind string, n int) [][]byte {
	var text []byte
	if kind == "text" {
		text = goSources(n << 20)
	}
	out := make([][]byte, n)
	for i := range out {
		switch {
		case kind == "text" && len(text) >= 1<<20:
			// Reuse the corpus when it is short, made distinct by a
			// stamp so dedup does not skip the work.
			j := i % (len(text) >> 20)
			out[i] = append([]byte(fmt.Sprintf("chunk %d\n", i)), text[j<<20:(j+1)<<20-16]...)
		case kind == "text":
			out[i] = textLike(uint64(1000+i), 1<<20)
		default:
			out[i] = randomBytes(uint64(1000+i), 1<<20)
		}
	}
	return out
}

// goSources returns up to n bytes of .go files under GOROOT/src.
func goSources(n int) []byte {
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil
	}
	var out []byte
	_ = filepath.WalkDir(filepath.Join(strings.TrimSpace(string(root)), "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || len(out) >= n {
			return filepath.SkipAll
		}
		if strings.HasSuffix(p, ".go") {
			b, _ := os.ReadFile(p)
			out = append(out, b...)
		}
		return nil
	})
	return out[:min(n, len(out))]
}

// BenchmarkAddBlob measures the whole write path per byte: chunk ID,
// dedup lookup, zstd, sealing, the pre-write pack check, pack and index
// writes with fsync, and the bbolt commit, with two goroutines adding.
func BenchmarkAddBlob(b *testing.B) {
	for _, kind := range []string{"text", "random"} {
		b.Run(kind, func(b *testing.B) {
			// 192 MiB: six packs, so the background writer reaches a
			// steady state instead of the last pack dominating.
			chunks := benchChunks(kind, 192)
			b.SetBytes(int64(len(chunks)) << 20)
			defer SetKDFForTesting(cheapKDF)()
			k := mustKeys(b)
			env, _ := WrapKeys(k, []byte(testPassphrase))
			ctx := context.Background()
			var stored int64
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "s")
				if err := InitStore(ctx, dir, k.PublicKeys, env); err != nil {
					b.Fatal(err)
				}
				s, err := OpenStore(ctx, dir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				var wg sync.WaitGroup
				var mu sync.Mutex
				for g := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := g; j < len(chunks); j += 2 {
							_, n, err := s.AddBlob(ctx, BlobData, chunks[j])
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							stored += n
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(stored)/float64(b.N)/float64(len(chunks)<<20), "stored/raw")
		})
	}
}

// BenchmarkRawPipeline measures hash + compress + seal alone, on all cores.
func BenchmarkRawPipeline(b *testing.B) {
	for _, kind := range []string{"text", "random"} {
		b.Run(kind, func(b *testing.B) {
			chunks := benchChunks(kind, 64)
			k := mustKeys(b)
			b.SetBytes(64 << 20)
			for b.Loop() {
				if _, err := RawPipeline(context.Background(), k.PublicKeys, chunks, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadBlob measures reading back: range read, unwrap (cached),
// decrypt, decompress, re-hash.
func BenchmarkLoadBlob(b *testing.B) {
	s, k := newStoreForTest(b, testPassphrase)
	ctx := context.Background()
	chunks := benchChunks("text", 32)
	var ids []ID
	for _, c := range chunks {
		id, _, err := s.AddBlob(ctx, BlobData, c)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	r := NewReader(s.Objects(), k)
	defer r.Close()
	b.SetBytes(32 << 20)
	for b.Loop() {
		for _, id := range ids {
			if _, err := r.LoadBlob(ctx, BlobData, id); err != nil {
				b.Fatal(err)
			}
		}
	}
}
