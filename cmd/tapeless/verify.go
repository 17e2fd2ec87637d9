package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/humanize"
)

func init() { addCommand(newVerifyCmd) }

type verifyOptions struct {
	vault          bool
	copy           string
	readData       bool
	subset         float64
	passphraseFile string
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:     "verify",
		Short:   "Check that the store's recovery points are complete and intact",
		GroupID: groupPoints,
		Long: `Verify checks the local store. Without options it checks, with no
passphrase, that every pack and index object each point needs exists with
the right size.

--read-data also reads the objects and checks every stored byte against the
SHA-256 its name carries (still no passphrase: the daemon scrubs this way).
With a passphrase (--passphrase-file or TAPELESS_PASSPHRASE_FILE) verify also
opens every point and reads its manifest as a restore would, resolving every
chunk it needs; with --read-data too, it decrypts every blob and re-checks
its chunk ID.
--subset PCT reads only a random PCT percent of the packs.

--vault checks the vault instead, each copy on its own (--copy primary,
secondary or both, the default), with the same levels: no passphrase
needed, --read-data re-hashes every stored byte, a passphrase also decrypts.
Problems name the copy and the points that need the object; 'tapeless
vault repair' mends them from the other copy. With --subset, successive
runs continue where the last stopped (the position is kept in the store's
folder, scrub-VAULT.json), so ten runs of --subset 10 read every pack.

Any damage fails with exit code 1 and names the object.`,
		Example: `  tapeless verify
  tapeless verify --read-data
  tapeless verify --read-data --subset 10
  tapeless verify --read-data --passphrase-file /root/tapeless-pass --json
  tapeless verify --vault --read-data --subset 10
  tapeless verify --vault --copy secondary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("subset") && !o.readData {
				return usageError{errors.New("--subset needs --read-data")}
			}
			if o.subset <= 0 || o.subset > 100 {
				return usageError{fmt.Errorf("--subset %v: want a percentage above 0 and at most 100", o.subset)}
			}
			if cmd.Flags().Changed("copy") && !o.vault {
				return usageError{errors.New("--copy needs --vault")}
			}
			if o.vault {
				return runVerifyVault(cmd.Context(), g, o)
			}
			return runVerify(cmd.Context(), g, o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.vault, "vault", false, "check the vault's copies instead of the store")
	f.StringVar(&o.copy, "copy", "both", "with --vault: primary, secondary or both")
	f.BoolVar(&o.readData, "read-data", false, "read every object and check its content")
	f.Float64Var(&o.subset, "subset", 100, "with --read-data, read only this percentage of the packs, chosen at random")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "also decrypt and check blobs, with the passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	return c
}

func runVerify(ctx context.Context, g *globalOptions, o verifyOptions) error {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return err
	}
	defer v.Close()
	// An offload's cleanup must not remove objects while they are checked:
	// a pack deleted mid-verify would read as lost.
	lock, err := lockStoreForRead(ctx, g, v.Dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	var keys *archive.Keys
	if o.passphraseFile != "" || os.Getenv("TAPELESS_PASSPHRASE_FILE") != "" {
		if keys, err = unlockStore(g, v.Envelope, o.passphraseFile); err != nil {
			return err
		}
	}
	rep, err := scheduler.VerifyStore(ctx, v, scheduler.VerifyRequest{
		Keys: keys, ReadData: o.readData, Subset: o.subset, Site: siteOf(g, cfg),
		Problem: func(p archive.VerifyProblem) {
			if !g.json {
				fmt.Fprintf(g.stderr, "problem: %v\n", p)
			}
		},
	})
	if err != nil {
		return err
	}
	stats, trees, problems := rep.Stats, rep.Trees, rep.Problems
	if g.json {
		out := struct {
			OK       bool                `json:"ok"`
			Stats    archive.VerifyStats `json:"stats"`
			Trees    *archive.TreeStats  `json:"trees,omitempty"`
			Problems []string            `json:"problems"`
		}{OK: len(problems) == 0, Stats: stats, Trees: trees, Problems: problems}
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
	} else if !g.quiet && len(problems) == 0 {
		what := "sizes checked"
		if o.readData {
			what = fmt.Sprintf("%d packs read (%s)", stats.PacksRead, humanize.Bytes(stats.BytesRead))
			if keys != nil {
				what += fmt.Sprintf(", %d blobs decrypted and re-hashed", stats.Blobs)
			}
		}
		if trees != nil {
			what += fmt.Sprintf("; %d manifests read, %d chunk references resolved", trees.Points, trees.Chunks)
		}
		fmt.Fprintf(g.stdout, "Store OK: %d points, %d packs, %d index objects; %s.\n", stats.Points, stats.Packs, stats.Indexes, what)
	}
	if len(problems) > 0 {
		return fmt.Errorf("verify found %d problems, first: %s", len(problems), problems[0])
	}
	return nil
}
