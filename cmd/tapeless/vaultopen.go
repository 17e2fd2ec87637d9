package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// openedVault is the configured vault ready for offload, prune and
// restore: throttled as configured, reads falling back to the secondary
// copy and saying so.
type openedVault struct {
	v      *storage.Vault
	target archive.VaultTarget
	// read is target's backend: for GRS the replicated backend (reads
	// fall back to the secondary when the primary fails or returns bytes
	// that do not match their name), for LRS the primary.
	read storage.Backend

	g         *globalOptions // where fallback notes go
	mu        sync.Mutex
	fallbacks int // reads served by (or tried on) the secondary copy
}

// Close closes the vault and, when more reads than the first fell back to
// the secondary copy, says how many.
func (o *openedVault) Close() error {
	o.mu.Lock()
	if n := o.fallbacks - 1; n > 0 && o.g != nil && !o.g.quiet {
		fmt.Fprintf(o.g.stderr, "note: %d more reads fell back to the secondary copy of vault %s\n", n, o.v.Name())
	}
	o.fallbacks = 0
	o.mu.Unlock()
	return o.v.Close()
}

// openVault opens the vault of cfg. Fallback reads are reported on
// g.stderr (unless --quiet).
func openVault(ctx context.Context, g *globalOptions, cfg *config) (*openedVault, error) {
	v, err := openConfiguredVault(ctx, cfg)
	if err != nil {
		return nil, err
	}
	o := &openedVault{v: v, g: g, read: v.Primary()}
	var opts []storage.ReplicatedOption
	if cfg.Throttle != "" {
		sched, err := storage.ParseThrottle(cfg.Throttle)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("throttle in %s: %w", g.configFile, err)
		}
		// One limit for all vault traffic, both GRS copies together.
		o.read = storage.Throttled(o.read, sched, nil)
		opts = append(opts, storage.WithThrottle(sched, nil))
	}
	if s := v.Secondary(); s != nil {
		o.read = storage.Replicated(v.Primary(), s, append(opts,
			storage.WithFallbackReport(func(f storage.Fallback) {
				// One note per run: a restore that falls back does so for
				// every object, and the first says why.
				o.mu.Lock()
				defer o.mu.Unlock()
				if o.fallbacks++; o.fallbacks == 1 && !g.quiet {
					fmt.Fprintf(g.stderr, "note: %s\n", f)
				}
			}),
			storage.WithContentHash(objectHashFromName))...)
	}
	o.target = archive.VaultTarget{Name: v.Name(), Backend: o.read}
	return o, nil
}

// openVaultForRead is openVault for commands that only read (restore,
// points): when the primary copy cannot even be opened (its config is
// read from there) and the vault has a secondary copy, it reads from the
// secondary copy alone and says so.
func openVaultForRead(ctx context.Context, g *globalOptions, cfg *config) (*openedVault, error) {
	o, err := openVault(ctx, g, cfg)
	if err == nil || cfg.Vault == nil || cfg.Vault.SecondaryURL == "" {
		return o, err
	}
	a, so := vaultAccounts(cfg)
	sa := storage.Account{URL: cfg.Vault.SecondaryURL, Options: a.Options}
	if so != nil {
		sa.Options = *so
	}
	v, serr := storage.OpenVault(ctx, sa, cfg.Vault.Name, so)
	if serr != nil {
		return nil, fmt.Errorf("%w; the secondary copy at %s failed too: %v", err, storage.Redact(cfg.Vault.SecondaryURL), serr)
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "note: the primary copy of vault %s failed (%v); reading from the secondary copy at %s\n",
			cfg.Vault.Name, err, storage.Redact(cfg.Vault.SecondaryURL))
	}
	b := v.Primary() // the secondary account's copy
	return &openedVault{v: v, target: archive.VaultTarget{Name: v.Name(), Backend: b}, read: b}, nil
}

// objectHashFromName returns the SHA-256 an archive object's name says its
// bytes have (packs/, index/ and points/ objects are named by it).
func objectHashFromName(name string) ([32]byte, bool) {
	if !strings.HasPrefix(name, archive.PacksPrefix) && !strings.HasPrefix(name, archive.IndexPrefix) &&
		!strings.HasPrefix(name, archive.PointsPrefix) {
		return [32]byte{}, false
	}
	id, err := archive.ParseID(path.Base(name))
	if err != nil {
		return [32]byte{}, false
	}
	return id, true
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
	return archive.ListPointsKnown(ctx, o.read, known)
}

// listVaultPointsAndServers is listVaultPoints with the vault's
// registrations, read through one opening of the vault.
func listVaultPointsAndServers(ctx context.Context, c *config, known []archive.ID) ([]archive.PointHeader, []storage.Registration, error) {
	g := &globalOptions{quiet: true}
	o, err := openVaultForRead(ctx, g, c)
	if err != nil {
		return nil, nil, err
	}
	defer o.Close()
	regs, err := o.v.Registrations(ctx)
	if err != nil {
		return nil, nil, err
	}
	pts, err := archive.ListPointsKnown(ctx, o.read, known)
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
	ov     *openedVault
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
	all, listErr := archive.ListPointsKnown(ctx, ov.read, catalogArchived(ctx, cfg.Store, cfg.Vault.Name))
	pts := pointsOfKey(all, key)
	p, err := resolvePoint(pts, prefix)
	if errors.Is(err, errNoPoint) && key != "" {
		// Another server's point: say whose, and how to restore it.
		if other, oerr := resolvePoint(all, prefix); oerr == nil && other.KeyFingerprint != key {
			ov.Close()
			return nil, fmt.Errorf("point %s belongs to server %s (key %s), not to this server: restore it with --server %s and that server's passphrase",
				shortID(other.ID), serverOfKey(ctx, ov.v, other.KeyFingerprint), other.KeyFingerprint, serverOfKey(ctx, ov.v, other.KeyFingerprint))
		}
	}
	if id, perr := archive.ParseID(strings.ToLower(strings.TrimSpace(prefix))); errors.Is(err, errNoPoint) && perr == nil {
		if h, lerr := archive.LoadPointHeader(ctx, ov.read, id); lerr == nil {
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
		return nil, fmt.Errorf("%w (looked in the store and in vault %s)", err, ov.v.Name())
	}
	staging := cfg.Staging
	if staging == "" {
		staging = filepath.Join(filepath.Dir(cfg.Store), "staging")
	}
	if err := storage.CheckScratch(staging, p.Bytes); err != nil {
		ov.Close()
		return nil, err
	}
	sv, err := archive.NewStagedVault(ctx, ov.read, staging)
	if err != nil {
		ov.Close()
		return nil, err
	}
	if !g.quiet && !g.json {
		fmt.Fprintf(g.stderr, "Point %s is not in the local store: restoring it from vault %s (downloads staged in %s).\n",
			shortID(p.ID), ov.v.Name(), sv.Dir())
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
func serverOfKey(ctx context.Context, v *storage.Vault, key string) string {
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
