package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/tapeless/tapeless/storage/humanize"
)

// progressBar draws a one-line bar (bytes, percent, rate, ETA) on a
// terminal. It draws nothing when the writer is not a terminal, or under
// --quiet or --json, so logs and pipes never see carriage returns.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	width int
	shown bool
}

// newProgressBar returns a bar on g.stderr, active only on a terminal.
func newProgressBar(g *globalOptions) *progressBar {
	p := &progressBar{w: g.stderr, width: 80}
	if g.quiet || g.json {
		return p
	}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.on = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 40 {
			p.width = w
		}
	}
	return p
}

// update redraws the bar: done of total bytes after elapsed, with a label
// (e.g. the file count) before it.
func (p *progressBar) update(label string, done, total int64, elapsed time.Duration) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = true
	fmt.Fprint(p.w, "\r"+formatProgress(label, done, total, elapsed, p.width-1)+"\x1b[K")
}

// clear removes the bar so other output starts on a clean line.
func (p *progressBar) clear() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// printf writes a message above the bar.
func (p *progressBar) printf(format string, a ...any) {
	p.clear()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, a...)
}

// formatProgress renders "label  1.2 GiB / 3.4 GiB  35% [===>   ]  120.0 MiB/s  ETA 0:18"
// to at most width columns.
func formatProgress(label string, done, total int64, elapsed time.Duration, width int) string {
	done = min(done, max(total, done))
	pct := 0.0
	if total > 0 {
		pct = min(float64(done)/float64(total), 1)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "--:--"
	if rate > 0 && total > done {
		eta = formatClock(time.Duration(float64(total-done) / rate * float64(time.Second)))
	} else if total > 0 && done >= total {
		eta = "0:00"
	}
	left := fmt.Sprintf("%s  %s / %s %3.0f%% ", label, humanize.Bytes(done), humanize.Bytes(total), pct*100)
	right := fmt.Sprintf(" %s/s  ETA %s", humanize.Bytes(int64(rate)), eta)
	barW := width - len(left) - len(right) - 2
	if barW < 5 {
		return strings.TrimSpace(left + right)
	}
	fill := int(pct * float64(barW))
	bar := strings.Repeat("=", fill)
	if fill < barW {
		bar += ">" + strings.Repeat(" ", barW-fill-1)
	}
	return left + "[" + bar + "]" + right
}

// formatClock prints a duration as h:mm:ss or m:ss.
func formatClock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
