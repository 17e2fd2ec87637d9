//go:build linux

package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestProgressBarOnATerminal draws the bar on a real pseudo-terminal: it
// shows there (bytes, rate and ETA), is cleared again, and --json or
// --quiet keep it off even on a terminal.
func TestProgressBarOnATerminal(t *testing.T) {
	for _, c := range []struct {
		name        string
		json, quiet bool
		want        bool
	}{
		{"plain", false, false, true},
		{"json", true, false, false},
		{"quiet", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			controller, terminal := openPTY(t)
			p := newProgressBar(&globalOptions{stderr: terminal, json: c.json, quiet: c.quiet})
			p.update("12 files", 1<<20, 4<<20, time.Second)
			p.clear()
			terminal.Close()
			// Once the terminal side is closed the controller reads what
			// was written, then fails (EIO): the error ends the read.
			got, _ := io.ReadAll(controller)
			drawn := strings.Contains(string(got), formatProgress("12 files", 1<<20, 4<<20, time.Second, p.width-1))
			if drawn != c.want {
				t.Errorf("bar drawn = %v on a terminal, want %v; the terminal got %q", drawn, c.want, got)
			}
			if !c.want && len(got) != 0 {
				t.Errorf("the terminal got %q, want nothing", got)
			}
		})
	}
}
