package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/humanize"
)

func init() { addCommand(newOffloadCmd) }

type offloadOptions struct {
	dryRun     bool
	keepWithin string
	keepLast   int
	readBack   bool
}

func newOffloadCmd(g *globalOptions) *cobra.Command {
	var o offloadOptions
	c := &cobra.Command{
		Use:     "offload [--dry-run] [--keep-within DUR] [--keep-last N]",
		Short:   "Move recovery points the retention policy calls old into the vault",
		GroupID: groupPoints,
		Long: `Offload applies the short-term retention policy ('retention: local:' in the
configuration; --keep-within and --keep-last override it) and moves every
point it calls old from the local store into the vault, oldest first.

For each point, every pack and index object it needs that the vault lacks
is uploaded (throttled as configured) to the primary copy and, for GRS, to
the secondary copy, and each is confirmed on that copy by size and checksum
read back from it; the point object is written last. Only when everything
is confirmed on every copy the replication setting demands is the point
deleted locally; packs no remaining local point needs are then removed
from the store. Progress is kept in a local catalogue, so an offload that
was interrupted or killed is simply run again.

GRS with the secondary copy unreachable: the primary copy proceeds, the
point is "archived, replication pending", its local copy is kept and the
exit code is 3; the next offload copies what the secondary lacks and only
then deletes the local copy. 'tapeless vault status' shows what is pending.

A point object in the store that cannot be read (damaged) is skipped and
reported (exit code 3): it is never offloaded or deleted, and no local
pack is collected while it is there, since it may need any of them.

A point whose packs or index objects are missing from the store is
damaged: it is not offloaded and never deleted locally, the others go on,
and offload names it with what it lacks and exits 3.

Before anything moves, the local clock is compared with each S3 server's
(more than 5 minutes apart: refused), incomplete multipart uploads left by
a killed run are aborted, and the staging folder must have 5% of the data
to move free. --dry-run prints the plan with sizes and changes nothing; it
needs no vault access.`,
		Example: `  tapeless offload --dry-run
  tapeless offload
  tapeless offload --keep-within 7d --keep-last 1
  tapeless offload --keep-within 0s --keep-last 0     # offload every point now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOffload(cmd.Context(), g, o, cmd.Flags().Changed("keep-within"), cmd.Flags().Changed("keep-last"))
		},
	}
	f := c.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan with sizes; change nothing")
	f.StringVar(&o.keepWithin, "keep-within", "", "keep points younger than this on local disk, e.g. 14d, 36h (overrides the config)")
	f.IntVar(&o.keepLast, "keep-last", 0, "keep at least this many newest points per source on local disk (overrides the config)")
	f.BoolVar(&o.readBack, "read-back", false, "also download every uploaded object from each copy and check its SHA-256")
	return c
}

// offloadJSON is the JSON of `offload`.
type offloadJSON struct {
	DryRun bool                   `json:"dry_run"`
	Plan   []offloadPlanRow       `json:"plan"`
	Upload int64                  `json:"max_upload_bytes"` // stored bytes an offload sends at most
	Result *archive.OffloadResult `json:"result,omitempty"`
	// Damaged are the store's point objects that cannot be read: not
	// offloaded, kept locally with every local pack.
	Damaged []archive.DamagedPoint `json:"damaged"`
}

// offloadPlanRow is one decision of the plan; prune prints the same rows.
type offloadPlanRow struct {
	Action  string    `json:"action"`
	Source  string    `json:"source"`
	Time    time.Time `json:"time"`
	ID      string    `json:"id"`
	Tier    string    `json:"tier"`
	Stored  int64     `json:"stored_bytes,omitempty"` // local points only: what the point takes in the store
	Reasons []string  `json:"reasons"`
}

func planRows(p *scheduler.OffloadPlan) []offloadPlanRow { return decisionRows(p.Plan, p.Stored) }

// decisionRows flattens a retention plan into rows, with the stored size
// of the points stored names.
func decisionRows(p retention.Plan, stored map[archive.ID]int64) []offloadPlanRow {
	rows := []offloadPlanRow{}
	for _, d := range p.Decisions {
		r := offloadPlanRow{Action: d.Action.String(), Source: d.Point.Source, Time: d.Point.Time, ID: d.Point.ID,
			Tier: d.Point.Tier.String(), Reasons: d.Reasons}
		if id, err := archive.ParseID(d.Point.ID); err == nil {
			r.Stored = stored[id]
		}
		rows = append(rows, r)
	}
	return rows
}

// writePlanTable writes plan rows as a table, with the STORED SIZE column
// when withSize (offload's plan; prune's shows vault points only).
func writePlanTable(w io.Writer, rows []offloadPlanRow, withSize bool, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	size := ""
	if withSize {
		size = "STORED SIZE\t"
	}
	fmt.Fprintf(tw, "ACTION\tSOURCE\tTIME\tID\tTIER\t%sREASONS\n", size)
	for _, r := range rows {
		if withSize {
			size = "-\t"
			if r.Stored > 0 {
				size = humanize.Bytes(r.Stored) + "\t"
			}
		}
		id := r.ID
		if len(id) > 12 {
			id = id[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\n", r.Action, termSafe(r.Source), r.Time.In(loc).Format("2006-01-02 15:04:05"),
			id, r.Tier, size, strings.Join(r.Reasons, "; "))
	}
	return tw.Flush()
}

// formatOffloadPlan writes the plan as a table with each local point's
// stored size, then the counts and what an offload would send.
func formatOffloadPlan(w io.Writer, p *scheduler.OffloadPlan, loc *time.Location) error {
	if err := writePlanTable(w, planRows(p), true, loc); err != nil {
		return err
	}
	var counts []string
	for _, a := range []retention.Action{retention.KeepLocal, retention.Offload, retention.KeepInVault, retention.Expire} {
		counts = append(counts, fmt.Sprintf("%d %s", len(p.ByAction(a)), a))
	}
	fmt.Fprintf(w, "%d points: %s\n", len(p.Decisions), strings.Join(counts, ", "))
	n := len(p.ByAction(retention.Offload))
	_, err := fmt.Fprintf(w, "Offload would move %d points: at most %s in %d objects (objects the vault already holds are skipped).\n",
		n, humanize.Bytes(p.Upload), p.Objects)
	return err
}

func runOffload(ctx context.Context, g *globalOptions, o offloadOptions, withinSet, lastSet bool) error {
	s, cfg, err := openLocalStore(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	site := siteOf(g, cfg)
	policy := site.Policy
	if withinSet {
		d, err := parseDuration(o.keepWithin)
		if err != nil {
			return usageError{fmt.Errorf("--keep-within: %w", err)}
		}
		policy.Local.KeepWithin = d
	}
	if lastSet {
		if o.keepLast < 0 {
			return usageError{errors.New("--keep-last must be 0 or more")}
		}
		policy.Local.KeepLast = o.keepLast
	}
	if err := policy.Validate(); err != nil {
		return usageError{err}
	}
	bar := newProgressBar(g)
	rep, err := scheduler.Offload(ctx, site, s, scheduler.OffloadRequest{
		Policy:   policy,
		DryRun:   o.dryRun,
		ReadBack: o.readBack,
		Progress: func(p archive.OffloadProgress) {
			bar.update(fmt.Sprintf("point %d/%d", min(p.PointsDone+1, p.Points), p.Points), p.Bytes, p.TotalBytes, p.Elapsed)
		},
		Log: func(msg string) {
			if !g.quiet && !g.json {
				bar.printf("%s\n", msg)
			}
		},
	})
	bar.clear()
	if err != nil {
		return err
	}
	switch {
	case g.json:
		if err := writeJSON(g.stdout, offloadJSON{DryRun: o.dryRun, Plan: planRows(rep.Plan), Upload: rep.Plan.Upload, Result: rep.Result, Damaged: rep.Damaged}); err != nil {
			return err
		}
	case g.quiet:
	case o.dryRun:
		if err := formatOffloadPlan(g.stdout, rep.Plan, time.Local); err != nil {
			return err
		}
	default:
		printOffloadResult(g.stdout, rep.Result)
	}
	if p := rep.Problems(); len(p) > 0 {
		return partialError{strings.Join(p, "; and ")}
	}
	return nil
}

func printOffloadResult(w io.Writer, r *archive.OffloadResult) {
	fmt.Fprintf(w, "Offload: %d points archived and removed locally", len(r.Archived))
	if n := len(r.Pending); n > 0 {
		fmt.Fprintf(w, ", %d archived with replication pending (kept locally)", n)
	}
	if n := len(r.CaughtUp); n > 0 {
		fmt.Fprintf(w, ", %d caught up with the secondary copy", n)
	}
	if n := len(r.LocalDeleteDeferred); n > 0 {
		fmt.Fprintf(w, ", %d archived and kept locally until the next offload (a restore was reading the store)", n)
	}
	if n := len(r.Incomplete); n > 0 {
		fmt.Fprintf(w, ", %d damaged and not offloaded", n)
	}
	fmt.Fprintln(w, ".")
	for _, id := range r.Archived {
		fmt.Fprintf(w, "  archived  %s\n", shortID(id))
	}
	for _, id := range r.LocalDeleteDeferred {
		fmt.Fprintf(w, "  archived, local copy kept  %s\n", shortID(id))
	}
	for _, id := range r.Pending {
		fmt.Fprintf(w, "  archived, replication pending  %s\n", shortID(id))
	}
	for _, d := range r.Incomplete {
		fmt.Fprintf(w, "  damaged, kept locally  %s: the store lacks %s\n", shortID(d.Point), strings.Join(d.Missing, ", "))
	}
	fmt.Fprintf(w, "  sent %s in %d object copies (%d copies already there and confirmed)\n",
		humanize.Bytes(r.BytesUploaded), r.ObjectsUploaded, r.ObjectsPresent)
	if r.PacksCollected > 0 {
		fmt.Fprintf(w, "  freed %s locally (%d packs no local point needs)\n", humanize.Bytes(r.BytesFreed), r.PacksCollected)
	}
	if r.UploadsAborted > 0 {
		fmt.Fprintf(w, "  aborted %d incomplete uploads of an earlier run\n", r.UploadsAborted)
	}
	if d := r.Duration; d > 0 && r.BytesUploaded > 0 {
		fmt.Fprintf(w, "  %s at %s/s\n", d.Round(time.Millisecond), humanize.Bytes(int64(float64(r.BytesUploaded)/d.Seconds())))
	}
}
