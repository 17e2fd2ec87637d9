package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Job is one scheduled job of the daemon: a backup of one source, offload,
// prune or verify. Run does the work and returns its record with Result
// ("ok" when empty, "partial" for a run with problems), Bytes and Error
// filled; the daemon fills Job, Start and End, and an error makes the run
// "failed".
type Job struct {
	Name     string
	Schedule cron.Schedule
	Run      func(ctx context.Context) (RunRecord, error)
}

// DefaultGrace is how long a stopping daemon waits for the running job to
// reach a safe point after its context is cancelled.
const DefaultGrace = 30 * time.Second

// ErrJobStillRunning is returned by Run when a stop's grace period ended
// with a job still running.
var ErrJobStillRunning = errors.New("a job was still running when the grace period ended")

// Daemon runs jobs on their schedules, one at a time: the jobs of one
// store never overlap, a run that comes due while another job runs waits
// its turn, and a job already running or waiting is not queued again (the
// skip is logged and recorded). Every run and skip goes into the History.
type Daemon struct {
	// Clock is the time the schedules are read against (RealClock when
	// nil).
	Clock Clock
	// History records every run and skip; a run missed while the daemon
	// was down (the schedule came due after the job's last recorded run)
	// runs once at start.
	History *History
	// Log receives the structured log (slog.Default when nil).
	Log *slog.Logger
	// OnRun is called after each run with the job's previous run (zero
	// when none) and this one; skips and runs cut short by a stop are not
	// outcomes and are not passed.
	OnRun func(prev, cur RunRecord)
	// Grace is how long a stop waits for the running job (DefaultGrace
	// when 0).
	Grace time.Duration

	mu     sync.Mutex
	jobs   []Job
	reload chan reloadReq
	exited chan struct{} // closed when Run returns (nil: not running)
	state  loopState
}

// loopState is where the loop is, for the tests to wait on.
type loopState struct {
	blocked bool      // waiting for a timer, a job or a reload
	busy    int       // jobs running or queued
	wakeAt  time.Time // the timer the loop waits for (zero: none)
}

// NewDaemon returns a daemon for jobs, recording into h.
func NewDaemon(jobs []Job, h *History) (*Daemon, error) {
	if err := checkJobs(jobs); err != nil {
		return nil, err
	}
	return &Daemon{History: h, jobs: jobs, reload: make(chan reloadReq)}, nil
}

// checkJobs refuses a job set the loop cannot run.
func checkJobs(jobs []Job) error {
	seen := map[string]bool{}
	for _, j := range jobs {
		switch {
		case j.Name == "":
			return errors.New("a job has no name")
		case seen[j.Name]:
			return fmt.Errorf("job %s is there twice", j.Name)
		case j.Schedule == nil:
			return fmt.Errorf("job %s has no schedule", j.Name)
		case j.Run == nil:
			return fmt.Errorf("job %s has nothing to run", j.Name)
		}
		seen[j.Name] = true
	}
	return nil
}

// Reload swaps the job set. An invalid set is refused and the old one
// kept. The running job finishes; a queued job still in the new set keeps
// its place, and every job's next run is read from its new schedule.
// While Run runs, Reload returns once the loop has taken the new set.
func (d *Daemon) Reload(jobs []Job) error {
	if err := checkJobs(jobs); err != nil {
		d.log().Error("reload refused, keeping the jobs as they were", "error", err.Error())
		return fmt.Errorf("reload refused: %w", err)
	}
	req := reloadReq{jobs: slices.Clone(jobs), taken: make(chan struct{})}
	d.mu.Lock()
	exited := d.exited
	d.mu.Unlock()
	if exited != nil {
		select {
		case d.reload <- req:
			<-req.taken
			return nil
		case <-exited:
		}
	}
	d.mu.Lock()
	d.jobs = req.jobs
	d.mu.Unlock()
	return nil
}

type reloadReq struct {
	jobs  []Job
	taken chan struct{}
}

func (d *Daemon) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Daemon) clock() Clock {
	if d.Clock != nil {
		return d.Clock
	}
	return RealClock{}
}

// jobDone is a finished run, sent from the job's goroutine to the loop.
type jobDone struct {
	rec RunRecord
	err error
}

// Run runs the jobs until ctx is cancelled, then stops taking work, lets
// the running job (whose context is ctx) reach a safe point and returns
// nil, or ErrJobStillRunning when it did not stop within the grace period.
func (d *Daemon) Run(ctx context.Context) error {
	clk := d.clock()
	lg := d.log()
	d.mu.Lock()
	jobs := d.jobs
	exited := make(chan struct{})
	d.exited = exited
	d.mu.Unlock()
	defer close(exited)

	next := map[string]time.Time{}
	var queue []string // due jobs waiting their turn, oldest first
	running := ""
	done := make(chan jobDone, 1)

	now := clk.Now()
	for _, j := range jobs {
		next[j.Name] = NextRun(j.Schedule, now)
		if last, ok := d.lastRun(j.Name); ok {
			if due := NextRun(j.Schedule, last.Start); !due.IsZero() && !due.After(now) {
				lg.Info("run missed while the daemon was down: running it now", "job", j.Name,
					"last_run", last.Start, "was_due", due)
				queue = append(queue, j.Name)
			}
		}
	}
	lg.Info("daemon started", "jobs", jobNames(jobs))
	for _, j := range jobs {
		lg.Info("next run", "job", j.Name, "at", next[j.Name])
	}

	byName := func(name string) (Job, bool) {
		for _, j := range jobs {
			if j.Name == name {
				return j, true
			}
		}
		return Job{}, false
	}
	start := func() {
		for running == "" && len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			j, ok := byName(name)
			if !ok { // removed by a reload
				continue
			}
			running = name
			lg.Info("job started", "job", name)
			go func() {
				begin := clk.Now()
				rec, err := j.Run(ctx)
				rec.Job, rec.Start, rec.End = name, begin, clk.Now()
				done <- jobDone{rec, err}
			}()
		}
	}
	finish := func(r jobDone) {
		running = ""
		rec := r.rec
		stopped := ctx.Err() != nil && r.err != nil
		switch {
		case r.err != nil:
			rec.Result, rec.Error = "failed", oneLine(r.err.Error())
			if stopped {
				rec.Error = "stopped by a shutdown: " + rec.Error
			}
		case rec.Result == "":
			rec.Result = "ok"
		}
		prev, _ := d.lastRun(rec.Job)
		d.record(rec)
		attrs := []any{"job", rec.Job, "result", rec.Result, "duration", rec.End.Sub(rec.Start).Round(time.Millisecond).String()}
		if rec.Bytes > 0 {
			attrs = append(attrs, "bytes", rec.Bytes)
		}
		if rec.Error != "" {
			attrs = append(attrs, "error", rec.Error)
		}
		switch rec.Result {
		case "failed":
			lg.Error("job finished", attrs...)
		case "partial":
			lg.Warn("job finished", attrs...)
		default:
			lg.Info("job finished", attrs...)
		}
		if d.OnRun != nil && !stopped {
			d.OnRun(prev, rec)
		}
	}
	due := func(now time.Time) {
		for _, j := range jobs {
			at := next[j.Name]
			if at.IsZero() || at.After(now) {
				continue
			}
			next[j.Name] = NextRun(j.Schedule, now)
			if running == j.Name || slices.Contains(queue, j.Name) {
				why := "the previous run is still waiting its turn"
				if running == j.Name {
					why = "the previous run is still running"
				}
				lg.Warn("run skipped", "job", j.Name, "due", at, "reason", why)
				d.record(RunRecord{Job: j.Name, Start: now, End: now, Result: "skipped", Error: why})
				continue
			}
			if running != "" {
				lg.Info("run due while another job runs: waiting its turn", "job", j.Name, "running", running)
			}
			queue = append(queue, j.Name)
		}
	}

	for {
		start()
		var wakeAt time.Time
		for _, j := range jobs {
			if at := next[j.Name]; !at.IsZero() && (wakeAt.IsZero() || at.Before(wakeAt)) {
				wakeAt = at
			}
		}
		var timer Timer
		var fire <-chan time.Time
		if !wakeAt.IsZero() {
			timer = clk.NewTimer(wakeAt.Sub(clk.Now()))
			fire = timer.C()
		}
		busy := len(queue)
		if running != "" {
			busy++
		}
		d.setState(loopState{blocked: true, busy: busy, wakeAt: wakeAt})
		select {
		case <-ctx.Done():
			d.setState(loopState{busy: busy})
			if timer != nil {
				timer.Stop()
			}
			return d.stop(lg, running, queue, done, finish)
		case <-fire:
			d.setState(loopState{busy: busy})
			due(clk.Now())
		case r := <-done:
			d.setState(loopState{busy: busy})
			finish(r)
		case req := <-d.reload:
			d.setState(loopState{busy: busy})
			d.mu.Lock()
			d.jobs = req.jobs
			d.mu.Unlock()
			jobs = req.jobs
			now := clk.Now()
			next = map[string]time.Time{}
			for _, j := range jobs {
				next[j.Name] = NextRun(j.Schedule, now)
			}
			queue = slices.DeleteFunc(queue, func(n string) bool { _, ok := byName(n); return !ok })
			lg.Info("jobs reloaded", "jobs", jobNames(jobs))
			for _, j := range jobs {
				lg.Info("next run", "job", j.Name, "at", next[j.Name])
			}
			close(req.taken)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// stop is the end of Run: queued runs are dropped (they are overdue at the
// next start and run then), the running job is waited for.
func (d *Daemon) stop(lg *slog.Logger, running string, queue []string, done chan jobDone, finish func(jobDone)) error {
	if len(queue) > 0 {
		lg.Info("stopping: queued runs dropped, they run at the next start", "jobs", queue)
	}
	if running == "" {
		lg.Info("daemon stopped")
		return nil
	}
	grace := d.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	lg.Info("stopping: waiting for the running job to reach a safe point", "job", running, "grace", grace.String())
	t := d.clock().NewTimer(grace)
	defer t.Stop()
	select {
	case r := <-done:
		finish(r)
		lg.Info("daemon stopped")
		return nil
	case <-t.C():
		lg.Error("stopping: the running job did not stop in time", "job", running, "grace", grace.String())
		return fmt.Errorf("%w: %s", ErrJobStillRunning, running)
	}
}

func (d *Daemon) setState(s loopState) {
	d.mu.Lock()
	d.state = s
	d.mu.Unlock()
}

// lastRun is the job's newest recorded run that was not a skip.
func (d *Daemon) lastRun(job string) (RunRecord, bool) {
	if d.History == nil {
		return RunRecord{}, false
	}
	runs := d.History.Runs(job)
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Result != "skipped" {
			return runs[i], true
		}
	}
	return RunRecord{}, false
}

func (d *Daemon) record(r RunRecord) {
	if d.History == nil {
		return
	}
	if err := d.History.Add(r); err != nil {
		d.log().Error("run history not saved", "job", r.Job, "error", err.Error())
	}
}

func jobNames(jobs []Job) []string {
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.Name)
	}
	return out
}

// oneLine joins a multi-line message into one line for the history.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// NextRun is the first run of s after t, read on the wall clock of the
// schedule's time zone so that a daylight-saving change neither skips nor
// repeats a run: a time the clocks jump over runs when the jump ends (a
// daily 02:30 runs at 03:00 on the spring-forward day), and a time the
// clocks pass twice runs the first time only. robfig/cron reads instants
// and would skip the first and run the second twice. Schedules other than
// cron expressions (@every) are plain durations and read as they are.
func NextRun(s cron.Schedule, t time.Time) time.Time {
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return s.Next(t)
	}
	loc := spec.Location
	if loc == nil || loc == time.Local {
		loc = t.Location()
	}
	wallSpec := *spec
	wallSpec.Location = time.UTC
	w := wallOf(t, loc)
	// A wall time passed already (the second pass of a repeated hour) is
	// stepped over; a few steps at most, bounded all the same.
	for range 1000 {
		w = wallSpec.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if r := fromWall(w, loc); r.After(t) {
			return r
		}
	}
	return time.Time{}
}

// wallOf is t's wall clock in loc, as the same digits in UTC.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// fromWall is the first instant whose wall clock in loc is w, or, when
// the clocks jump over w, the instant the jump ends.
func fromWall(w time.Time, loc *time.Location) time.Time {
	var cands []time.Time
	for _, probe := range []time.Duration{-24 * time.Hour, 24 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		cands = append(cands, w.Add(-time.Duration(off)*time.Second))
	}
	var best time.Time
	for _, c := range cands {
		if wallOf(c, loc).Equal(w) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best.In(loc)
	}
	// In a gap: the wall clock jumps from before w to after it somewhere
	// between the candidates; find the jump to the second.
	lo, hi := cands[0], cands[1]
	if hi.Before(lo) {
		lo, hi = hi, lo
	}
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if wallOf(mid, loc).Before(w) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi.Truncate(time.Second).In(loc)
}

// NextRuns is when each job runs next after now by its schedule (for the
// metrics; a run that is due and waiting its turn shows its next one).
func (d *Daemon) NextRuns(now time.Time) map[string]time.Time {
	d.mu.Lock()
	jobs := d.jobs
	d.mu.Unlock()
	out := make(map[string]time.Time, len(jobs))
	for _, j := range jobs {
		out[j.Name] = NextRun(j.Schedule, now)
	}
	return out
}
