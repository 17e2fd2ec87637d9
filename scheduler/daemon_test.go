package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// The daemon's parser: seconds optional, @daily and @every.
var testParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func sched(t *testing.T, spec, tz string) cron.Schedule {
	t.Helper()
	if tz != "" {
		spec = "CRON_TZ=" + tz + " " + spec
	}
	s, err := testParser.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no time zone data for %s: %v", name, err)
	}
	return loc
}

// rig is a daemon on a fake clock, running in the background.
type rig struct {
	t      *testing.T
	clock  *FakeClock
	hist   *History
	d      *Daemon
	cancel context.CancelFunc
	result chan error
	logs   *strings.Builder
	logMu  *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newRig makes a daemon over jobs at start; hist, when set, is the
// history it finds (a daemon that ran before).
func newRig(t *testing.T, start time.Time, jobs []Job, hist *History) *rig {
	t.Helper()
	if hist == nil {
		var err error
		if hist, err = OpenHistory(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDaemon(jobs, hist)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clock: NewFakeClock(start), hist: hist, d: d, result: make(chan error, 1),
		logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	d.Clock = r.clock
	d.Log = slog.New(slog.NewJSONHandler(lockedWriter{r.logMu, r.logs}, nil))
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.result <- r.d.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		select {
		case <-r.result:
		case <-time.After(10 * time.Second):
			r.t.Error("the daemon did not stop")
		}
	})
}

func (r *rig) log() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logs.String()
}

// settle waits until the loop has seen the fake time as it is now and
// waits for its next timer, with no job running or queued unless busy
// allows it. It polls real time: the schedules are never slept on.
func (r *rig) settle(busy bool) loopState {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.d.mu.Lock()
		s := r.d.state
		r.d.mu.Unlock()
		if s.blocked && (busy || s.busy == 0) && (s.wakeAt.IsZero() || s.wakeAt.After(r.clock.Now())) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
	r.t.Fatalf("the daemon did not settle at %s", r.clock.Now())
	return loopState{}
}

// runUntil moves the fake clock from timer to timer up to end.
func (r *rig) runUntil(end time.Time) {
	r.t.Helper()
	for {
		s := r.settle(false)
		if s.wakeAt.IsZero() || s.wakeAt.After(end) {
			r.clock.Set(end)
			r.settle(false)
			return
		}
		r.clock.Set(s.wakeAt)
	}
}

func okJob(name string, s cron.Schedule, runs *[]time.Time, clk Clock) Job {
	return Job{Name: name, Schedule: s, Run: func(ctx context.Context) (RunRecord, error) {
		*runs = append(*runs, clk.Now())
		return RunRecord{Bytes: 1}, nil
	}}
}

func results(h *History, job string) string {
	var out []string
	for _, r := range h.Runs(job) {
		out = append(out, r.Result)
	}
	return strings.Join(out, ",")
}

// Two jobs due together run one after the other; a job due again while it
// runs, or while it waits its turn, is skipped, logged and recorded.
func TestDaemonOverlap(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)
	var active, maxActive atomic.Int32
	release := make(chan struct{})
	started := make(chan string, 10)
	job := func(name string, block bool) Job {
		return Job{Name: name, Schedule: sched(t, "* * * * *", ""), Run: func(ctx context.Context) (RunRecord, error) {
			n := active.Add(1)
			defer active.Add(-1)
			if n > maxActive.Load() {
				maxActive.Store(n)
			}
			started <- name
			if block {
				<-release
			}
			return RunRecord{}, nil
		}}
	}
	r := newRig(t, start, []Job{job("offload", true), job("prune", false)}, nil)
	r.start()
	r.settle(false)

	r.clock.Set(start.Add(30 * time.Second)) // 10:01: both due
	if got := <-started; got != "offload" {
		t.Fatalf("first job started is %s, want offload", got)
	}
	r.settle(true)
	select {
	case name := <-started:
		t.Fatalf("%s started while offload ran", name)
	default:
	}

	r.clock.Set(start.Add(90 * time.Second)) // 10:02: both due again
	r.settle(true)
	if got := results(r.hist, "offload"); got != "skipped" {
		t.Errorf("offload history while it runs = %q, want skipped", got)
	}
	if got := results(r.hist, "prune"); got != "skipped" {
		t.Errorf("prune history while it waits = %q, want skipped", got)
	}
	close(release)
	if got := <-started; got != "prune" {
		t.Fatalf("second job started is %s, want prune", got)
	}
	r.settle(false)
	if maxActive.Load() != 1 {
		t.Errorf("%d jobs ran at once", maxActive.Load())
	}
	if got := results(r.hist, "offload"); got != "ok,skipped" {
		t.Errorf("offload history = %q, want ok,skipped", got)
	}
	var off, pr RunRecord
	for _, rec := range r.hist.Runs("") {
		switch {
		case rec.Result != "ok":
		case rec.Job == "offload":
			off = rec
		case rec.Job == "prune":
			pr = rec
		}
	}
	if pr.Start.IsZero() || pr.Start.Before(off.End) {
		t.Errorf("prune started at %s, before offload ended at %s", pr.Start, off.End)
	}
	if got := results(r.hist, "prune"); got != "ok,skipped" && got != "skipped,ok" {
		t.Errorf("prune history = %q, want one skip and one run", got)
	}
	if log := r.log(); !strings.Contains(log, `"msg":"run skipped","job":"offload"`) || !strings.Contains(log, `"reason":"the previous run is still waiting its turn"`) {
		t.Errorf("the skips are not logged:\n%s", log)
	}
}

// A run missed while the daemon was down runs once at start, however
// many were missed; a job whose last run is recent, or that never ran,
// waits for its schedule.
func TestDaemonMissedRuns(t *testing.T) {
	dir := t.TempDir()
	h, err := OpenHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	for _, rec := range []RunRecord{
		{Job: "offload", Start: start.Add(-3*24*time.Hour - 9*time.Hour - 30*time.Minute), Result: "ok"}, // 3 days ago 02:30
		{Job: "prune", Start: start.Add(-9*time.Hour - 30*time.Minute), Result: "ok"},                    // today 02:30
		{Job: "verify", Start: start.Add(-10 * 24 * time.Hour), Result: "ok"},                            // long ago, then
		{Job: "verify", Start: start.Add(-time.Hour), Result: "skipped"},                                 // only a skip
	} {
		rec.End = rec.Start
		if err := h.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	var offloads, prunes, verifies, backups []time.Time
	clk := NewFakeClock(start)
	daily := sched(t, "30 2 * * *", "UTC")
	jobs := []Job{
		okJob("backup:home", daily, &backups, clk), okJob("offload", daily, &offloads, clk),
		okJob("prune", daily, &prunes, clk), okJob("verify", daily, &verifies, clk),
	}
	r := newRig(t, start, jobs, h)
	r.d.Clock, r.clock = clk, clk
	r.start()
	r.settle(false)
	if len(offloads) != 1 || !offloads[0].Equal(start) {
		t.Errorf("offload ran at %v, want once at start", offloads)
	}
	if len(verifies) != 1 {
		t.Errorf("verify (last real run 10 days ago) ran %d times at start, want 1", len(verifies))
	}
	if len(prunes) != 0 || len(backups) != 0 {
		t.Errorf("prune ran %d, backup %d times at start; neither was overdue", len(prunes), len(backups))
	}
	if !strings.Contains(r.log(), "run missed while the daemon was down") {
		t.Errorf("the missed run is not logged:\n%s", r.log())
	}
	// The next day at 02:30 everything runs once.
	r.runUntil(time.Date(2024, 5, 11, 3, 0, 0, 0, time.UTC))
	if len(offloads) != 2 || len(prunes) != 1 || len(backups) != 1 || len(verifies) != 2 {
		t.Errorf("after the next 02:30: offload %d, prune %d, backup %d, verify %d runs; want 2, 1, 1, 2",
			len(offloads), len(prunes), len(backups), len(verifies))
	}
}

// A daily 02:30 job runs once on each day across the spring-forward day
// (02:30 does not exist: it runs when the clocks have jumped, at 03:00)
// and the fall-back day (02:30 exists twice in Berlin: it runs the first
// time only).
func TestDaemonDST(t *testing.T) {
	for _, c := range []struct {
		zone, day string
		wantAt    string // the run on the day itself, local time and zone
	}{
		{"Europe/Berlin", "2024-03-31", "03:00 CEST"},
		{"Europe/Berlin", "2024-10-27", "02:30 CEST"},
		{"America/New_York", "2024-03-10", "03:00 EDT"},
		{"America/New_York", "2024-11-03", "02:30 EST"},
	} {
		t.Run(c.zone+"/"+c.day, func(t *testing.T) {
			loc := mustLoc(t, c.zone)
			day, err := time.ParseInLocation(time.DateOnly, c.day, loc)
			if err != nil {
				t.Fatal(err)
			}
			from := time.Date(day.Year(), day.Month(), day.Day()-2, 0, 0, 0, 0, loc)
			to := time.Date(day.Year(), day.Month(), day.Day()+3, 0, 0, 0, 0, loc)
			var runs []time.Time
			clk := NewFakeClock(from)
			r := newRig(t, from, []Job{okJob("backup:home", sched(t, "30 2 * * *", c.zone), &runs, clk)}, nil)
			r.d.Clock, r.clock = clk, clk
			r.start()
			r.runUntil(to)
			perDay := map[string]int{}
			for _, at := range runs {
				l := at.In(loc)
				perDay[l.Format(time.DateOnly)]++
				if l.Format(time.DateOnly) == c.day {
					if got := l.Format("15:04 MST"); got != c.wantAt {
						t.Errorf("ran at %s on %s, want %s", got, c.day, c.wantAt)
					}
				}
			}
			for d := from; d.Before(to); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc) {
				if n := perDay[d.Format(time.DateOnly)]; n != 1 {
					t.Errorf("%s: %d runs, want 1 (runs: %v)", d.Format(time.DateOnly), n, runs)
				}
			}
		})
	}
}

// A valid reload swaps the schedules; an invalid one is refused, logged,
// and the old jobs keep running.
func TestDaemonReload(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var hourly, minutely, other []time.Time
	clk := NewFakeClock(start)
	r := newRig(t, start, []Job{okJob("offload", sched(t, "0 * * * *", ""), &hourly, clk)}, nil)
	r.d.Clock, r.clock = clk, clk
	r.start()
	r.runUntil(start.Add(90 * time.Minute))
	if len(hourly) != 1 {
		t.Fatalf("hourly job ran %d times in 90 minutes, want 1", len(hourly))
	}

	bad := []Job{okJob("offload", sched(t, "* * * * *", ""), &other, clk), okJob("offload", sched(t, "* * * * *", ""), &other, clk)}
	if err := r.d.Reload(bad); err == nil {
		t.Fatal("a job set naming offload twice was accepted")
	}
	if err := r.d.Reload([]Job{{Name: "prune", Run: okJob("x", nil, &other, clk).Run}}); err == nil {
		t.Fatal("a job without a schedule was accepted")
	}
	if !strings.Contains(r.log(), "reload refused, keeping the jobs as they were") {
		t.Errorf("the refused reload is not logged:\n%s", r.log())
	}
	r.runUntil(start.Add(150 * time.Minute))
	if len(hourly) != 2 || len(other) != 0 {
		t.Fatalf("after refused reloads: hourly job ran %d times, refused jobs %d; want 2, 0", len(hourly), len(other))
	}

	if err := r.d.Reload([]Job{okJob("offload", sched(t, "* * * * *", ""), &minutely, clk)}); err != nil {
		t.Fatal(err)
	}
	r.runUntil(start.Add(160 * time.Minute))
	if len(hourly) != 2 || len(minutely) != 10 {
		t.Errorf("after the reload: old schedule ran %d times (want 2), new one %d (want 10)", len(hourly), len(minutely))
	}
	if !strings.Contains(r.log(), `"msg":"jobs reloaded"`) {
		t.Errorf("the reload is not logged:\n%s", r.log())
	}
}

// A stop cancels the running job's context and waits for it; the run is
// recorded as stopped and not passed to OnRun. A job that ignores the
// cancellation is given up on after the grace period.
func TestDaemonStop(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)
	began := make(chan struct{}, 1)
	var observed []string
	r := newRig(t, start, []Job{{Name: "offload", Schedule: sched(t, "* * * * *", ""), Run: func(ctx context.Context) (RunRecord, error) {
		began <- struct{}{}
		<-ctx.Done()
		return RunRecord{}, ctx.Err()
	}}}, nil)
	r.d.OnRun = func(prev, cur RunRecord) { observed = append(observed, cur.Result) }
	r.start()
	r.settle(false)
	r.clock.Advance(30 * time.Second)
	<-began
	r.cancel()
	select {
	case err := <-r.result:
		if err != nil {
			t.Errorf("Run after a stop: %v", err)
		}
		r.result <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	runs := r.hist.Runs("offload")
	if len(runs) != 1 || runs[0].Result != "failed" || !strings.Contains(runs[0].Error, "stopped by a shutdown") {
		t.Errorf("history after a stop: %+v", runs)
	}
	if len(observed) != 0 {
		t.Errorf("OnRun saw the stopped run: %v", observed)
	}

	stuck := make(chan struct{})
	defer close(stuck)
	r2 := newRig(t, start, []Job{{Name: "offload", Schedule: sched(t, "* * * * *", ""), Run: func(ctx context.Context) (RunRecord, error) {
		began <- struct{}{}
		<-stuck
		return RunRecord{}, nil
	}}}, nil)
	r2.start()
	r2.settle(false)
	r2.clock.Advance(30 * time.Second)
	<-began
	r2.cancel()
	// The grace timer is on the fake clock: wait for it, then pass it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if at, ok := r2.clock.Next(); ok && at.Equal(r2.clock.Now().Add(DefaultGrace)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no grace timer")
		}
		time.Sleep(time.Millisecond)
	}
	r2.clock.Advance(DefaultGrace)
	select {
	case err := <-r2.result:
		if !errors.Is(err, ErrJobStillRunning) {
			t.Errorf("Run with a stuck job = %v, want ErrJobStillRunning", err)
		}
		r2.result <- err
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not give up on the stuck job")
	}
}

// OnRun gets the job's previous run with each new one: the notifier
// compares them to tell failure from recovery.
func TestDaemonOnRun(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)
	fail := true
	r := newRig(t, start, []Job{{Name: "verify", Schedule: sched(t, "* * * * *", ""), Run: func(ctx context.Context) (RunRecord, error) {
		if fail {
			fail = false
			return RunRecord{}, errors.New("verify found 1 problem\nfirst: pack x")
		}
		return RunRecord{Result: "partial", Error: "1 damaged point"}, nil
	}}}, nil)
	var seen [][2]RunRecord
	r.d.OnRun = func(prev, cur RunRecord) { seen = append(seen, [2]RunRecord{prev, cur}) }
	r.start()
	r.runUntil(start.Add(90 * time.Second))
	if len(seen) != 2 {
		t.Fatalf("OnRun called %d times, want 2", len(seen))
	}
	if seen[0][0].Job != "" || seen[0][1].Result != "failed" || seen[0][1].Error != "verify found 1 problem first: pack x" {
		t.Errorf("first OnRun = %+v", seen[0])
	}
	if seen[1][0].Result != "failed" || seen[1][1].Result != "partial" || seen[1][1].Job != "verify" {
		t.Errorf("second OnRun = %+v", seen[1])
	}
}

// NextRun on the wall clock: the gap and the repeated hour, and @every.
func TestNextRun(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	s := sched(t, "30 2 * * *", "Europe/Berlin")
	got := NextRun(s, time.Date(2024, 3, 31, 0, 0, 0, 0, berlin))
	if want := time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("spring forward: %s, want %s", got, want.In(berlin))
	}
	first := NextRun(s, time.Date(2024, 10, 27, 0, 0, 0, 0, berlin))
	if want := time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC); !first.Equal(want) {
		t.Errorf("fall back: %s, want %s", first, want.In(berlin))
	}
	if next := NextRun(s, first); !next.Equal(time.Date(2024, 10, 28, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("after the first 02:30 on the fall-back day: %s, want the next day", next)
	}
	every := sched(t, "@every 6h", "")
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := NextRun(every, at); !got.Equal(at.Add(6 * time.Hour)) {
		t.Errorf("@every 6h: %s", got)
	}
}
