package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	cases := []struct {
		name          string
		done, total   int64
		elapsed       time.Duration
		width         int
		want, wantNot string
		maxLen        int
	}{
		{"half", 512 << 20, 1 << 30, 4 * time.Second, 80, "512.0 MiB / 1.0 GiB  50% [", "", 79},
		{"rate and eta", 512 << 20, 1 << 30, 4 * time.Second, 80, "128.0 MiB/s  ETA 0:04", "", 79},
		{"start", 0, 1 << 30, 0, 80, "ETA --:--", "", 79},
		{"done", 1 << 30, 1 << 30, time.Minute, 80, "100% [====", ">", 79},
		{"overshoot clamps", 2 << 30, 1 << 30, time.Second, 80, "100%", "", 79},
		{"narrow drops the bar", 1, 2, time.Second, 30, "50%", "[", 200},
		{"hours", 1, 1 << 40, time.Hour, 100, "ETA ", "", 99},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := formatProgress("3 files", c.done, c.total, c.elapsed, c.width-1)
			if !strings.Contains(got, c.want) {
				t.Errorf("formatProgress() = %q, want it to contain %q", got, c.want)
			}
			if c.wantNot != "" && strings.Contains(got, c.wantNot) {
				t.Errorf("formatProgress() = %q, want no %q", got, c.wantNot)
			}
			if len(got) > c.maxLen {
				t.Errorf("formatProgress() is %d columns, want at most %d: %q", len(got), c.maxLen, got)
			}
		})
	}
	if got := formatClock(3*time.Hour + 4*time.Minute + 5*time.Second); got != "3:04:05" {
		t.Errorf("formatClock(3h4m5s) = %q, want 3:04:05", got)
	}
}

func TestProgressBarOffWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressBar(&globalOptions{stderr: &buf})
	p.update("x", 1, 2, time.Second)
	p.clear()
	if buf.Len() != 0 {
		t.Errorf("progress bar wrote %q to a non-terminal", buf.String())
	}
	p.printf("warning: %s\n", "kept")
	if buf.String() != "warning: kept\n" {
		t.Errorf("printf wrote %q", buf.String())
	}
}
