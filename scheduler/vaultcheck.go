package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/tapeless/tapeless/archive"
)

// ErrNoSecondary means a check asked for the secondary copy of an LRS
// vault.
var ErrNoSecondary = errors.New("it has no secondary copy")

// Copies returns the vault's copies that which selects ("primary",
// "secondary" or "both"), each read on its own (no fallback between
// them), throttled as configured. "both" of an LRS vault is its primary.
func (o *Vault) Copies(which string) ([]archive.VaultCopy, error) {
	var out []archive.VaultCopy
	if which == "primary" || which == "both" {
		out = append(out, archive.VaultCopy{Name: "primary", B: o.paced(o.Primary())})
	}
	if which == "secondary" || which == "both" {
		if o.Secondary() != nil {
			out = append(out, archive.VaultCopy{Name: "secondary", B: o.paced(o.Secondary())})
		} else if which == "secondary" {
			return nil, fmt.Errorf("vault %s is LRS: %w", o.Name(), ErrNoSecondary)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("copy %q: want primary, secondary or both", which)
	}
	return out, nil
}

// VaultVerifyRequest is one run of the vault verify job.
type VaultVerifyRequest struct {
	Copy     string        // "primary", "secondary" or "both"
	Keys     *archive.Keys // nil: without the passphrase
	ReadData bool
	// Subset is the percent of packs a sampled scrub reads (with
	// ReadData; 0 or 100: all). Successive sampled scrubs continue where
	// the last stopped (a cursor per copy kept in the store), so ten runs
	// of 10 cover the whole vault.
	Subset float64
}

// VaultReport is what a vault verify or repair found and did.
type VaultReport struct {
	Vault  string // the vault's name as the vault spells it
	Check  *archive.VaultCheck
	Repair *archive.RepairResult // repair only
	// Forgotten are the vault-held packs this server's store stopped
	// deduplicating against because the check found them lost on every
	// copy (verify only): the next backup stores their data again.
	Forgotten []archive.ID
	// ForgetErr says why lost packs could not be forgotten this time (the
	// store busy with another job, for one); the next verify tries again.
	ForgetErr error
}

// VerifyVault is the vault verify job: each selected copy checked on its
// own, with the points each problem hurts.
func VerifyVault(ctx context.Context, site *Site, req VaultVerifyRequest) (*VaultReport, error) {
	v, err := site.OpenVault(ctx)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	copies, err := v.Copies(req.Copy)
	if err != nil {
		return nil, err
	}
	co := archive.CheckOptions{ReadData: req.ReadData}
	var cursors map[string]*archive.ScrubCursor
	if req.ReadData && req.Subset > 0 && req.Subset < 100 {
		co.SubsetPct = req.Subset
		if cursors, err = archive.LoadScrubCursors(site.Store, v.Name()); err != nil {
			return nil, err
		}
		for _, c := range copies {
			if cursors[c.Name] == nil {
				cursors[c.Name] = &archive.ScrubCursor{}
			}
		}
		co.Cursors = cursors
	}
	check, err := archive.CheckVault(ctx, copies, req.Keys, co)
	if err != nil {
		return nil, err
	}
	if cursors != nil {
		if err := archive.SaveScrubCursors(site.Store, v.Name(), cursors); err != nil {
			return nil, err
		}
	}
	rep := &VaultReport{Vault: v.Name(), Check: check}
	// Only a check of every copy can tell a pack is lost: one copy's loss
	// is mended by repair from the other.
	if req.Copy == "both" || v.Secondary() == nil {
		if lost := check.LostPacks(len(copies)); len(lost) > 0 {
			rep.Forgotten, rep.ForgetErr = forgetLostPacks(ctx, site.Store, lost)
		}
	}
	return rep, nil
}

// forgetLostPacks makes the store stop deduplicating against vault-held
// packs the vault no longer has, so the next backup stores their data
// again and the new point is complete (a backup trusts a vault-held pack
// without reading it). Packs the store holds locally, or knows nothing
// of (another server's), are left alone. It returns the packs forgotten.
func forgetLostPacks(ctx context.Context, storeDir string, lost []archive.ID) ([]archive.ID, error) {
	if storeDir == "" {
		return nil, nil
	}
	s, err := archive.OpenStore(ctx, storeDir)
	if err != nil {
		return nil, fmt.Errorf("%d packs lost on every vault copy are still trusted by the store's dedup index: %w", len(lost), err)
	}
	defer s.Close()
	var out []archive.ID
	for _, id := range lost {
		only, err := s.VaultOnly(id)
		if err != nil {
			return out, err
		}
		if !only {
			continue
		}
		if err := s.ForgetVaultPack(ctx, id); err != nil {
			return out, err
		}
		out = append(out, id)
	}
	return out, nil
}

// ErrNothingToRepairFrom means a repair of an LRS vault: one copy has no
// other to mend it from.
var ErrNothingToRepairFrom = errors.New("with one copy there is nothing to repair from (verify it with 'tapeless verify --vault --read-data')")

// RepairVault is the vault repair job: read both copies in full and copy
// intact objects over missing or damaged ones, without the passphrase.
func RepairVault(ctx context.Context, site *Site) (*VaultReport, error) {
	v, err := site.OpenVault(ctx)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	copies, err := v.Copies("both")
	if err != nil {
		return nil, err
	}
	if len(copies) < 2 {
		return nil, fmt.Errorf("vault %s is LRS: %w", v.Name(), ErrNothingToRepairFrom)
	}
	check, err := archive.CheckVault(ctx, copies, nil, archive.CheckOptions{ReadData: true})
	if err != nil {
		return nil, err
	}
	res, err := archive.RepairVault(ctx, copies, check)
	if err != nil {
		return nil, err
	}
	return &VaultReport{Vault: v.Name(), Check: check, Repair: res}, nil
}
