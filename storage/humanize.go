package storage

import (
	"strconv"
	"strings"
	"time"
)

// The byte counts and durations in storage's error messages are printed as
// scheduler/humanize prints them for the CLI. storage imports nothing of
// ours, so it keeps this private copy; humanize_test.go here and in
// scheduler/humanize hold the same cases.

// formatBytes renders a byte count for people, in binary units with one
// decimal: "512 B", "1.5 KiB", "5.0 GiB", "49.5 TiB".
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + formatUnsigned(uint64(-n)) // uint64 keeps MinInt64 right
	}
	return formatUnsigned(uint64(n))
}

func formatUnsigned(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	// Move up a unit when rounding to one decimal would print 1024.0.
	for v >= 1023.95 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// formatDuration prints d the way people write it: "7m12s", "5m", "1h",
// "2h30m", "45s"; "0s" for zero. Sub-second parts are rounded away.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
