package archive

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmark dataset: about 1 GiB of text-like, random and duplicated
// files. It is generated once into the temp directory and reused by later
// runs (delete it to regenerate); generation is not timed.
const (
	benchDataVersion = "v1"
	benchTextBytes   = 420 << 20
	benchRandomBytes = 420 << 20
	benchSmallFiles  = 4000 // of the text bytes, in small files
)

func benchDataDir(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "tapeless-bench-data-"+benchDataVersion)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return filepath.Join(dir, "data")
	}
	os.RemoveAll(dir)
	start := time.Now()
	data := filepath.Join(dir, "data")
	if err := generateBenchData(data); err != nil {
		b.Fatalf("generate benchmark data: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %s of benchmark data in %s in %v", fmtMiB(treeSize(b, data)), data, time.Since(start).Round(time.Millisecond))
	return data
}

// benchWords is a vocabulary for text that compresses like prose or logs.
var benchWords = func() []string {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 4096)
	for i := range words {
		n := 2 + r.IntN(9)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}()

func writeText(p string, size int, r *rand.Rand) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n := 0
	line := 0
	for n < size {
		line++
		s := strconv.Itoa(line) + " " + time.Unix(1700000000+int64(line)*7, 0).UTC().Format(time.RFC3339) + " "
		for k := 6 + r.IntN(10); k > 0; k-- {
			s += benchWords[r.IntN(64)*r.IntN(64)] + " " // Zipf-like
		}
		s += "\n"
		if n+len(s) > size {
			s = s[:size-n]
		}
		w.WriteString(s)
		n += len(s)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeRandom(p string, size int, seed uint64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	buf := make([]byte, 1<<20)
	for size > 0 {
		n := min(size, len(buf))
		r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		size -= n
	}
	return f.Close()
}

func generateBenchData(dir string) error {
	r := rand.New(rand.NewPCG(3, 4))
	mk := func(p string) string {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		return full
	}
	// Text: many small files, then larger logs.
	text := 0
	for i := range benchSmallFiles {
		size := 512 + r.IntN(24<<10)
		if err := writeText(mk(fmt.Sprintf("text/small/d%02d/f%05d.txt", i%50, i)), size, r); err != nil {
			return err
		}
		text += size
	}
	for i := 0; text < benchTextBytes; i++ {
		size := min(1<<20+r.IntN(40<<20), benchTextBytes-text)
		if err := writeText(mk(fmt.Sprintf("text/logs/log%03d.txt", i)), size, r); err != nil {
			return err
		}
		text += size
	}
	// Random (incompressible): a few big files and some medium ones.
	rnd := 0
	for i := 0; rnd < benchRandomBytes; i++ {
		size := min(64<<10+r.IntN(90<<20), benchRandomBytes-rnd)
		if err := writeRandom(mk(fmt.Sprintf("random/r%03d.bin", i)), size, uint64(i)); err != nil {
			return err
		}
		rnd += size
	}
	// Duplicates: copies of some files under other names (dedup).
	var srcs []string
	filepath.WalkDir(filepath.Join(dir, "random"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(srcs) < 3 {
			srcs = append(srcs, p)
		}
		return nil
	})
	filepath.WalkDir(filepath.Join(dir, "text/logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(srcs) < 8 {
			srcs = append(srcs, p)
		}
		return nil
	})
	for i, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		if err := os.WriteFile(mk(fmt.Sprintf("dup/copy%02d-%s", i, filepath.Base(s))), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func treeSize(b *testing.B, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0+),
// so each phase's peak is its own.
func resetPeakRSS() {
	// Twice: sync.Pool contents survive one collection.
	debug.FreeOSMemory()
	debug.FreeOSMemory() // collect, and give the previous phase's heap back
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// heapPeak samples the Go heap in use until stopped.
type heapPeak struct {
	stop chan struct{}
	done chan struct{}
	max  uint64
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			h.max = max(h.max, ms.HeapInuse)
			select {
			case <-t.C:
			case <-h.stop:
				return
			}
		}
	}()
	return h
}

func (h *heapPeak) end() uint64 { close(h.stop); <-h.done; return h.max }

// rawPipeline runs chunk → keyed hash → zstd → seal over every file under
// dir on the same number of workers as a backup, storing nothing: the
// ceiling a backup's throughput is compared with.
func rawPipeline(b *testing.B, dir string, k *Keys, workers int) int64 {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total, sealed int64
	dataKey, _ := newDataKey()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var plain, out []byte
			var n, s int64
			for p := range work {
				f, err := os.Open(p)
				if err != nil {
					b.Error(err)
					continue
				}
				err = forEachChunk(f, func(c []byte) error {
					id := chunkID(&k.ChunkKey, c)
					plain = compressBlob(plain, c)
					var err error
					out, err = sealAEADTo(out[:0], dataKey[:], blobAD(CurrentFormat, BlobData, id), plain)
					n += int64(len(c))
					s += int64(len(out))
					return err
				})
				f.Close()
				if err != nil {
					b.Error(err)
				}
			}
			mu.Lock()
			total += n
			sealed += s
			mu.Unlock()
		}()
	}
	for _, p := range files {
		work <- p
	}
	close(work)
	wg.Wait()
	return total
}

// BenchmarkArchive1GiB backs up and restores the ~1 GiB dataset and runs
// the raw hash+compress+encrypt pipeline on the same data in the same run,
// then prints throughput, peak memory and the ratios.
func BenchmarkArchive1GiB(b *testing.B) {
	data := benchDataDir(b)
	size := treeSize(b, data)
	workers := min(max(runtime.GOMAXPROCS(0), 2), 4)
	ctx := context.Background()
	// Warm the page cache so every phase reads from memory alike.
	rawPipeline(b, data, mustBenchKeys(b), workers)

	var pipeT, backupT, restoreT time.Duration
	var backupRSS, restoreRSS int64
	var backupHeap, restoreHeap uint64
	var sum *BackupSummary
	var stored int64
	for i := 0; i < b.N; i++ {
		s, k := newTreeTestStore(b)

		resetPeakRSS()
		t0 := time.Now()
		rawPipeline(b, data, k, workers)
		pipeT += time.Since(t0)

		resetPeakRSS()
		hp := startHeapPeak()
		t0 = time.Now()
		var err error
		sum, err = Backup(ctx, s, BackupOptions{Sources: []string{data}, Name: "bench"})
		backupT += time.Since(t0)
		backupHeap = max(backupHeap, hp.end())
		backupRSS = max(backupRSS, peakRSS())
		if err != nil {
			b.Fatal(err)
		}
		stored = objectBytes(b, s)
		s.Close() // restore as the command does: a read-only view, no writer

		dst := filepath.Join(b.TempDir(), "restore")
		resetPeakRSS()
		hp = startHeapPeak()
		t0 = time.Now()
		v, err := OpenStoreView(ctx, s.Dir())
		if err != nil {
			b.Fatal(err)
		}
		r := NewReader(v.Objects, k)
		_, err = Restore(ctx, r, sum.Point, RestoreOptions{Target: dst})
		r.Close()
		v.Close()
		restoreT += time.Since(t0)
		restoreHeap = max(restoreHeap, hp.end())
		restoreRSS = max(restoreRSS, peakRSS())
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dst)
	}
	n := float64(b.N)
	mbps := func(d time.Duration) float64 { return float64(size) / (1 << 20) / (d.Seconds() / n) }
	pipe, back, rest := mbps(pipeT), mbps(backupT), mbps(restoreT)
	b.ReportMetric(pipe, "pipeline-MiB/s")
	b.ReportMetric(back, "backup-MiB/s")
	b.ReportMetric(rest, "restore-MiB/s")
	b.ReportMetric(back/pipe, "backup/pipeline")
	b.ReportMetric(float64(backupRSS)/(1<<20), "backup-peakRSS-MiB")
	b.ReportMetric(float64(restoreRSS)/(1<<20), "restore-peakRSS-MiB")

	var t strings.Builder
	fmt.Fprintf(&t, "\ndataset %s in %s (%d workers, GOMAXPROCS %d); stored as %s (dedup %.2fx, compression %.2fx)\n",
		fmtMiB(size), data, workers, runtime.GOMAXPROCS(0), fmtMiB(stored), sum.DedupRatio, sum.CompressionRatio)
	fmt.Fprintf(&t, "%-34s %10s %9s %14s %14s\n", "phase", "MiB/s", "vs raw", "peak RSS", "peak Go heap")
	fmt.Fprintf(&t, "%-34s %10.1f %9s %14s %14s\n", "raw chunk+hash+compress+encrypt", pipe, "1.00", "-", "-")
	fmt.Fprintf(&t, "%-34s %10.1f %9.2f %14s %14s\n", "backup (walk..packs, fsync)", back, back/pipe, fmtMiB(backupRSS), fmtMiB(int64(backupHeap)))
	fmt.Fprintf(&t, "%-34s %10.1f %9.2f %14s %14s\n", "restore (verify packs, write)", rest, rest/pipe, fmtMiB(restoreRSS), fmtMiB(int64(restoreHeap)))
	fmt.Print(t.String())
}

func mustBenchKeys(b *testing.B) *Keys {
	k, err := GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	return k
}
