package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zone data:", err)
	}
	from := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		spec, tz string
		next     time.Time
	}{
		{"0 3 * * *", "Europe/Berlin", time.Date(2026, 3, 2, 3, 0, 0, 0, berlin)},
		{"30 0 3 * * *", "UTC", time.Date(2026, 3, 2, 3, 0, 30, 0, time.UTC)},
		{"@daily", "UTC", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"@every 6h", "Europe/Berlin", from.Add(6 * time.Hour)},
		{"CRON_TZ=UTC 0 4 * * *", "Europe/Berlin", time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseSchedule(c.spec, c.tz)
		if err != nil {
			t.Errorf("ParseSchedule(%q, %q): %v", c.spec, c.tz, err)
			continue
		}
		if got := s.Next(from); !got.Equal(c.next) {
			t.Errorf("ParseSchedule(%q, %q).Next = %v, want %v", c.spec, c.tz, got, c.next)
		}
	}
	for _, c := range []struct{ spec, tz, want string }{
		{"not a cron", "", "want \"MIN HOUR"},
		{"", "", "empty"},
		{"61 * * * *", "", "want"},
		{"@every 0s", "", "positive duration"},
		{"@fortnightly", "", "want"},
		{"TZ=Europe/Berlin", "", "needs a schedule"},
		{"0 3 * * *", "Mars/Olympus", "unknown time zone"},
	} {
		_, err := ParseSchedule(c.spec, c.tz)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSchedule(%q, %q) = %v, want an error saying %q", c.spec, c.tz, err, c.want)
		}
		if c.tz == "" && !errors.Is(err, ErrBadSchedule) {
			t.Errorf("ParseSchedule(%q): %v does not wrap ErrBadSchedule", c.spec, err)
		}
	}
}
