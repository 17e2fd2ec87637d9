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
	return &VaultReport{Vault: v.Name(), Check: check}, nil
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
