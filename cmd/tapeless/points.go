package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

func init() { addCommand(newPointsCmd) }

// vaultPointLister, when set (by the file that owns offload), lists the
// points archived in the configured vault so `points` can show each
// point's tier. Left nil, every point listed is local.
var vaultPointLister func(ctx context.Context, c *config) ([]archive.PointHeader, error)

type pointsOptions struct {
	source string
}

// pointInfo is one row of `points`, also its JSON shape.
type pointInfo struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	Tier   string    `json:"tier"` // local, vault or both
	Bytes  int64     `json:"bytes"`
	Files  int64     `json:"files"`
	Parent string    `json:"parent,omitempty"`
}

func newPointsCmd(g *globalOptions) *cobra.Command {
	var o pointsOptions
	c := &cobra.Command{
		Use:     "points",
		Short:   "List recovery points in the store and the vault",
		GroupID: groupPoints,
		Long: `Points lists recovery points, oldest first: ID (the first 12 hex digits;
any unique prefix names a point in other commands), data source, time, tier
(local: in the store, vault: archived only, both: archived and still local),
logical size and file count.

No passphrase is needed: this part of a point is stored in the clear.`,
		Example: `  tapeless points
  tapeless points --source home
  tapeless points --json | jq -r '.[] | select(.tier=="local") | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPoints(cmd.Context(), g, o)
		},
	}
	c.Flags().StringVar(&o.source, "source", "", "list only points of this data source")
	return c
}

// listAllPoints merges the store's points with the vault's (when a lister
// is installed) and marks each point's tier. Points that cannot be read are
// left out and named in the error, which comes with the rest.
func listAllPoints(ctx context.Context, g *globalOptions) ([]pointInfo, error) {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return nil, err
	}
	local, listErr := archive.ListPoints(ctx, v.Objects)
	v.Close()
	byID := map[archive.ID]*pointInfo{}
	var out []*pointInfo
	add := func(h archive.PointHeader, tier string) {
		if p, ok := byID[h.ID]; ok {
			if p.Tier != tier {
				p.Tier = "both"
			}
			return
		}
		p := &pointInfo{ID: h.ID.String(), Source: h.Source, Time: h.Time, Host: h.Host, Tier: tier, Bytes: h.Bytes, Files: h.Files}
		if h.Parent != nil {
			p.Parent = h.Parent.String()
		}
		byID[h.ID] = p
		out = append(out, p)
	}
	for _, h := range local {
		add(h, "local")
	}
	if vaultPointLister != nil && cfg.Vault != nil {
		remote, err := vaultPointLister(ctx, cfg)
		if err != nil {
			listErr = errors.Join(listErr, fmt.Errorf("list vault points: %w", err))
		}
		for _, h := range remote {
			add(h, "vault")
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	res := make([]pointInfo, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res, listErr
}

func runPoints(ctx context.Context, g *globalOptions, o pointsOptions) error {
	all, listErr := listAllPoints(ctx, g)
	if all == nil && listErr != nil {
		return listErr
	}
	rows := []pointInfo{}
	for _, p := range all {
		if o.source == "" || p.Source == o.source {
			rows = append(rows, p)
		}
	}
	switch {
	case g.json:
		if err := writeJSON(g.stdout, rows); err != nil {
			return err
		}
	case g.quiet:
	case len(rows) == 0:
		fmt.Fprintln(g.stdout, "No recovery points.")
	default:
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSOURCE\tTIME\tTIER\tSIZE\tFILES")
		for _, p := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", p.ID[:12], termSafe(p.Source), p.Time.Local().Format("2006-01-02 15:04:05"),
				p.Tier, storage.FormatBytes(p.Bytes), p.Files)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return listErr
}

// resolvePoint finds the one point among ps whose ID starts with prefix.
func resolvePoint(ps []archive.PointHeader, prefix string) (archive.PointHeader, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if prefix == "" {
		return archive.PointHeader{}, usageError{fmt.Errorf("%w: empty point ID", errNoPoint)}
	}
	var found []archive.PointHeader
	for _, p := range ps {
		if strings.HasPrefix(p.ID.String(), prefix) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return archive.PointHeader{}, fmt.Errorf("%w %q: see 'tapeless points'", errNoPoint, prefix)
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, p := range found {
		ids = append(ids, p.ID.String()[:16])
	}
	return archive.PointHeader{}, usageError{fmt.Errorf("point ID prefix %q is ambiguous: it matches %s", prefix, strings.Join(ids, ", "))}
}
