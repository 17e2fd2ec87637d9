package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
)

func init() { addCommand(newFindCmd) }

// foundEntry is one match of find, also its JSON shape.
// findJSON is the JSON of `find`.
type findJSON struct {
	Pattern  string       `json:"pattern"`
	Searched int          `json:"points_searched"`
	Matches  []foundEntry `json:"matches"`
}

// foundEntry is one match: the point that holds it, then the entry.
type foundEntry struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Tier   string    `json:"tier"`
	entryJSON
}

func newFindCmd(g *globalOptions) *cobra.Command {
	var o browseOptions
	c := &cobra.Command{
		Use:     "find PATTERN",
		Short:   "Find which recovery points hold a path",
		GroupID: groupPoints,
		Long: `Find searches every recovery point, in both tiers, oldest first, for
entries matching PATTERN, and prints each match with its point, size and
modification time — to see which point still holds a file, or when it
changed.

PATTERN is gitignore style: without a '/', it matches an entry's name at any
depth ('*.conf', 'id_rsa'); with a '/', the whole path inside the point
('etc/ssh/*', 'home/*/.bashrc'), where '**' spans directories
('**/invoice-2024-*.pdf'). Quote it so the shell leaves it alone.

Vault points are read in place (tree data only); the amount fetched is
reported. Reading trees needs the passphrase.`,
		Example: `  tapeless find 'report-*.xlsx' --passphrase-file /root/tapeless.pass
  tapeless find 'etc/nginx/**' --source web --passphrase-file /root/tapeless.pass
  tapeless find id_rsa --json --passphrase-file /root/tapeless.pass`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFind(cmd.Context(), g, o, args[0])
		},
	}
	c.Flags().StringVar(&o.source, "source", "", "search only points of this data source")
	c.Flags().StringVar(&o.passphraseFile, "passphrase-file", "", "read the encryption passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	return c
}

func runFind(ctx context.Context, g *globalOptions, o browseOptions, pattern string) error {
	m, err := archive.NewPathPattern(pattern)
	if err != nil {
		return usageError{err}
	}
	t, err := openPointTree(ctx, g, o.passphraseFile)
	if err != nil {
		return err
	}
	defer t.Close()
	pts, tier, err := t.all(ctx)
	if err != nil {
		return err
	}
	found := []foundEntry{}
	var skipped []error
	searched := 0
	for _, p := range pts {
		if o.source != "" && p.Source != o.source {
			continue
		}
		searched++
		mr, err := t.manifest(ctx, p)
		if err == nil {
			err = mr.Each(ctx, func(n *archive.Node) error {
				if m.Match(n.Path) {
					found = append(found, foundEntry{ID: p.ID.String(), Source: p.Source, Time: p.Time, Tier: tier[p.ID], entryJSON: nodeEntry(n)})
				}
				return nil
			})
		}
		if err != nil {
			// One unreadable point does not hide the matches of the rest.
			skipped = append(skipped, fmt.Errorf("point %s: %w", shortID(p.ID), err))
		}
	}
	switch {
	case g.json:
		if err := writeJSON(g.stdout, findJSON{Pattern: pattern, Searched: searched, Matches: found}); err != nil {
			return err
		}
	case g.quiet:
	default:
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POINT\tSOURCE\tTIME\tTIER\tSIZE\tMTIME\tPATH")
		for _, f := range found {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.ID[:12], termSafe(f.Source), f.Time.Local().Format("2006-01-02 15:04:05"),
				f.Tier, f.Size, f.Mtime.Local().Format("2006-01-02 15:04:05"), termSafe(f.Path))
		}
		tw.Flush()
		fmt.Fprintf(g.stdout, "%d matches in %d points.\n", len(found), searched)
		t.noteFetched()
	}
	if len(skipped) > 0 {
		return partialError{fmt.Sprintf("%d of %d points could not be searched: %v", len(skipped), searched, errors.Join(skipped...))}
	}
	return nil
}
