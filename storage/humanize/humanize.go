// Package humanize renders numbers for people: byte counts and durations
// as error messages, the command line, the daemon and a status page print
// them, so that they read alike everywhere.
//
// It is a leaf (the standard library only) under storage, the lowest layer
// whose errors print sizes and durations (a clock skew, a held lock, the
// scratch rule): every layer of ours may import storage, so every layer
// may import this, and no arrow it adds can close a cycle.
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
