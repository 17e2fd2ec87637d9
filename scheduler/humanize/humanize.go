// Package humanize renders numbers for people: byte counts and durations
// as the command line, the daemon's messages and a status page print them.
//
// It is a leaf (the standard library only), so every layer that makes
// output may import it without adding an arrow that could close a cycle:
// cmd/tapeless today, scheduler's daemon and status page later. It is not
// under cmd/, which scheduler must not import, and not in storage, whose
// job is where bytes live, not how they are printed. storage imports
// nothing of ours, so its own error messages keep a private copy of Bytes
// and Duration (storage/humanize.go), tested with the same cases.
package humanize

import (
	"strconv"
	"strings"
	"time"
)

// Bytes renders a byte count in binary units with one decimal: "512 B",
// "1.5 KiB", "5.0 GiB", "49.5 TiB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + unsigned(uint64(-n)) // uint64 keeps MinInt64 right
	}
	return unsigned(uint64(n))
}

func unsigned(n uint64) string {
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

// Duration prints d the way people write it: "7m12s", "5m", "1h", "2h30m",
// "45s"; "0s" for zero. Sub-second parts are rounded away.
func Duration(d time.Duration) string {
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
