package vault

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withFreeSpace makes CheckScratch see the given free space and records the
// path it was asked about.
func withFreeSpace(t *testing.T, free int64, err error) *string {
	t.Helper()
	var asked string
	old := freeSpace
	freeSpace = func(dir string) (int64, error) {
		asked = dir
		return free, err
	}
	t.Cleanup(func() { freeSpace = old })
	return &asked
}

func TestScratchNeeded(t *testing.T) {
	for _, c := range []struct {
		data, want int64
	}{
		{0, 0},
		{-5, 0},
		{1, 1}, // rounded up: any data needs some room
		{20, 1},
		{21, 2},
		{100_000_000_000, 5_000_000_000}, // 100 GB → 5 GB
		{100 << 30, 5 << 30},
		{math.MaxInt64, math.MaxInt64/20 + 1},
	} {
		if got := ScratchNeeded(c.data); got != c.want {
			t.Errorf("ScratchNeeded(%d) = %d, want %d", c.data, got, c.want)
		}
	}
}

func TestCheckScratchBoundary(t *testing.T) {
	dir := t.TempDir()
	const data = 100_000_000_000 // 100 GB
	const need = 5_000_000_000   // exactly 5%

	withFreeSpace(t, need, nil)
	if err := CheckScratch(dir, data); err != nil {
		t.Fatalf("CheckScratch with exactly 5%% free = %v, want nil", err)
	}

	withFreeSpace(t, need-1, nil)
	err := CheckScratch(dir, data)
	if !errors.Is(err, ErrScratchSpace) {
		t.Fatalf("CheckScratch one byte short = %v, want ErrScratchSpace", err)
	}
	var se *ScratchSpaceError
	if !errors.As(err, &se) {
		t.Fatalf("CheckScratch error %T is not *ScratchSpaceError", err)
	}
	if se.Dir != dir || se.Free != need-1 || se.Need != need || se.Data != data {
		t.Errorf("ScratchSpaceError = %+v, want Dir=%s Free=%d Need=%d Data=%d", se, dir, need-1, need, int64(data))
	}
	// Both round to 4.7 GiB, so the exact byte counts must show the gap.
	want := "not enough scratch space in " + dir + ": 4.7 GiB (4,999,999,999 bytes) free, need at least 4.7 GiB (5,000,000,000 bytes) (5% of 93.1 GiB of data); free space or choose another folder with --staging"
	if got := err.Error(); got != want {
		t.Errorf("error text\n got %s\nwant %s", got, want)
	}
}

func TestCheckScratchMessage(t *testing.T) {
	withFreeSpace(t, 1288490188, nil) // 1.2 GiB
	dir := filepath.Join(t.TempDir(), "var", "lib", "tapeless", "staging")
	err := CheckScratch(dir, 100<<30)
	want := "not enough scratch space in " + dir + ": 1.2 GiB free, need at least 5.0 GiB (5% of 100.0 GiB of data); free space or choose another folder with --staging"
	if err == nil || err.Error() != want {
		t.Errorf("CheckScratch() = %v\nwant %s", err, want)
	}
}

func TestCheckScratchMissingDirUsesParent(t *testing.T) {
	base := t.TempDir()
	asked := withFreeSpace(t, 1<<40, nil)
	if err := CheckScratch(filepath.Join(base, "not", "yet"), 1<<30); err != nil {
		t.Fatalf("CheckScratch() = %v", err)
	}
	if *asked != base {
		t.Errorf("free space asked for %q, want the nearest existing parent %q", *asked, base)
	}
}

func TestCheckScratchErrors(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("statfs exploded")
	withFreeSpace(t, 0, boom)
	err := CheckScratch(dir, 10)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "check scratch space in "+dir) {
		t.Errorf("CheckScratch with failing statfs = %v, want wrapped %v naming the dir", err, boom)
	}
	if errors.Is(err, ErrScratchSpace) {
		t.Errorf("a statfs failure must not look like a space shortage: %v", err)
	}
	withFreeSpace(t, 1<<40, nil)
	if err := CheckScratch(dir, -1); err == nil {
		t.Error("CheckScratch(negative size) = nil, want error")
	}
}

func TestCheckScratchRealStatfs(t *testing.T) {
	dir := t.TempDir()
	free, err := statfsFree(dir)
	if err != nil {
		t.Fatalf("statfsFree(%s) = %v", dir, err)
	}
	if free <= 0 {
		t.Fatalf("statfsFree(%s) = %d, want > 0 on a writable temp dir", dir, free)
	}
	if err := CheckScratch(dir, 0); err != nil {
		t.Errorf("CheckScratch(no data) = %v, want nil", err)
	}
	if err := CheckScratch(dir, free); err != nil { // needs only 5% of what is free
		t.Errorf("CheckScratch(data = free space) = %v, want nil", err)
	}
	// More data than any disk here could give 5% for.
	err = CheckScratch(dir, math.MaxInt64)
	var se *ScratchSpaceError
	if !errors.As(err, &se) {
		t.Fatalf("CheckScratch(MaxInt64) = %v, want *ScratchSpaceError", err)
	}
	if se.Free <= 0 || se.Need != ScratchNeeded(math.MaxInt64) {
		t.Errorf("ScratchSpaceError = %+v", se)
	}
	if _, err := statfsFree(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("statfsFree(missing) = %v, want ErrNotExist", err)
	}
}

func TestCheckSourceSize(t *testing.T) {
	if MaxSourceBytes != 54_400*1_000_000_000 {
		t.Fatalf("MaxSourceBytes = %d, want 54,400 GB of 10^9 bytes", MaxSourceBytes)
	}
	for _, n := range []int64{0, 1, MaxSourceBytes - 1, MaxSourceBytes} {
		if err := CheckSourceSize("home", n); err != nil {
			t.Errorf("CheckSourceSize(%d) = %v, want nil", n, err)
		}
	}
	err := CheckSourceSize("home", MaxSourceBytes+1)
	if !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("CheckSourceSize(limit+1) = %v, want ErrSourceTooLarge", err)
	}
	var se *SourceSizeError
	if !errors.As(err, &se) || se.Name != "home" || se.Size != MaxSourceBytes+1 {
		t.Errorf("CheckSourceSize(limit+1) = %#v, want *SourceSizeError{home, limit+1}", err)
	}
	want := `data source "home" is too large: 54,400,000,000,001 bytes (54,400.0 GB, 49.5 TiB), over the limit of 54,400 GB (54,400,000,000,000 bytes, 1 GB = 10^9 bytes) per data source; split it into smaller data sources or exclude paths`
	if got := err.Error(); got != want {
		t.Errorf("error text\n got %s\nwant %s", got, want)
	}
	err = CheckSourceSize("media", 60_000*1_000_000_000+49_999_999)
	if !strings.Contains(err.Error(), `"media" is too large: 60,000,049,999,999 bytes (60,000.0 GB, 54.6 TiB)`) {
		t.Errorf("CheckSourceSize(60 TB) = %v", err)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 54_400_000_000_000: "54,400,000,000,000",
	} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}
