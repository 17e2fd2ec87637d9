package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// openVaultForRead opens the vault of cfg for commands that only read
// (restore, points), noting fallback reads on g.stderr unless --quiet: it
// reads from the secondary copy alone when the primary cannot
// be opened (scheduler.Site.OpenVaultForRead).
func openVaultForRead(ctx context.Context, g *globalOptions, cfg *config) (*scheduler.Vault, error) {
	return siteOf(g, cfg).OpenVaultForRead(ctx)
}

// listVaultPoints lists the points archived in the configured vault; a
// point of known the listing lacks is read by name (see
// archive.ListPointsKnown).
func listVaultPoints(ctx context.Context, c *config, known []archive.ID) ([]archive.PointHeader, error) {
	g := &globalOptions{quiet: true}
	o, err := openVaultForRead(ctx, g, c)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return archive.ListPointsKnown(ctx, o.Read, known)
}

// listVaultPointsAndServers is listVaultPoints with the vault's
// registrations, read through one opening of the vault.
func listVaultPointsAndServers(ctx context.Context, c *config, known []archive.ID) ([]archive.PointHeader, []vault.Registration, error) {
	g := &globalOptions{quiet: true}
	o, err := openVaultForRead(ctx, g, c)
	if err != nil {
		return nil, nil, err
	}
	defer o.Close()
	regs, err := o.Vault.Registrations(ctx)
	if err != nil {
		return nil, nil, err
	}
	pts, err := archive.ListPointsKnown(ctx, o.Read, known)
	return pts, regs, err
}

// catalogArchived returns the points the offload catalogue of the store in
// dir records as archived in vault (the points its listing must show). It
// is best effort: while a backup or offload holds the catalogue, nil.
func catalogArchived(ctx context.Context, dir, vault string) []archive.ID {
	if dir == "" {
		return nil
	}
	cat, err := archive.CatalogAt(ctx, dir)
	if err != nil {
		return nil
	}
	var out []archive.ID
	for _, e := range cat {
		if e.Archived() && (e.Vault == "" || strings.EqualFold(e.Vault, vault)) {
			out = append(out, e.Point)
		}
	}
	return out
}

// vaultSource is a point found in the vault for restore, read through the
// staging folder.
type vaultSource struct {
	point  archive.PointHeader
	staged *archive.StagedVault
	ov     *scheduler.Vault
}

func (v *vaultSource) Close() error {
	err := v.staged.Close()
	if cerr := v.ov.Close(); err == nil {
		err = cerr
	}
	return err
}

// restoreFromVault finds the point named by prefix in the configured vault
// (for a point that is no longer in the local store) and prepares to read
// it through the staging folder, after the scratch-space check. A read the
// primary copy cannot serve falls back to the secondary and says so.
func restoreFromVault(ctx context.Context, g *globalOptions, cfg *config, prefix, key string) (*vaultSource, error) {
	ov, err := openVaultForRead(ctx, g, cfg)
	if err != nil {
		return nil, err
	}
	// Points the catalogue knows are found even when the vault's listing
	// lacks them, and a full ID is looked up by name in any case: restore
	// never depends on a listing that may come back short.
	all, listErr := archive.ListPointsKnown(ctx, ov.Read, catalogArchived(ctx, cfg.Store, cfg.Vault.Name))
	pts := pointsOfKey(all, key)
	p, err := resolvePoint(pts, prefix)
	if errors.Is(err, errNoPoint) && key != "" {
		// Another server's point: say whose, and how to restore it.
		if other, oerr := resolvePoint(all, prefix); oerr == nil && other.KeyFingerprint != key {
			owner := serverOfKey(ctx, ov.Vault, other.KeyFingerprint)
			ov.Close()
			return nil, fmt.Errorf("point %s belongs to server %s (key %s), not to this server: restore it with --server %s and that server's passphrase",
				shortID(other.ID), owner, other.KeyFingerprint, owner)
		}
	}
	if id, perr := archive.ParseID(strings.ToLower(strings.TrimSpace(prefix))); errors.Is(err, errNoPoint) && perr == nil {
		if h, lerr := archive.LoadPointHeader(ctx, ov.Read, id); lerr == nil {
			p, err = h, nil
		} else if !errors.Is(lerr, storage.ErrNotFound) {
			listErr = errors.Join(listErr, lerr)
		}
	}
	if err == nil && listErr != nil && !g.quiet {
		fmt.Fprintf(g.stderr, "note: %v\n", listErr)
	}
	if err != nil {
		ov.Close()
		if listErr != nil {
			return nil, fmt.Errorf("%w (and some vault points could not be read: %v)", err, listErr)
		}
		return nil, fmt.Errorf("%w (looked in the store and in vault %s)", err, ov.Vault.Name())
	}
	sv, err := scheduler.StageVault(ctx, siteOf(g, cfg), ov, p.Bytes)
	if err != nil {
		ov.Close()
		return nil, err
	}
	if !g.quiet && !g.json {
		fmt.Fprintf(g.stderr, "Point %s is not in the local store: restoring it from vault %s (downloads staged in %s).\n",
			shortID(p.ID), ov.Vault.Name(), sv.Dir())
	}
	return &vaultSource{point: p, staged: sv, ov: ov}, nil
}

// pointsOfKey keeps the points sealed to key ("" keeps all).
func pointsOfKey(ps []archive.PointHeader, key string) []archive.PointHeader {
	if key == "" {
		return ps
	}
	var out []archive.PointHeader
	for _, p := range ps {
		if p.KeyFingerprint == key {
			out = append(out, p)
		}
	}
	return out
}

// serverOfKey names the server registered with key, for messages.
func serverOfKey(ctx context.Context, v *vault.Vault, key string) string {
	regs, err := v.Registrations(ctx)
	if err != nil {
		return "NAME"
	}
	name := ""
	for _, r := range regs {
		if r.KeyFingerprint == key {
			name = r.Server // the newest record of the key wins
		}
	}
	if name == "" {
		return "NAME"
	}
	return name
}
