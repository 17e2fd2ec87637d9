package humanize

import (
	"math"
	"testing"
	"time"
)

// The same cases test storage's private copies (storage/humanize_test.go).

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"}, // not "1024.0 KiB"
		{5 << 30, "5.0 GiB"},
		{5_000_000_000, "4.7 GiB"},
		{1288490188, "1.2 GiB"},
		{54_400 * 1_000_000_000, "49.5 TiB"},
		{-2048, "-2.0 KiB"},
		{math.MaxInt64, "8.0 EiB"},
		{math.MinInt64, "-8.0 EiB"},
	} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                      "0s",
		45 * time.Second:                       "45s",
		5 * time.Minute:                        "5m",
		7*time.Minute + 12*time.Second:         "7m12s",
		time.Hour:                              "1h",
		2*time.Hour + 30*time.Minute:           "2h30m",
		time.Hour + 2*time.Second:              "1h0m2s",
		7*time.Minute + 12400*time.Millisecond: "7m12s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
