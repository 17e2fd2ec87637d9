package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/humanize"
)

func init() { addCommand(newPruneCmd) }

type pruneOptions struct {
	dryRun         bool
	repackEstimate bool   // moved to `vault repack-estimate`: refused
	passphraseFile string // came with --repack-estimate
}

func newPruneCmd(g *globalOptions) *cobra.Command {
	var o pruneOptions
	c := &cobra.Command{
		Use:     "prune [--dry-run]",
		Short:   "Expire vault points by the long-term policy and remove what nothing needs",
		GroupID: groupPoints,
		Long: `Prune applies the long-term retention policy ('retention: vault:' daily,
weekly, monthly and yearly counts) to this server's points in the vault,
deletes the point objects it expires, and then removes the packs and index
objects no remaining point of any server needs. Points whose replication
is pending are never expired; an empty vault policy expires nothing.

A point object that cannot be read (damaged) is skipped and reported, and
the exit code is 3; while a point in the vault is damaged, prune still
expires points but removes no pack or index object, since the damaged
point may need any of them.

Prune holds the vault lock "prune" while it runs. It refuses to delete
anything when the vault listing lacks a point the local catalogue says is
archived (a listing that came back short must never look like deleted
points), and when the local clock and an S3 server's clock differ by more
than 5 minutes. On a vault with --immutable-days, objects whose retention
has not ended are reported as waiting and left for a later prune. Objects
that no point references and that are younger than 48 hours are left too:
they may belong to an offload still running on another server.

--dry-run lists what would be deleted and changes nothing. A killed prune
is completed by the next one.

Packs that expired points shared with kept ones stay whole; 'tapeless vault
repack-estimate' reports what repacking the mostly-empty ones would free.`,
		Example: `  tapeless prune --dry-run
  tapeless prune
  tapeless prune --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.repackEstimate {
				// It used to prune as well; a cron line that still says
				// so must fail loudly, not silently stop pruning.
				return usageError{errors.New("--repack-estimate is now 'tapeless vault repack-estimate', which reports and removes nothing; run 'tapeless prune' on its own to prune")}
			}
			return runPrune(cmd.Context(), g, o)
		},
	}
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be deleted; change nothing")
	c.Flags().BoolVar(&o.repackEstimate, "repack-estimate", false, "moved to 'tapeless vault repack-estimate'")
	c.Flags().StringVar(&o.passphraseFile, "passphrase-file", "", "moved with --repack-estimate")
	c.Flags().MarkHidden("repack-estimate")
	c.Flags().MarkHidden("passphrase-file")
	return c
}

func runPrune(ctx context.Context, g *globalOptions, o pruneOptions) error {
	s, cfg, err := openLocalStore(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	site := siteOf(g, cfg)
	rep, err := scheduler.Prune(ctx, site, s, scheduler.PruneRequest{DryRun: o.dryRun})
	if err != nil {
		return err
	}
	switch {
	case g.json:
		if err := writeJSON(g.stdout, pruneJSON{Plan: decisionRows(rep.Plan, nil), PruneResult: rep.Result}); err != nil {
			return err
		}
	case !g.quiet:
		printPruneResult(g.stdout, rep.Plan, rep.Result, site.Policy)
	}
	// Damaged points were skipped: partial (exit 3).
	if p := rep.Problems(); len(p) > 0 {
		return partialError{strings.Join(p, "; and ")}
	}
	return nil
}

// pruneJSON is the JSON of `prune`: the retention plan, in the rows
// offload prints, and what prune did.
type pruneJSON struct {
	Plan []offloadPlanRow `json:"plan"`
	*archive.PruneResult
}

func printPruneResult(w io.Writer, plan retention.Plan, r *archive.PruneResult, p retention.Policy) {
	var rows []offloadPlanRow
	for _, r := range decisionRows(plan, nil) {
		if r.Tier != retention.Local.String() { // prune touches the vault only
			rows = append(rows, r)
		}
	}
	writePlanTable(w, rows, false, time.Local)
	verb := "Removed"
	if r.DryRun {
		verb = "Would remove"
	}
	if p.Vault.IsEmpty() {
		fmt.Fprintln(w, "The vault policy is empty: no point expires.")
	}
	fmt.Fprintf(w, "%s %d expired points and %d objects in all (%s; %d of them referenced by no point).\n",
		verb, len(r.Expired), r.ObjectsRemoved, humanize.Bytes(r.BytesRemoved), r.Orphans)
	if r.Foreign > 0 {
		fmt.Fprintf(w, "%d points of other servers' keys were left to their own prune.\n", r.Foreign)
	}
	if n := len(r.Damaged); n > 0 {
		fmt.Fprintf(w, "Damaged point objects skipped: %d\n", n)
		for _, d := range r.Damaged {
			fmt.Fprintf(w, "  damaged  %s\n", d)
		}
	}
	if r.PacksKept {
		fmt.Fprintf(w, "%s: a damaged point in the vault may need any of them. Prune collects them once the point is repaired or removed.\n",
			map[bool]string{false: "No pack or index object was removed", true: "No pack or index object would be removed"}[r.DryRun])
	}
	if n := len(r.Waiting); n > 0 {
		fmt.Fprintf(w, "%d objects are under object lock and wait for their retention to end:\n", n)
		for i, o := range r.Waiting {
			if i == 10 {
				fmt.Fprintf(w, "  … and %d more\n", n-10)
				break
			}
			until := ""
			if !o.Until.IsZero() {
				until = " until about " + o.Until.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(w, "  waiting  %s%s\n", o.Name, until)
		}
	}
}
