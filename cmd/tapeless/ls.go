package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
)

func init() { addCommand(newLsCmd) }

type browseOptions struct {
	passphraseFile string
	source         string
}

func newLsCmd(g *globalOptions) *cobra.Command {
	var o browseOptions
	c := &cobra.Command{
		Use:     "ls POINT [PATH]",
		Short:   "List the entries of a recovery point, or of one path in it",
		GroupID: groupPoints,
		Long: `Ls lists a recovery point's entries like 'ls -l', recursively: mode, owner,
group, size, modification time and path (symlinks with their target). With
PATH, only PATH and what is below it.

POINT is an ID prefix (see 'tapeless points'), 'latest', or
'latest:SOURCE'. A point archived only in the vault is read in place: only
its tree data is fetched, never its packs, and the amount is reported.
Reading the tree needs the passphrase.`,
		Example: `  tapeless ls latest --passphrase-file /root/tapeless.pass
  tapeless ls 3f2a9c etc/ssh --passphrase-file /root/tapeless.pass
  tapeless ls latest:home --json --passphrase-file /root/tapeless.pass | jq -r '.entries[].path'`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sub := ""
			if len(args) == 2 {
				sub = args[1]
			}
			return runLs(cmd.Context(), g, o, args[0], sub)
		},
	}
	c.Flags().StringVar(&o.passphraseFile, "passphrase-file", "", "read the encryption passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	return c
}

// lsJSON is the JSON of `ls`.
type lsJSON struct {
	ID      string      `json:"id"` // the point listed
	Source  string      `json:"source"`
	Time    time.Time   `json:"time"`
	Path    string      `json:"path,omitempty"` // PATH, when given
	Entries []entryJSON `json:"entries"`
}

func runLs(ctx context.Context, g *globalOptions, o browseOptions, pointArg, sub string) error {
	sub, err := cleanPointPath(sub)
	if err != nil {
		return err
	}
	t, err := openPointTree(ctx, g, o.passphraseFile)
	if err != nil {
		return err
	}
	defer t.Close()
	p, err := t.resolve(ctx, pointArg)
	if err != nil {
		return err
	}
	mr, err := t.manifest(ctx, p)
	if err != nil {
		return err
	}
	entries := []entryJSON{}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 1, ' ', tabwriter.AlignRight)
	found := false
	err = mr.Each(ctx, func(n *archive.Node) error {
		if !under(n.Path, sub) {
			return nil
		}
		found = true
		switch {
		case g.json:
			entries = append(entries, nodeEntry(n))
		case !g.quiet:
			name := termSafe(n.Path)
			if n.Type == archive.TypeSymlink {
				name += " -> " + termSafe(n.Target)
			} else if n.LinkTo != "" {
				name += " => " + termSafe(n.LinkTo)
			}
			fmt.Fprintf(tw, "%s\t %s\t %s\t %d\t %s\t %s\n", modeString(n), termSafe(ownerName(n.User, n.UID)),
				termSafe(ownerName(n.Group, n.GID)), n.Size, time.Unix(0, n.Mtime).Local().Format("2006-01-02 15:04:05"), name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("point %s: %w", shortID(p.ID), err)
	}
	if sub != "" && !found {
		return usageError{fmt.Errorf("%w: %q (see 'tapeless ls %s')", archive.ErrPathNotInPoint, sub, shortID(p.ID))}
	}
	if g.json {
		return writeJSON(g.stdout, lsJSON{ID: p.ID.String(), Source: p.Source, Time: p.Time, Path: sub, Entries: entries})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t.noteFetched()
	return nil
}
