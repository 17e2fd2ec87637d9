package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser is the one cron dialect of tapeless: five fields, or six with
// seconds first, and the descriptors (@daily, @every 6h). The daemon and
// 'config check' both parse through ParseSchedule, so what the check
// accepts is exactly what runs.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrBadSchedule is wrapped by every error ParseSchedule returns.
var ErrBadSchedule = errors.New("invalid schedule")

// ScheduleForms is the expected form shown in schedule errors.
const ScheduleForms = `"MIN HOUR DOM MON DOW" (e.g. "0 3 * * *"), "SEC MIN HOUR DOM MON DOW" (e.g. "30 0 3 * * *"), or @yearly, @monthly, @weekly, @daily, @hourly, "@every 6h"`

// ParseSchedule parses a cron spec in the time zone tz (an IANA name such
// as "Europe/Berlin"; "" means the local zone). A spec may carry its own
// "CRON_TZ=Zone " prefix, which then wins over tz.
func ParseSchedule(spec, tz string) (cron.Schedule, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, fmt.Errorf("%w: empty; want %s", ErrBadSchedule, ScheduleForms)
	}
	if tz != "" {
		if _, err := LoadZone(tz); err != nil {
			return nil, err
		}
	}
	if p, rest, ok := cutZonePrefix(s); ok {
		// cron.Parse slices up to the first space and panics without one.
		if strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("%w %q: a time zone prefix needs a schedule after it; want %s", ErrBadSchedule, spec, ScheduleForms)
		}
		if _, err := LoadZone(p); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadSchedule, spec, err)
		}
	} else if tz != "" && !strings.HasPrefix(s, "@every") {
		s = "CRON_TZ=" + tz + " " + s
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok {
		// cron rounds anything under a second up to one; a zero or negative
		// interval is a typo, not a wish to run every second.
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w %q: @every needs a positive duration such as \"@every 6h\" or \"@every 30m\"", ErrBadSchedule, spec)
		}
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v; want %s", ErrBadSchedule, spec, err, ScheduleForms)
	}
	return sched, nil
}

// cutZonePrefix splits "CRON_TZ=Zone rest" or "TZ=Zone rest".
func cutZonePrefix(s string) (zone, rest string, ok bool) {
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if after, found := strings.CutPrefix(s, p); found {
			zone, rest, _ = strings.Cut(after, " ")
			return zone, rest, true
		}
	}
	return "", "", false
}

// LoadZone loads an IANA time zone ("" is the local zone) with an error
// that says what is wanted.
func LoadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"", tz)
	}
	return loc, nil
}
