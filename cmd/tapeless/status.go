package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/humanize"
)

func init() { addCommand(newStatusCmd) }

// pendingReplication reads the local catalogue's replication backlog for
// `vault status` and `status`. It needs no store lock, so it answers while
// an offload runs.
func pendingReplication(ctx context.Context, cfg *config) (*archive.PendingSummary, error) {
	if cfg.Store == "" {
		return nil, nil
	}
	cat, err := archive.CatalogAt(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	p := archive.PendingReplication(cat)
	return &p, nil
}

// printPendingReplication writes the "Pending:" line of the status output.
func printPendingReplication(w io.Writer, p *archive.PendingSummary, err error) {
	switch {
	case err != nil:
		fmt.Fprintf(w, "Pending:      replication backlog unknown (%v)\n", err)
	case p == nil || p.Objects == 0:
		fmt.Fprintf(w, "Pending:      no replication pending\n")
	default:
		fmt.Fprintf(w, "Pending:      replication pending for %d points: %d objects, %s, oldest since %s (the next offload catches up)\n",
			p.Points, p.Objects, humanize.Bytes(p.Bytes), p.Oldest.Local().Format("2006-01-02 15:04"))
	}
}

// statusJSON is the JSON of `status`.
type statusJSON struct {
	Config             string                  `json:"config"`
	Store              string                  `json:"store"`
	Vault              string                  `json:"vault,omitempty"`
	Replication        string                  `json:"replication,omitempty"`
	LocalPoints        int                     `json:"local_points"`
	LocalBytes         int64                   `json:"local_source_bytes"` // logical bytes of the local points
	Archived           int                     `json:"archived_points"`
	Uploading          int                     `json:"uploading_points"`
	Expired            int                     `json:"expired_points"`
	PendingReplication *archive.PendingSummary `json:"pending_replication,omitempty"`
	LastOffload        *time.Time              `json:"last_offload,omitempty"`
	CatalogError       string                  `json:"catalog_error,omitempty"`
	// Damaged are the store's point objects that cannot be read; they
	// are not counted in LocalPoints.
	Damaged []archive.DamagedPoint `json:"damaged"`
	// StoreBytes is the store folder's size on disk.
	StoreBytes int64 `json:"store_disk_bytes"`
	// Jobs are the daemon's jobs: schedule, next run and last result.
	Jobs         []statusJob `json:"jobs"`
	HistoryError string      `json:"history_error,omitempty"`
	// Warnings are what an operator must see (docs/OPERATIONS.md); any
	// makes the exit code 1.
	Warnings []scheduler.Warning `json:"warnings"`
}

// statusJob is one daemon job in `status`.
type statusJob struct {
	Job           string     `json:"job"` // "backup:NAME", "offload", "prune", "verify"
	Schedule      string     `json:"schedule"`
	ScheduleError string     `json:"schedule_error,omitempty"`
	NextRun       *time.Time `json:"next_run,omitempty"`
	Last          *statusRun `json:"last,omitempty"`         // the newest recorded run
	LastSuccess   *time.Time `json:"last_success,omitempty"` // start of the newest successful run
}

// statusRun is a recorded run in `status` (scheduler.RunRecord, in the
// JSON contract's names).
type statusRun struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Result string    `json:"result"` // ok, partial, failed, skipped
	Bytes  int64     `json:"moved_bytes,omitempty"`
	Error  string    `json:"error,omitempty"`
}

func (r statusRun) ok() bool { return r.Result == "ok" || r.Result == "partial" }

// warningsError makes `status` exit 1 when it has warnings.
type warningsError struct{ ws []scheduler.Warning }

func (e warningsError) Error() string {
	if len(e.ws) == 1 {
		return "1 warning: " + e.ws[0].Message
	}
	return fmt.Sprintf("%d warnings, the first: %s", len(e.ws), e.ws[0].Message)
}

// statusSchedules are the daemon's jobs in the configuration: a backup per
// data source with a schedule, then offload, prune and verify.
func statusSchedules(cfg *config) ([]scheduler.Schedule, error) {
	loc := time.Local
	if tz := cfg.Jobs.TimeZone; tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("jobs time_zone %q: %w", tz, err)
		}
		loc = l
	}
	var out []scheduler.Schedule
	for _, s := range cfg.Sources {
		if s.Schedule != "" {
			out = append(out, scheduler.Schedule{Job: "backup:" + s.Name, Spec: s.Schedule, Loc: loc})
		}
	}
	for _, j := range []struct{ job, spec string }{{"offload", cfg.Jobs.Offload}, {"prune", cfg.Jobs.Prune}, {"verify", cfg.Jobs.Verify}} {
		if j.spec != "" {
			out = append(out, scheduler.Schedule{Job: j.job, Spec: j.spec, Loc: loc})
		}
	}
	return out, nil
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show this server's store and offload state (local only, no vault access)",
		GroupID: groupService,
		Long: `Status summarises this server from local state only, so it answers at once
even with the vault unreachable or an offload running: the store, its
recovery points and its size on disk, the offload catalogue (points
archived, uploading, expired, and the replication backlog of a GRS vault
whose secondary copy was unreachable), each daemon job's schedule, next
run and last result (from the run history in the store folder), and the
warnings an operator must see: a job that has not succeeded for over
twice its schedule's interval, a failed last run, damage found by verify,
a staging folder below the scratch rule for the newest point, missing or
exposed vault keys, a stuck or foreign store lock. docs/OPERATIONS.md says
what each warning means and what to do. 'tapeless vault status' asks the
vault itself.

Exit codes: 0 healthy, 1 warnings, 2 usage, 3 the store holds damaged
point objects.`,
		Example: `  tapeless status
  tapeless status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), g)
		},
	}
}

// statusReport is what `status` read: its JSON, the damage that makes
// it exit 3 and the catalogue's error, if any.
type statusReport struct {
	out       statusJSON
	damageErr error
	catErr    error
}

// buildStatus reads the status of cfg's store from local state only (the
// daemon's /api/status serves it too).
func buildStatus(ctx context.Context, configFile string, cfg *config) (statusReport, error) {
	out := statusJSON{Config: configFile, Store: cfg.Store}
	if cfg.Vault != nil {
		out.Vault, out.Replication = cfg.Vault.Name, cfg.Vault.Replication
	}
	if cfg.Store == "" {
		return statusReport{}, fmt.Errorf("no store configured in %s: run 'tapeless register' first", configFile)
	}
	// The store's objects are read without its lock: listing points
	// only reads immutable objects.
	objs, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(cfg.Store, "objects")), storage.Options{})
	if err != nil {
		return statusReport{}, err
	}
	local, err := archive.ListPoints(ctx, objs)
	objs.Close()
	if err != nil && !archive.OnlyDamage(err) {
		return statusReport{}, err
	}
	// A damaged point is reported and skipped; it must not hide the rest.
	out.Damaged = append([]archive.DamagedPoint{}, archive.DamagedPoints(err)...)
	var damageErr error
	if len(out.Damaged) > 0 {
		damageErr = partialError{err.Error()}
	}
	out.LocalPoints = len(local)
	for _, p := range local {
		out.LocalBytes += p.Bytes
	}
	// The catalogue lives in the store's database, which a running
	// backup or offload holds: then say so rather than fail.
	cat, catErr := archive.CatalogAt(ctx, cfg.Store)
	if catErr != nil {
		out.CatalogError = fmt.Sprintf("%v (a backup, offload or prune may be running)", catErr)
	}
	for _, e := range cat {
		switch e.State {
		case archive.StateArchived, archive.StatePending:
			out.Archived++
		case archive.StateUploading:
			out.Uploading++
		case archive.StateExpired:
			out.Expired++
		}
		if e.Archived() && (out.LastOffload == nil || e.Updated.After(*out.LastOffload)) {
			u := e.Updated
			out.LastOffload = &u
		}
	}
	var p *archive.PendingSummary
	if catErr == nil {
		sum := archive.PendingReplication(cat)
		p = &sum
	}
	out.PendingReplication = p

	if out.StoreBytes, err = scheduler.DirSize(cfg.Store); err != nil {
		return statusReport{}, fmt.Errorf("size of the store: %w", err)
	}
	// Health: the daemon's jobs, the run history and local facts.
	facts := scheduler.HealthFacts{LastBackup: map[string]time.Time{}, LastOffload: zeroIfNil(out.LastOffload),
		DamagedPoints: len(out.Damaged), ConfigFile: configFile,
		ConfigHasKeys: cfg.Vault != nil && (cfg.Vault.SecretKey != "" || cfg.Vault.SecondarySecretKey != "")}
	var newest time.Time
	seen := func(source string, t time.Time, bytes int64) {
		if t.After(facts.LastBackup[source]) {
			facts.LastBackup[source] = t
		}
		if t.After(newest) {
			newest, facts.NewestPointBytes = t, bytes
		}
	}
	for _, pt := range local {
		seen(pt.Source, pt.Time, pt.Bytes)
	}
	for _, e := range cat {
		seen(e.Source, e.Time, e.Bytes)
	}
	hist, err := scheduler.OpenHistory(cfg.Store)
	if err != nil {
		out.HistoryError = err.Error()
		hist = nil
	}
	scheds, err := statusSchedules(cfg)
	if err != nil {
		out.Warnings = append(out.Warnings, scheduler.Warning{Code: scheduler.WarnSchedule, Message: err.Error(),
			Hint: "fix time_zone under jobs: in the configuration (an IANA name such as Europe/Berlin)"})
	}
	t := now()
	out.Jobs = []statusJob{}
	for _, sc := range scheds {
		j := statusJob{Job: sc.Job, Schedule: sc.Spec}
		if next, err := sc.Next(t); err != nil {
			j.ScheduleError = err.Error()
		} else {
			next = next.UTC()
			j.NextRun = &next
		}
		if hist != nil {
			if last, lastOK, ok := hist.Last(sc.Job); ok {
				j.Last = &statusRun{Start: last.Start.UTC(), End: last.End.UTC(), Result: last.Result, Bytes: last.Bytes, Error: last.Error}
				if lastOK.Job != "" {
					s := lastOK.Start.UTC()
					j.LastSuccess = &s
				}
			}
		}
		out.Jobs = append(out.Jobs, j)
	}
	out.Warnings = append(out.Warnings, scheduler.Health(siteOf(nil, cfg), hist, scheds, t, facts)...)
	if out.Warnings == nil {
		out.Warnings = []scheduler.Warning{}
	}
	return statusReport{out: out, damageErr: damageErr, catErr: catErr}, nil
}

func runStatus(ctx context.Context, g *globalOptions) error {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	rep, err := buildStatus(ctx, g.configFile, cfg)
	if err != nil {
		return err
	}
	out, catErr, p := rep.out, rep.catErr, rep.out.PendingReplication
	// Damage keeps its exit code 3; other warnings make it 1.
	result := rep.damageErr
	if result == nil && len(out.Warnings) > 0 {
		result = warningsError{out.Warnings}
	}

	if g.json {
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
		return result
	}
	if g.quiet {
		return result
	}
	w := g.stdout
	fmt.Fprintf(w, "Config:       %s\n", out.Config)
	fmt.Fprintf(w, "Store:        %s: %d local points (%s of source data)\n", out.Store, out.LocalPoints, humanize.Bytes(out.LocalBytes))
	if n := len(out.Damaged); n > 0 {
		fmt.Fprintf(w, "Damaged:      %d of the store's point objects cannot be read and were skipped (run 'tapeless verify'):\n", n)
		for _, d := range out.Damaged {
			fmt.Fprintf(w, "                %s: %v\n", shortHex(path.Base(d.Name)), d.Err)
		}
	}
	if out.Vault != "" {
		fmt.Fprintf(w, "Vault:        %s (%s)\n", out.Vault, out.Replication)
	} else {
		fmt.Fprintf(w, "Vault:        not registered\n")
	}
	last := "never"
	if out.LastOffload != nil {
		last = out.LastOffload.Local().Format("2006-01-02 15:04")
	}
	if catErr != nil {
		fmt.Fprintf(w, "Offloaded:    unknown: %s\n", out.CatalogError)
	} else {
		fmt.Fprintf(w, "Offloaded:    %d points archived, %d uploading (an interrupted offload; the next one finishes it), %d expired by prune; last %s\n",
			out.Archived, out.Uploading, out.Expired, last)
		printPendingReplication(w, p, nil)
	}
	fmt.Fprintf(w, "Disk:         the store folder holds %s\n", humanize.Bytes(out.StoreBytes))
	printStatusJobs(w, out)
	if len(out.Warnings) == 0 {
		fmt.Fprintf(w, "Warnings:     none\n")
		return result
	}
	fmt.Fprintf(w, "Warnings:     %d\n", len(out.Warnings))
	for _, wn := range out.Warnings {
		fmt.Fprintf(w, "  ! %s [%s]\n      %s\n", termSafeText(wn.Message), wn.Code, termSafeText(wn.Hint))
	}
	return result
}

// printStatusJobs writes the "Jobs:" block: each daemon job's schedule,
// next run and last result.
func printStatusJobs(w io.Writer, out statusJSON) {
	const stamp = "2006-01-02 15:04"
	if out.HistoryError != "" {
		fmt.Fprintf(w, "History:      unreadable: %s\n", out.HistoryError)
	}
	if len(out.Jobs) == 0 {
		fmt.Fprintf(w, "Jobs:         none scheduled\n")
		return
	}
	fmt.Fprintf(w, "Jobs:         (run history in %s)\n", filepath.Join(out.Store, scheduler.HistoryFile))
	for _, j := range out.Jobs {
		next := "next: invalid schedule"
		if j.NextRun != nil {
			next = "next " + j.NextRun.Local().Format(stamp)
		}
		last := "no run recorded"
		if r := j.Last; r != nil {
			last = fmt.Sprintf("last %s %s", r.Start.Local().Format(stamp), r.Result)
			if r.Error != "" {
				last += ": " + termSafeText(r.Error)
			}
			if !r.ok() && j.LastSuccess != nil {
				last += "; last success " + j.LastSuccess.Local().Format(stamp)
			}
		}
		fmt.Fprintf(w, "  %-14s %-16s %s; %s\n", j.Job, termSafeText(j.Schedule), next, last)
	}
}

func zeroIfNil(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
