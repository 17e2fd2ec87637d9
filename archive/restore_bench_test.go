package archive

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// restoreBenchMiB is the size of BenchmarkRestoreFromVaultMinIO's point:
// 256 MiB by default (a few minutes on 2 cores with setup), or
// TAPELESS_BENCH_RESTORE_MIB (1024 for the 1 GiB figure).
func restoreBenchMiB(b *testing.B) int {
	if v := os.Getenv("TAPELESS_BENCH_RESTORE_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 {
			b.Fatalf("TAPELESS_BENCH_RESTORE_MIB=%q: want a number of MiB, at least 16", v)
		}
		return n
	}
	return 256
}

// BenchmarkRestoreFromVaultMinIO restores a point of incompressible data
// (8 MiB files and one 1 MiB file) from a MinIO vault through the staging
// folder, and prints beside it what the same run measures of MinIO itself:
//
//   - restore-MB/s: the point's bytes fetched per second of a whole
//     restore (fetch, authenticate, decrypt, write, hash);
//   - rawGET-MB/s: the same packs downloaded whole and discarded, and
//     restore/rawGET, the ratio;
//   - peakRSS-MiB: the process's peak resident set during the restore;
//   - fetched1MiB-MiB: what restoring the 1 MiB file alone fetched;
//   - request-ms and breakeven-KiB: the round trip of a small ranged GET
//     and round trip × raw throughput, the gap below which reading unneeded
//     bytes is cheaper than another request (what coalesceGap is set from).
func BenchmarkRestoreFromVaultMinIO(b *testing.B) {
	mib := restoreBenchMiB(b)
	ctx := context.Background()
	s, k := benchStoreKeys(b, mib<<20, func(src string) {
		if err := os.WriteFile(filepath.Join(src, "one.bin"), randomBytes(3, 1<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	})
	pu, o := storagetest.MinIO(b, "primary")
	p, err := storage.Open(ctx, pu, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	v := testVault{Name: "bench", Primary: p}
	plan, err := PlanOffload(ctx, s, offloadAllBut(0))
	if err != nil {
		b.Fatal(err)
	}
	res, err := Offload(ctx, s, v.target(), plan, OffloadOptions{})
	if err != nil || len(res.Archived) != 1 {
		b.Fatalf("Offload: %v, %d archived", err, len(res.Archived))
	}
	id := res.Archived[0]
	h, err := LoadPointHeader(ctx, p, id)
	if err != nil {
		b.Fatal(err)
	}
	var packBytes int64
	for _, r := range h.Packs {
		packBytes += r.Size
	}

	restore := func(path string) (*RestoreSummary, int64, time.Duration) {
		c := NewCountingBackend(p)
		st, err := NewStagedVault(ctx, c, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		r := NewReader(st, k)
		r.SetTempDir(st.Dir())
		defer r.Close()
		target := b.TempDir()
		start := time.Now()
		sum, err := Restore(ctx, r, id, RestoreOptions{Target: target, Path: path})
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		os.RemoveAll(target)
		return sum, c.Fetched(), d
	}

	_, fetched1, _ := restore("one.bin")

	// A small ranged GET, many times: the per-request cost.
	const probes = 50
	start := time.Now()
	for i := range probes {
		name := PackName(h.Packs[i%len(h.Packs)].Pack)
		if err := p.Load(ctx, name, 0, int64(packHeaderLen), func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err != nil {
			b.Fatal(err)
		}
	}
	rtt := time.Since(start) / probes

	var rawSec, restSec float64
	var fetched, peak int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		for _, r := range h.Packs {
			if err := p.Load(ctx, PackName(r.Pack), 0, -1, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err != nil {
				b.Fatal(err)
			}
		}
		rawSec += time.Since(start).Seconds()
		resetPeakRSS()
		var d time.Duration
		_, fetched, d = restore("")
		peak = max(peak, peakRSS())
		restSec += d.Seconds()
	}
	b.StopTimer()
	raw := float64(packBytes) * float64(b.N) / rawSec / 1e6
	rest := float64(fetched) * float64(b.N) / restSec / 1e6
	b.ReportMetric(rest, "restore-MB/s")
	b.ReportMetric(raw, "rawGET-MB/s")
	b.ReportMetric(rest/raw, "restore/rawGET")
	b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
	b.ReportMetric(float64(fetched1)/(1<<20), "fetched1MiB-MiB")
	b.ReportMetric(float64(rtt.Microseconds())/1000, "request-ms")
	b.ReportMetric(rtt.Seconds()*raw*1e6/1024, "breakeven-KiB")
	b.Logf("point of %s in %d packs: restore from the vault %.0f MB/s, raw S3 GET %.0f MB/s (ratio %.2f), restore peak RSS %s; "+
		"a 1 MiB file fetched %s; a ranged GET takes %v, break-even gap %.0f KiB (coalesceGap %d KiB)",
		fmtMiB(packBytes), len(h.Packs), rest, raw, rest/raw, fmtMiB(peak), fmtMiB(fetched1), rtt, rtt.Seconds()*raw*1e6/1024, coalesceGap>>10)
}
