package storage

import "testing"

// FuzzParseThrottle: a SPEC that parses formats (String) to one that
// parses to the same schedule, and that one formats to itself.
func FuzzParseThrottle(f *testing.F) {
	for _, s := range []string{
		"", "off=4MiB/s", "work=Mon-Fri 08:00-18:00 2MiB/s; off=unlimited",
		"work=Fri-Mon 22:00-06:00 1.5MB/s", "work=Sat, Sun 00:00-24:00 4 MiB/s; off=800KiB/s",
		"work=08:00-18:00 unlimited; off=500B/s", "WORK=mon,wed-fri 9:30-17:00 1GiB/s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseThrottle(spec)
		if err != nil {
			return
		}
		out := s.String()
		s2, err := ParseThrottle(out)
		if err != nil {
			t.Fatalf("ParseThrottle(%q) formats to %q, which does not parse: %v", spec, out, err)
		}
		if s2 != s {
			t.Fatalf("ParseThrottle(%q) = %+v; its String %q parses to %+v", spec, s, out, s2)
		}
		if out2 := s2.String(); out2 != out {
			t.Fatalf("String is not stable: %q then %q", out, out2)
		}
		if !s.Work.IsZero() && (s.Work.Start < 0 || s.Work.Start >= 24*60*60e9 || s.Work.End <= 0 || s.Work.End > 24*60*60e9) {
			t.Fatalf("work hours out of range: %+v", s.Work)
		}
	})
}

// FuzzParseRate: a rate that parses formats to a string that parses to
// the same rate, and is positive unless unlimited.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"4MiB/s", "1.5MB/s", "800KiB/s", "500B/s", "unlimited", "0.001GiB/s", "1e3KB/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if !r.IsUnlimited() && r.BytesPerSec < 1 {
			t.Fatalf("ParseRate(%q) = %d B/s", s, r.BytesPerSec)
		}
		r2, err := ParseRate(r.String())
		if err != nil || r2 != r {
			t.Fatalf("ParseRate(%q) = %v, whose String %q parses to %v (%v)", s, r, r.String(), r2, err)
		}
	})
}
