package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottleForm is the shape of a throttle SPEC, quoted in every parse error.
const ThrottleForm = "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"

// ErrInvalidThrottle is wrapped by every ParseThrottle error so callers can
// turn a bad SPEC into a usage error.
var ErrInvalidThrottle = errors.New("invalid throttle")

// Rate is a bandwidth limit in bytes per second. The zero Rate means
// unlimited, so an unset off-hours rate needs no special case.
type Rate struct {
	BytesPerSec int64 // 0 means unlimited
}

// Unlimited is the Rate that never waits.
var Unlimited = Rate{}

// IsUnlimited reports whether r imposes no limit.
func (r Rate) IsUnlimited() bool { return r.BytesPerSec <= 0 }

// rateUnits are the units a SPEC may use. Formatting walks them in this
// order and picks the first that divides the rate exactly, so binary rates
// print as KiB/MiB/GiB and decimal ones as KB/MB/GB.
var rateUnits = []struct {
	name string
	mult int64
}{
	{"GiB/s", 1 << 30},
	{"GB/s", 1e9},
	{"MiB/s", 1 << 20},
	{"MB/s", 1e6},
	{"KiB/s", 1 << 10},
	{"KB/s", 1e3},
	{"B/s", 1},
}

// String formats r as it would appear in a SPEC, e.g. "4MiB/s" or
// "unlimited"; ParseRate reads it back unchanged.
func (r Rate) String() string {
	if r.IsUnlimited() {
		return "unlimited"
	}
	for _, u := range rateUnits {
		if r.BytesPerSec%u.mult == 0 {
			return strconv.FormatInt(r.BytesPerSec/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(r.BytesPerSec, 10) + "B/s" // unreachable: B/s divides everything
}

// ParseRate reads a rate such as "4MiB/s", "1.5MB/s", "800KiB/s", "500B/s"
// or "unlimited". Binary units (KiB, MiB, GiB) are powers of 1024, decimal
// ones (KB, MB, GB) powers of 1000; units are case-insensitive. A fractional
// rate is rounded to whole bytes per second. Zero is refused: a vault that
// may not transfer at all is a misconfiguration, not a throttle.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "unlimited") {
		return Unlimited, nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return Rate{}, fmt.Errorf("bad rate %q: want a number with a unit such as 4MiB/s, or unlimited", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return Rate{}, fmt.Errorf("bad rate %q: %q is not a number", s, num)
	}
	if unit == "" {
		return Rate{}, fmt.Errorf("bad rate %q: missing unit (B/s, KiB/s, MiB/s, GiB/s, KB/s, MB/s or GB/s)", s)
	}
	var mult int64
	for _, u := range rateUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.mult
			break
		}
	}
	if mult == 0 {
		return Rate{}, fmt.Errorf("bad rate %q: unknown unit %q (use B/s, KiB/s, MiB/s, GiB/s, KB/s, MB/s or GB/s)", s, unit)
	}
	b := math.Round(v * float64(mult))
	if b < 1 {
		return Rate{}, fmt.Errorf("bad rate %q: must be at least 1B/s (use unlimited for no limit)", s)
	}
	if b > float64(1<<62) {
		return Rate{}, fmt.Errorf("bad rate %q: too large", s)
	}
	return Rate{BytesPerSec: int64(b)}, nil
}

// WorkHours is the weekly work window. The zero WorkHours (no days) means
// there are no work hours at all.
//
// Days names the day on which a window starts. Start is inclusive and End
// exclusive. When End is not after Start the window runs overnight: with
// Days=Fri, 22:00-06:00 is work time from Friday 22:00 to Saturday 06:00,
// and Monday 00:00-06:00 is work time only if Sunday is a work day. Times
// are wall-clock times in the schedule's location.
type WorkHours struct {
	Days  [7]bool       // indexed by time.Weekday
	Start time.Duration // time of day, 0 to 23:59
	End   time.Duration // time of day, 00:01 to 24:00; End <= Start means overnight
}

// IsZero reports whether w defines no work hours.
func (w WorkHours) IsZero() bool { return w.Days == [7]bool{} }

// overnight reports whether the window ends on the day after it starts.
func (w WorkHours) overnight() bool { return w.End <= w.Start }

// ThrottleSchedule is a parsed throttle SPEC: one rate inside the weekly
// work hours and another outside them. The zero value never throttles.
type ThrottleSchedule struct {
	Work     WorkHours
	WorkRate Rate
	OffRate  Rate
	// Location is the time zone the work hours are read in; nil means
	// time.Local.
	Location *time.Location
}

// In returns a copy of s that reads its work hours in loc.
func (s ThrottleSchedule) In(loc *time.Location) ThrottleSchedule {
	s.Location = loc
	return s
}

func (s ThrottleSchedule) loc() *time.Location {
	if s.Location == nil {
		return time.Local
	}
	return s.Location
}

// IsUnlimited reports whether s never limits anything.
func (s ThrottleSchedule) IsUnlimited() bool {
	return s.OffRate.IsUnlimited() && (s.Work.IsZero() || s.WorkRate.IsUnlimited())
}

// ParseThrottle reads a throttle SPEC of the form
//
//	work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited
//
// Clauses are separated by ";". work= takes optional days (names, ranges
// and comma lists such as Mon-Fri, Sat,Sun or Mon-Wed,Fri; ranges may wrap,
// Fri-Mon; no days means every day), a time range HH:MM-HH:MM (start
// inclusive, end exclusive, 24:00 allowed as an end; an end at or before the
// start runs overnight into the next day, see WorkHours) and a rate (see
// ParseRate). off= takes a rate and defaults to unlimited. Without work=
// the off rate applies all the time. The empty SPEC means no throttling.
// The schedule reads times in time.Local; use In to change that.
func ParseThrottle(spec string) (ThrottleSchedule, error) {
	s, err := parseThrottle(spec)
	if err != nil {
		return ThrottleSchedule{}, fmt.Errorf("%w %q: %v; expected form: %s", ErrInvalidThrottle, spec, err, ThrottleForm)
	}
	return s, nil
}

func parseThrottle(spec string) (ThrottleSchedule, error) {
	var s ThrottleSchedule
	var seenWork, seenOff bool
	for _, clause := range strings.Split(spec, ";") {
		clause = strings.TrimSpace(clause)
		if clause == "" {
			continue
		}
		key, val, ok := strings.Cut(clause, "=")
		if !ok {
			return s, fmt.Errorf("%q is not a work= or off= setting", clause)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "work":
			if seenWork {
				return s, errors.New("work= is given twice")
			}
			seenWork = true
			w, r, err := parseWork(val)
			if err != nil {
				return s, err
			}
			s.Work, s.WorkRate = w, r
		case "off":
			if seenOff {
				return s, errors.New("off= is given twice")
			}
			seenOff = true
			r, err := ParseRate(val)
			if err != nil {
				return s, fmt.Errorf("off=: %v", err)
			}
			s.OffRate = r
		default:
			return s, fmt.Errorf("unknown setting %q (want work= or off=)", key+"=")
		}
	}
	return s, nil
}

// parseWork reads "[DAYS] HH:MM-HH:MM RATE". The time range is found by its
// colon so that "Sat, Sun" and "4 MiB/s" with spaces still parse.
func parseWork(val string) (WorkHours, Rate, error) {
	fields := strings.Fields(val)
	at := -1
	for i, f := range fields {
		if strings.Contains(f, ":") {
			at = i
			break
		}
	}
	if at < 0 {
		return WorkHours{}, Rate{}, fmt.Errorf("work=%s: missing hours like 08:00-18:00", val)
	}
	var w WorkHours
	if at == 0 {
		for d := range w.Days {
			w.Days[d] = true
		}
	} else {
		days, err := parseDays(strings.Join(fields[:at], ""))
		if err != nil {
			return WorkHours{}, Rate{}, err
		}
		w.Days = days
	}
	from, to, ok := strings.Cut(fields[at], "-")
	if !ok {
		return WorkHours{}, Rate{}, fmt.Errorf("bad hours %q: want HH:MM-HH:MM such as 08:00-18:00", fields[at])
	}
	var err error
	if w.Start, err = parseClock(from, false); err != nil {
		return WorkHours{}, Rate{}, err
	}
	if w.End, err = parseClock(to, true); err != nil {
		return WorkHours{}, Rate{}, err
	}
	if w.Start == w.End {
		return WorkHours{}, Rate{}, fmt.Errorf("hours %q are empty: start and end are the same (use 00:00-24:00 for the whole day)", fields[at])
	}
	if at+1 >= len(fields) {
		return WorkHours{}, Rate{}, fmt.Errorf("work=%s: missing rate such as 4MiB/s or unlimited", val)
	}
	r, err := ParseRate(strings.Join(fields[at+1:], ""))
	if err != nil {
		return WorkHours{}, Rate{}, err
	}
	return w, r, nil
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func parseDay(s string) (time.Weekday, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s)
}

// parseDays reads a comma list of days and day ranges; a range that wraps
// past Sunday (Fri-Mon) covers Fri, Sat, Sun and Mon.
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return days, fmt.Errorf("bad days %q: empty item in the list", s)
		}
		a, b, isRange := strings.Cut(item, "-")
		from, err := parseDay(a)
		if err != nil {
			return days, err
		}
		to := from
		if isRange {
			if to, err = parseDay(b); err != nil {
				return days, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

// parseClock reads HH:MM; 24:00 is allowed only as an end time.
func parseClock(s string, end bool) (time.Duration, error) {
	bad := fmt.Errorf("bad time %q: want HH:MM between 00:00 and 24:00", s)
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, bad
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, bad
	}
	if h == 24 && !end {
		return 0, fmt.Errorf("bad time %q: 24:00 can only end the work hours", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// String formats s as a SPEC that ParseThrottle reads back to the same
// schedule (the location is not part of a SPEC).
func (s ThrottleSchedule) String() string {
	if s.Work.IsZero() {
		return "off=" + s.OffRate.String()
	}
	return fmt.Sprintf("work=%s %s-%s %s; off=%s", formatDays(s.Work.Days),
		formatClock(s.Work.Start), formatClock(s.Work.End), s.WorkRate, s.OffRate)
}

// formatDays lists days Monday first, writing runs of three or more as a
// range: Mon-Fri, Sat,Sun, Mon,Wed-Fri.
func formatDays(days [7]bool) string {
	order := [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var parts []string
	for i := 0; i < 7; {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && days[order[j+1]] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, dayNames[order[i]]+"-"+dayNames[order[j]])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, dayNames[order[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func formatClock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// inWork reports whether t falls inside the work hours.
func (s ThrottleSchedule) inWork(t time.Time) bool {
	w := s.Work
	if w.IsZero() {
		return false
	}
	t = t.In(s.loc())
	h, m, sec := t.Clock()
	tod := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second +
		time.Duration(t.Nanosecond())
	wd := t.Weekday()
	if !w.overnight() {
		return w.Days[wd] && tod >= w.Start && tod < w.End
	}
	return w.Days[wd] && tod >= w.Start || w.Days[(wd+6)%7] && tod < w.End
}

// rateAt returns the Rate in force at t.
func (s ThrottleSchedule) rateAt(t time.Time) Rate {
	if s.inWork(t) {
		return s.WorkRate
	}
	return s.OffRate
}

// RateAt returns the limit in force at t, read in the schedule's location:
// bytes per second, or unlimited=true when there is no limit.
func (s ThrottleSchedule) RateAt(t time.Time) (bytesPerSec float64, unlimited bool) {
	r := s.rateAt(t)
	if r.IsUnlimited() {
		return 0, true
	}
	return float64(r.BytesPerSec), false
}

// NextChange returns the first instant after t at which the schedule moves
// into or out of the work hours, or the zero Time when it never does (no
// work hours, or work hours that cover the whole week).
func (s ThrottleSchedule) NextChange(t time.Time) time.Time {
	if s.Work.IsZero() {
		return time.Time{}
	}
	loc := s.loc()
	lt := t.In(loc)
	cur := s.inWork(t)
	startH, startM := int(s.Work.Start/time.Hour), int(s.Work.Start%time.Hour/time.Minute)
	endH, endM := int(s.Work.End/time.Hour), int(s.Work.End%time.Hour/time.Minute)
	// Every boundary is a window start or end on some day; the state is
	// constant between consecutive candidates, so the first candidate after
	// t where the state differs is the answer. Eight days cover a week plus
	// an overnight tail.
	var best time.Time
	for off := 0; off <= 8; off++ {
		y, mo, d := lt.Date()
		for _, c := range []time.Time{
			time.Date(y, mo, d+off, startH, startM, 0, 0, loc),
			time.Date(y, mo, d+off, endH, endM, 0, 0, loc), // 24:00 normalises to the next midnight
		} {
			if !c.After(t) || s.inWork(c) == cur {
				continue
			}
			if best.IsZero() || c.Before(best) {
				best = c
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return time.Time{}
}

// Clock is the time source of a throttled backend; tests inject a fake one
// so that throttling is checked without real sleeping.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until t or until ctx is done, returning ctx.Err()
	// in the latter case.
	SleepUntil(ctx context.Context, t time.Time) error
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttleSlice is how much transfer time one limiter burst holds: chunks
// are small enough that a rate change at a boundary takes effect within
// about this long, and large enough that waits stay infrequent.
const (
	throttleSlice    = 100 * time.Millisecond
	minThrottleBurst = 1024
)

func burstFor(r Rate) int {
	b := int64(float64(r.BytesPerSec) * throttleSlice.Seconds())
	if b < minThrottleBurst {
		b = minThrottleBurst
	}
	if b > 1<<30 {
		b = 1 << 30
	}
	return int(b)
}

// Throttled wraps b so that the data of Save and Load, in total across all
// concurrent transfers through the returned Backend, flows no faster than
// sched allows at the current time. The limit is re-read whenever a work
// hours boundary is crossed, so a long transfer changes pace mid-stream.
// Stat, List, Remove and Close pass through unthrottled. A nil clock means
// SystemClock.
//
// The wrapped reader hides io.Seeker and io.ReaderAt from the backend. That
// costs nothing: the S3 backend never relies on them and reads a large save
// into at most (s3Threads+1) part buffers of its own, so a throttled 100 MiB
// save stays below the object's size in memory (TestThrottledS3).
func Throttled(b Backend, sched ThrottleSchedule, clock Clock) Backend {
	if clock == nil {
		clock = SystemClock
	}
	return &throttled{Backend: b, sched: sched, clock: clock}
}

var _ Backend = (*throttled)(nil)

type throttled struct {
	Backend
	sched ThrottleSchedule
	clock Clock

	mu     sync.Mutex
	lim    *rate.Limiter
	cur    Rate
	since  time.Time // when cur was last computed
	until  time.Time // next boundary after since; zero = never
	inited bool
}

// refresh brings the limiter up to date with the schedule at now. Each
// crossed boundary is applied at the boundary's own instant, so tokens
// accrue at the old rate up to it and at the new rate after it.
// Called with mu held.
func (t *throttled) refresh(now time.Time) {
	if !t.inited || now.Before(t.since) || !t.until.IsZero() && now.Sub(t.until) > 7*24*time.Hour {
		// First use, a clock that went backwards, or a long idle spell:
		// start afresh rather than replaying every boundary.
		t.inited = true
		t.setRate(now, t.sched.rateAt(now))
		t.until = t.sched.NextChange(now)
		return
	}
	for !t.until.IsZero() && !now.Before(t.until) {
		b := t.until
		t.setRate(b, t.sched.rateAt(b))
		t.until = t.sched.NextChange(b)
	}
}

func (t *throttled) setRate(at time.Time, r Rate) {
	t.since, t.cur = at, r
	if r.IsUnlimited() {
		// The limiter keeps its last finite rate and is bypassed; an
		// infinite rate.Limit would poison its token arithmetic.
		return
	}
	if t.lim == nil {
		t.lim = rate.NewLimiter(rate.Limit(r.BytesPerSec), burstFor(r))
		return
	}
	t.lim.SetLimitAt(at, rate.Limit(r.BytesPerSec))
	t.lim.SetBurstAt(at, burstFor(r))
}

// maxChunk is the most a single Read should hand over before waiting.
func (t *throttled) maxChunk() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh(t.clock.Now())
	if t.cur.IsUnlimited() {
		return 0
	}
	return t.lim.Burst()
}

// wait blocks until n more bytes may flow, in pieces no larger than the
// limiter's burst, and returns early with ctx's error when it is done.
func (t *throttled) wait(ctx context.Context, n int) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.Lock()
		now := t.clock.Now()
		t.refresh(now)
		if t.cur.IsUnlimited() {
			t.mu.Unlock()
			return nil
		}
		piece := min(n, t.lim.Burst())
		if boundary := t.until; !boundary.IsZero() {
			// Price no piece at the old rate that would flow after the
			// boundary: shrink it to what the bucket holds by then, or,
			// when not a byte fits, wait for the boundary and start over
			// at the new rate.
			if avail := t.lim.TokensAt(boundary); avail < float64(piece) {
				if avail < 1 {
					t.mu.Unlock()
					if err := t.clock.SleepUntil(ctx, boundary); err != nil {
						return err
					}
					continue
				}
				piece = int(avail)
			}
		}
		r := t.lim.ReserveN(now, piece)
		t.mu.Unlock()
		if !r.OK() { // cannot happen: piece <= burst and no reserve cap
			return fmt.Errorf("throttle: cannot reserve %d bytes", piece)
		}
		if d := r.DelayFrom(now); d > 0 {
			if err := t.clock.SleepUntil(ctx, now.Add(d)); err != nil {
				r.CancelAt(t.clock.Now())
				return err
			}
		}
		n -= piece
	}
	return nil
}

// throttledReader paces the bytes read through it.
type throttledReader struct {
	ctx context.Context
	t   *throttled
	r   io.Reader
}

func (tr *throttledReader) Read(p []byte) (int, error) {
	if c := tr.t.maxChunk(); c > 0 && len(p) > c {
		p = p[:c]
	}
	n, err := tr.r.Read(p)
	if n > 0 {
		if werr := tr.t.wait(tr.ctx, n); werr != nil {
			return n, fmt.Errorf("throttle: %w", werr)
		}
	}
	return n, err
}

// Save uploads through the limiter.
func (t *throttled) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	return t.Backend.Save(ctx, name, &throttledReader{ctx: ctx, t: t, r: r}, size)
}

// Load downloads through the limiter: fn sees the data at the allowed pace.
func (t *throttled) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	return t.Backend.Load(ctx, name, offset, length, func(r io.Reader) error {
		return fn(&throttledReader{ctx: ctx, t: t, r: r})
	})
}
