package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
)

func init() { addCommand(newDiffCmd) }

// diffEntry is one line of diff, also its JSON shape.
type diffEntry struct {
	Kind string `json:"kind"` // added, removed, changed, metadata
	Path string `json:"path"`
	Type string `json:"type"`
	// Sizes before and after (source bytes); absent for the side that has
	// no entry.
	OldSize *int64 `json:"old_size_bytes,omitempty"`
	NewSize *int64 `json:"new_size_bytes,omitempty"`
}

// diffJSON is the whole --json output of diff.
type diffJSON struct {
	From    string         `json:"from_id"`
	To      string         `json:"to_id"`
	Changes []diffEntry    `json:"changes"`
	Counts  map[string]int `json:"counts"`
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	var o browseOptions
	c := &cobra.Command{
		Use:     "diff POINT1 POINT2",
		Short:   "Show what changed between two recovery points",
		GroupID: groupPoints,
		Long: `Diff compares two recovery points entry by entry and prints each path
that differs, marked:

  +  added (only in POINT2)
  -  removed (only in POINT1)
  M  changed: content, size, type, symlink or hard-link target
  U  metadata only: mode, owner, modification time or extended attributes

Points are ID prefixes, 'latest' or 'latest:SOURCE', in either tier; vault
points are read in place (tree data only). Reading trees needs the
passphrase.`,
		Example: `  tapeless diff 3f2a9c latest --passphrase-file /root/tapeless.pass
  tapeless diff 3f2a9c 8b01de --json --passphrase-file /root/tapeless.pass | jq '.counts'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), g, o, args[0], args[1])
		},
	}
	c.Flags().StringVar(&o.passphraseFile, "passphrase-file", "", "read the encryption passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	return c
}

var diffMarks = map[archive.ChangeKind]string{archive.Added: "+", archive.Removed: "-", archive.Changed: "M", archive.Metadata: "U"}

func runDiff(ctx context.Context, g *globalOptions, o browseOptions, a, b string) error {
	t, err := openPointTree(ctx, g, o.passphraseFile)
	if err != nil {
		return err
	}
	defer t.Close()
	pa, err := t.resolve(ctx, a)
	if err != nil {
		return err
	}
	pb, err := t.resolve(ctx, b)
	if err != nil {
		return err
	}
	ma, err := t.manifest(ctx, pa)
	if err != nil {
		return err
	}
	mb, err := t.manifest(ctx, pb)
	if err != nil {
		return err
	}
	out := diffJSON{From: pa.ID.String(), To: pb.ID.String(), Changes: []diffEntry{},
		Counts: map[string]int{"added": 0, "removed": 0, "changed": 0, "metadata": 0}}
	err = archive.DiffManifests(ma, mb, func(c archive.Change) error {
		e := diffEntry{Kind: string(c.Kind), Path: c.Path}
		if c.Old != nil {
			e.Type, e.OldSize = c.Old.Type.String(), &c.Old.Size
		}
		if c.New != nil {
			e.Type, e.NewSize = c.New.Type.String(), &c.New.Size
		}
		out.Counts[e.Kind]++
		if g.json {
			out.Changes = append(out.Changes, e)
		} else if !g.quiet {
			fmt.Fprintf(g.stdout, "%s  %s\n", diffMarks[c.Kind], termSafe(c.Path))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("diff %s %s: %w", shortID(pa.ID), shortID(pb.ID), err)
	}
	if g.json {
		return writeJSON(g.stdout, out)
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "%s → %s: %d added, %d removed, %d changed, %d metadata only.\n", shortID(pa.ID), shortID(pb.ID),
			out.Counts["added"], out.Counts["removed"], out.Counts["changed"], out.Counts["metadata"])
	}
	t.noteFetched()
	return nil
}
