package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/humanize"
)

// vaultVerifyJSON is verify --vault's --json output.
type vaultVerifyJSON struct {
	OK    bool   `json:"ok"`
	Vault string `json:"vault"`
	*archive.VaultCheck
	// Forgotten: vault-held packs lost on every copy that the store no
	// longer deduplicates against (the next backup stores their data).
	Forgotten []archive.ID `json:"forgotten_packs,omitempty"`
	// ForgetError: why lost packs are still trusted this time.
	ForgetError string `json:"forget_error,omitempty"`
}

func runVerifyVault(ctx context.Context, g *globalOptions, o verifyOptions) error {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return err
	}
	defer v.Close()
	if cfg.Vault == nil || cfg.Vault.Name == "" {
		return errors.New("no vault is configured: register first, or verify the store without --vault")
	}
	var keys *archive.Keys
	if o.passphraseFile != "" || os.Getenv(envPassphraseFile) != "" {
		if keys, err = unlockStore(g, v.Envelope, o.passphraseFile); err != nil {
			return err
		}
	}
	if o.copy != "primary" && o.copy != "secondary" && o.copy != "both" {
		return usageError{fmt.Errorf("--copy %q: want primary, secondary or both", o.copy)}
	}
	rep, err := scheduler.VerifyVault(ctx, siteOf(g, cfg), scheduler.VaultVerifyRequest{
		Copy: o.copy, Keys: keys, ReadData: o.readData, Subset: o.subset,
	})
	if errors.Is(err, scheduler.ErrNoSecondary) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	name, check := rep.Vault, rep.Check
	if g.json {
		out := vaultVerifyJSON{OK: len(check.Problems) == 0, Vault: name, VaultCheck: check, Forgotten: rep.Forgotten}
		if rep.ForgetErr != nil {
			out.ForgetError = rep.ForgetErr.Error()
		}
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
	} else if !g.quiet {
		for _, p := range check.Problems {
			fmt.Fprintf(g.stderr, "problem: %s copy: %s: %s%s\n", p.Copy, p.Object, termSafeText(p.Error), hurts(p.Points))
		}
		for _, c := range check.Copies {
			what := "sizes checked"
			if o.readData {
				what = fmt.Sprintf("%d packs read (%s)", c.Stats.PacksRead, humanize.Bytes(c.Stats.BytesRead))
				if keys != nil {
					what += fmt.Sprintf(", %d blobs decrypted and re-hashed", c.Stats.Blobs)
				}
			}
			n := 0
			for _, p := range check.Problems {
				if p.Copy == c.Copy {
					n++
				}
			}
			state := "OK"
			if n > 0 {
				state = fmt.Sprintf("%d PROBLEMS", n)
			}
			fmt.Fprintf(g.stdout, "Vault %s, %s copy (%s): %s: %d points, %d packs, %d index objects; %s.\n",
				name, c.Copy, c.Location, state, c.Stats.Points, c.Stats.Packs, c.Stats.Indexes, what)
		}
	}
	if !g.json {
		for _, id := range rep.Forgotten {
			fmt.Fprintf(g.stderr, "lost: pack %s is gone from every copy of the vault; the store no longer deduplicates against it, so the next backup stores its data again\n", archive.PackName(id))
		}
		if rep.ForgetErr != nil {
			fmt.Fprintf(g.stderr, "warning: %v; run 'tapeless verify --vault' again when no other job runs\n", rep.ForgetErr)
		}
	}
	if n := len(check.Problems); n > 0 {
		return fmt.Errorf("verify --vault found %d problems, first: %s copy: %s: %s; 'tapeless vault repair' copies intact objects over them from the other copy",
			n, check.Problems[0].Copy, check.Problems[0].Object, check.Problems[0].Error)
	}
	return nil
}

func hurts(ids []archive.ID) string {
	if len(ids) == 0 {
		return ""
	}
	var s []string
	for i, id := range ids {
		if i == 5 {
			s = append(s, fmt.Sprintf("and %d more", len(ids)-5))
			break
		}
		s = append(s, shortID(id))
	}
	return " (points needing it: " + strings.Join(s, ", ") + ")"
}

func newVaultRepairCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Copy intact objects over missing or damaged ones between the vault's copies",
		Long: `Repair checks both copies of a GRS vault (reading every pack, as
'verify --vault --read-data' does) and, for every object that is missing or
damaged on one copy, copies it from the other copy where its bytes still
hash to its name. It needs no passphrase, never replaces an object whose
bytes are intact, and writes packs and index objects before the point
objects that need them.

An object damaged or missing on both copies cannot be repaired: repair
names it and the points that need it, and exits 1. A damaged object under
object lock cannot be replaced until its lock ends; it is reported too.`,
		Example: `  tapeless vault repair
  tapeless vault repair --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVaultRepair(cmd.Context(), g)
		},
	}
}

// vaultRepairJSON is vault repair's --json output.
type vaultRepairJSON struct {
	Vault string              `json:"vault"`
	Check *archive.VaultCheck `json:"check"`
	*archive.RepairResult
}

func runVaultRepair(ctx context.Context, g *globalOptions) error {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	if cfg.Vault == nil || cfg.Vault.Name == "" {
		return errors.New("no vault is configured: register first")
	}
	rep, err := scheduler.RepairVault(ctx, siteOf(g, cfg))
	if err != nil {
		return err
	}
	name, check, res := rep.Vault, rep.Check, rep.Repair
	if g.json {
		if err := writeJSON(g.stdout, vaultRepairJSON{Vault: name, Check: check, RepairResult: res}); err != nil {
			return err
		}
	} else if !g.quiet {
		for _, r := range res.Repaired {
			verb := "copied"
			if r.Replaced {
				verb = "replaced (damaged)"
			}
			fmt.Fprintf(g.stdout, "  %s on the %s copy from the %s copy: %s (%s)\n", verb, r.To, r.From, r.Object, humanize.Bytes(r.Bytes))
		}
		fmt.Fprintf(g.stdout, "Vault %s: %d problems found, %d objects repaired, %d lost on both copies, %d could not be written.\n",
			name, len(check.Problems), len(res.Repaired), len(res.Lost), len(res.Failed))
	}
	var bad []string
	for _, p := range res.Lost {
		bad = append(bad, fmt.Sprintf("%s is damaged or missing on every copy%s", p.Object, hurts(p.Points)))
	}
	for _, p := range res.Failed {
		bad = append(bad, fmt.Sprintf("%s on the %s copy: %s", p.Object, p.Copy, p.Error))
	}
	if len(bad) > 0 {
		return fmt.Errorf("vault repair could not mend %d objects: %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}
