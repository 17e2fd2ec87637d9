package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage/humanize"
)

func newVaultRepackEstimateCmd(g *globalOptions) *cobra.Command {
	var passphraseFile string
	c := &cobra.Command{
		Use:   "repack-estimate [--passphrase-file F]",
		Short: "Report what repacking mostly-empty vault packs would free; changes nothing",
		Long: `Repack-estimate reads this server's points in the configured vault (their
manifests and index objects: it needs the passphrase) and reports how much
the packs that are less than half live would free if they were repacked,
and whether that is real space (at least 4 MiB and a tenth of this
server's packs). It only reads: nothing is removed, rewritten or pruned.

Prune leaves a pack whole while any kept point needs part of it, so packs
that expired points shared with kept ones stay. tapeless does not repack:
a point object names its packs and its ID is the hash of that object, so
repacking would change the IDs of unchanged points.`,
		Example: `  tapeless vault repack-estimate --passphrase-file /root/tapeless.pass
  tapeless vault repack-estimate --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRepackEstimate(cmd.Context(), g, passphraseFile)
		},
	}
	c.Flags().StringVar(&passphraseFile, "passphrase-file", "", "read the encryption passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	return c
}

// repackJSON is the JSON of `vault repack-estimate`.
type repackJSON struct {
	Vault string `json:"vault"`
	archive.RepackEstimate
}

func runRepackEstimate(ctx context.Context, g *globalOptions, passphraseFile string) error {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return err
	}
	defer v.Close()
	// The passphrase first: it fails without touching the network.
	keys, err := unlockStore(g, v.Envelope, passphraseFile)
	if err != nil {
		return err
	}
	ov, err := openVaultForRead(ctx, g, cfg)
	if err != nil {
		return err
	}
	defer ov.Close()
	est, err := archive.EstimateRepack(ctx, ov.Read, keys)
	if err != nil {
		return err
	}
	if g.json {
		return writeJSON(g.stdout, repackJSON{Vault: ov.Vault.Name(), RepackEstimate: est})
	}
	if !g.quiet {
		printRepackEstimate(g.stdout, est)
	}
	return nil
}

func printRepackEstimate(w io.Writer, e archive.RepackEstimate) {
	verdict := "not worth it"
	if e.Worth {
		verdict = "worth it"
	}
	fmt.Fprintf(w, "Repack estimate: %d of the %d packs this server's %d points need (%s of %s stored) are less than half live; repacking them would free %s (%s).\n",
		e.Sparse, e.Packs, e.Points, humanize.Bytes(e.SparseSize), humanize.Bytes(e.PackBytes), humanize.Bytes(e.Saving), verdict)
	fmt.Fprintln(w, "Nothing was changed. tapeless does not repack: it would change the IDs of unchanged points (see 'tapeless vault repack-estimate --help').")
}
