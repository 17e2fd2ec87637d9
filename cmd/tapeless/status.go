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
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show this server's store and offload state (local only, no vault access)",
		GroupID: groupService,
		Long: `Status summarises this server from local state only, so it answers at once
even with the vault unreachable or an offload running: the store, its
recovery points, and the offload catalogue (points archived, uploading,
expired, and the replication backlog of a GRS vault whose secondary copy
was unreachable). 'tapeless vault status' asks the vault itself.`,
		Example: `  tapeless status
  tapeless status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), g)
		},
	}
}

func runStatus(ctx context.Context, g *globalOptions) error {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	out := statusJSON{Config: g.configFile, Store: cfg.Store}
	if cfg.Vault != nil {
		out.Vault, out.Replication = cfg.Vault.Name, cfg.Vault.Replication
	}
	if cfg.Store == "" {
		return fmt.Errorf("no store configured in %s: run 'tapeless register' first", g.configFile)
	}
	// The store's objects are read without its lock: listing points
	// only reads immutable objects.
	objs, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(cfg.Store, "objects")), storage.Options{})
	if err != nil {
		return err
	}
	local, err := archive.ListPoints(ctx, objs)
	objs.Close()
	if err != nil && !archive.OnlyDamage(err) {
		return err
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
	if g.json {
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
		return damageErr
	}
	if g.quiet {
		return damageErr
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
		return damageErr
	}
	fmt.Fprintf(w, "Offloaded:    %d points archived, %d uploading (an interrupted offload; the next one finishes it), %d expired by prune; last %s\n",
		out.Archived, out.Uploading, out.Expired, last)
	printPendingReplication(w, p, nil)
	return damageErr
}
