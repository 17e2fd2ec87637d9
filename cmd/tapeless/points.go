package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage/humanize"
	"github.com/tapeless/tapeless/storage/vault"
)

func init() { addCommand(newPointsCmd) }

type pointsOptions struct {
	source     string
	server     string // another registered server's points
	allServers bool
}

// pointsJSON is the JSON of `points`.
type pointsJSON struct {
	Points []pointInfo `json:"points"`
}

// pointInfo is one row of `points`, also its JSON shape.
type pointInfo struct {
	ID     string    `json:"id"`
	Source string    `json:"source,omitempty"`
	Time   time.Time `json:"time,omitzero"`
	Host   string    `json:"host,omitempty"`
	Tier   string    `json:"tier"`         // local, vault or both
	Bytes  int64     `json:"source_bytes"` // logical size of the files
	Files  int64     `json:"files"`
	Parent string    `json:"parent_id,omitempty"`
	// Server is the registered server whose key the point is sealed to
	// ("" when no registration names the key); KeyFingerprint that key.
	Server         string `json:"server,omitempty"`
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Damaged says which copies of the point object cannot be read and
	// why; a point with no readable copy has no source, time or host.
	Damaged string `json:"damaged,omitempty"`
	// VaultPacks counts the packs of a local point that only the vault
	// holds (its backup deduplicated against points offloaded before):
	// restoring it reads them from the vault. The table shows its tier
	// as "local+vault".
	VaultPacks int `json:"vault_packs,omitempty"`
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
source size (the logical size of its files, before dedup and compression)
and file count.

No passphrase is needed: this part of a point is stored in the clear.

A point object that cannot be read (damaged) is listed with its ID and
the damage, and the others are listed as usual; the exit code is then 3.
When the vault's listing lacks points the local catalogue records as
archived, they are read directly by name and the shortfall is reported
(exit 3; exit 1 when some are not in the vault at all).`,
		Example: `  tapeless points
  tapeless points --source home
  tapeless points --json | jq -r '.points[] | select(.tier=="local") | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPoints(cmd.Context(), g, o)
		},
	}
	c.Flags().StringVar(&o.source, "source", "", "list only points of this data source")
	c.Flags().StringVar(&o.server, "server", "", "list the vault points of another registered server (disaster recovery)")
	c.Flags().BoolVar(&o.allServers, "all-servers", false, "list the points of every server registered to the vault")
	return c
}

// listAllPoints merges the store's points with the vault's (when a lister
// is installed) and marks each point's tier. Damaged points get a row of
// their own (ID, tier, damage); they and points that cannot be read are
// named in the error, which comes with the rest.
func listAllPoints(ctx context.Context, g *globalOptions, o pointsOptions) ([]pointInfo, error) {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return nil, err
	}
	local, listErr := archive.ListPoints(ctx, v.Objects)
	vaulted, verr := archive.VaultedPacks(ctx, v.Objects)
	if verr != nil {
		listErr = errors.Join(listErr, verr)
	}
	dir := v.Dir
	v.Close()
	if local == nil && listErr != nil && !archive.OnlyDamage(listErr) {
		return nil, listErr
	}
	byID := map[string]*pointInfo{}
	var out []*pointInfo
	servers := map[string]string{} // key fingerprint → server
	hidden := 0
	add := func(h archive.PointHeader, tier string) {
		p, ok := byID[h.ID.String()]
		if ok && p.Source != "" {
			if p.Tier != tier {
				p.Tier = "both"
			}
			return
		}
		if !ok {
			p = &pointInfo{Tier: tier}
			byID[h.ID.String()] = p
			out = append(out, p)
		} else if p.Tier != tier {
			p.Tier = "both" // a damaged copy was seen first
		}
		p.ID, p.Source, p.Time, p.Host, p.Bytes, p.Files = h.ID.String(), h.Source, h.Time, h.Host, h.Bytes, h.Files
		p.KeyFingerprint, p.Server = h.KeyFingerprint, servers[h.KeyFingerprint]
		if h.Parent != nil {
			p.Parent = h.Parent.String()
		}
	}
	damaged := func(d archive.DamagedPoint, tier string) {
		id := path.Base(d.Name)
		what := map[string]string{"local": "store copy", "vault": "vault copy"}[tier] + ": " + d.Err.Error()
		p, ok := byID[id]
		if !ok {
			p = &pointInfo{ID: id, Tier: tier}
			byID[id] = p
			out = append(out, p)
		} else if p.Tier != tier {
			p.Tier = "both"
		}
		p.Damaged = strings.TrimPrefix(p.Damaged+"; "+what, "; ")
	}
	var remote []archive.PointHeader
	var regs []vault.Registration
	var remoteErr error
	if cfg.Vault != nil && cfg.Vault.Name != "" {
		remote, regs, remoteErr = listVaultPointsAndServers(ctx, cfg, catalogArchived(ctx, dir, cfg.Vault.Name))
		if remoteErr != nil {
			listErr = errors.Join(listErr, fmt.Errorf("vault %s: %w", cfg.Vault.Name, remoteErr))
		}
	}
	self := ""
	if cfg.Vault != nil {
		self = cfg.Vault.KeyFingerprint
	}
	keys, err := shownKeys(regs, self, o)
	if err != nil {
		return nil, err
	}
	for _, r := range regs {
		servers[r.KeyFingerprint] = r.Server // the newest record of a key wins
	}
	shown := func(h archive.PointHeader) bool { return keys == nil || keys[h.KeyFingerprint] }
	for _, h := range local {
		if shown(h) {
			add(h, "local")
			for _, r := range h.Packs {
				if _, ok := vaulted[r.Pack]; ok {
					byID[h.ID.String()].VaultPacks++
				}
			}
		}
	}
	for _, d := range archive.DamagedPoints(listErr) {
		damaged(d, "local")
	}
	for _, h := range remote {
		if shown(h) {
			add(h, "vault")
		} else {
			hidden++
		}
	}
	for _, d := range archive.DamagedPoints(remoteErr) {
		damaged(d, "vault")
	}
	if hidden > 0 && !g.quiet && !g.json {
		fmt.Fprintf(g.stderr, "note: %d vault points of other servers are not shown: --server NAME or --all-servers lists them\n", hidden)
	}
	// Oldest first; points with no readable copy (no time) last.
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Source == "") != (out[j].Source == "") {
			return out[j].Source == ""
		}
		return out[i].Time.Before(out[j].Time)
	})
	res := make([]pointInfo, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res, listErr
}

// onlySkipped reports whether err (from listing points) says only that
// some points were skipped: damaged ones, or ones the vault's listing
// lacked but that were read by name. Such a run is partial (exit 3);
// anything else, such as a point not in the vault at all, is an error.
func onlySkipped(err error) bool {
	switch e := err.(type) {
	case nil, *archive.DamagedPointsError:
		return true
	case *archive.ShortListingError:
		return len(e.Missing) == 0
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			if !onlySkipped(c) {
				return false
			}
		}
		return true
	}
	if u := errors.Unwrap(err); u != nil {
		return onlySkipped(u)
	}
	return false
}

// skippedError turns a listing error that only reports skipped points
// into a partialError (exit 3); other errors pass.
func skippedError(err error) error {
	if err != nil && onlySkipped(err) {
		return partialError{err.Error()}
	}
	return err
}

func runPoints(ctx context.Context, g *globalOptions, o pointsOptions) error {
	all, listErr := listAllPoints(ctx, g, o)
	if all == nil && listErr != nil && !onlySkipped(listErr) {
		return listErr
	}
	rows := []pointInfo{}
	for _, p := range all {
		// A damaged point's source is unknown: it is always shown.
		if o.source == "" || p.Source == o.source || p.Source == "" {
			rows = append(rows, p)
		}
	}
	switch {
	case g.json:
		if err := writeJSON(g.stdout, pointsJSON{Points: rows}); err != nil {
			return err
		}
	case g.quiet:
	case len(rows) == 0 && listErr == nil:
		fmt.Fprintln(g.stdout, "No recovery points.")
	case len(rows) == 0:
		// The error says what could not be listed.
	default:
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSOURCE\tTIME\tTIER\tSOURCE SIZE\tFILES")
		for _, p := range rows {
			if p.Source == "" {
				fmt.Fprintf(tw, "%s\t(damaged)\t-\t%s\t-\t-\n", shortHex(p.ID), p.Tier)
				continue
			}
			tier := p.Tier
			if p.VaultPacks > 0 && tier == "local" {
				tier = "local+vault"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", p.ID[:12], termSafe(p.Source), p.Time.Local().Format("2006-01-02 15:04:05"),
				tier, humanize.Bytes(p.Bytes), p.Files)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return skippedError(listErr)
}

// shortHex is the first 12 characters of s, or s when shorter.
func shortHex(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// resolvePoint finds the one point among ps whose ID starts with prefix,
// or for "latest" the newest point, for "latest:SOURCE" the newest of one
// data source.
func resolvePoint(ps []archive.PointHeader, prefix string) (archive.PointHeader, error) {
	prefix = strings.TrimSpace(prefix)
	if source, ok := latestSource(prefix); ok {
		return latestPoint(ps, source)
	}
	prefix = strings.ToLower(prefix)
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

// latestSource reports whether arg names the newest point ("latest", or
// "latest:SOURCE" for one data source) and of which source ("" for any).
func latestSource(arg string) (string, bool) {
	if arg == "latest" {
		return "", true
	}
	source, ok := strings.CutPrefix(arg, "latest:")
	return source, ok && source != ""
}

// latestPoint returns the newest point of source ("" for any) among ps;
// points of equal time are ordered by ID, as everywhere else.
func latestPoint(ps []archive.PointHeader, source string) (archive.PointHeader, error) {
	var best archive.PointHeader
	found := false
	for _, p := range ps {
		if source != "" && p.Source != source {
			continue
		}
		if !found || archive.PointBefore(best, p) {
			best, found = p, true
		}
	}
	if !found {
		if source != "" {
			return best, fmt.Errorf("%w of data source %q: see 'tapeless points'", errNoPoint, source)
		}
		return best, fmt.Errorf("%w: there are none yet", errNoPoint)
	}
	return best, nil
}

// shownKeys returns the key fingerprints whose points `points` shows: this
// server's by default, one server's with --server, all (nil) with
// --all-servers.
func shownKeys(regs []vault.Registration, self string, o pointsOptions) (map[string]bool, error) {
	switch {
	case o.allServers && o.server != "":
		return nil, usageError{errors.New("give --server NAME or --all-servers, not both")}
	case o.allServers:
		return nil, nil
	case o.server != "":
		keys := map[string]bool{}
		for _, r := range regs {
			if strings.EqualFold(r.Server, o.server) {
				keys[r.KeyFingerprint] = true
			}
		}
		if len(keys) == 0 {
			_, err := vault.ServerKey(regs, o.server)
			return nil, usageError{err}
		}
		return keys, nil
	case self == "":
		return nil, nil // not registered: a bare store, whatever it holds
	}
	return map[string]bool{self: true}, nil
}
