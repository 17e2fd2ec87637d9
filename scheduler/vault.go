package scheduler

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// Vault is the site's vault opened for the jobs: throttled as configured,
// reads falling back to the secondary copy and saying so.
type Vault struct {
	*vault.Vault
	// Target is the vault as offload and prune write to it: its Backend
	// is Read.
	Target archive.VaultTarget
	// Read is the vault's backend: for GRS the replicated backend (the
	// one GRS path; reads fall back to the secondary when the primary
	// fails or returns bytes that do not match their name), for LRS the
	// primary. One throttle paces it, both copies together.
	Read storage.Backend
	// paced wraps one copy's backend in the configured throttle, for
	// checks that read each copy on its own.
	paced func(storage.Backend) storage.Backend

	note      func(string)
	mu        sync.Mutex
	fallbacks int // reads served by (or tried on) the secondary copy
}

// Close closes the vault and, when more reads than the first fell back to
// the secondary copy, says how many.
func (o *Vault) Close() error {
	o.mu.Lock()
	if n := o.fallbacks - 1; n > 0 && o.note != nil {
		o.note(fmt.Sprintf("%d more reads fell back to the secondary copy of vault %s", n, o.Name()))
	}
	o.fallbacks = 0
	o.mu.Unlock()
	return o.Vault.Close()
}

// openStorageVault opens the site's vault and reports its settings to
// VaultOpened.
func (s *Site) openStorageVault(ctx context.Context) (*vault.Vault, error) {
	if !s.registered() {
		return nil, ErrNotRegistered
	}
	v, err := vault.OpenVault(ctx, s.Vault.Primary, s.Vault.Name, s.Vault.Secondary)
	if err != nil {
		return nil, err
	}
	if s.VaultOpened != nil {
		s.VaultOpened(v.Config)
	}
	return v, nil
}

// OpenVaultAdmin opens the site's vault for its own records (key
// envelopes, registrations), without the read and write paths.
func (s *Site) OpenVaultAdmin(ctx context.Context) (*vault.Vault, error) {
	return s.openStorageVault(ctx)
}

// OpenVault opens the site's vault. Fallback reads are reported to Note.
func (s *Site) OpenVault(ctx context.Context) (*Vault, error) {
	v, err := s.openStorageVault(ctx)
	if err != nil {
		return nil, err
	}
	o := &Vault{Vault: v, note: s.Note, Read: v.Primary(), paced: func(b storage.Backend) storage.Backend { return b }}
	var opts []storage.ReplicatedOption
	if s.Throttle != "" {
		sched, err := storage.ParseThrottle(s.Throttle)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("throttle: %w", err)
		}
		// One limit for all vault traffic, both GRS copies together.
		o.paced = func(b storage.Backend) storage.Backend { return storage.Throttled(b, sched, nil) }
		o.Read = o.paced(o.Read)
		opts = append(opts, storage.WithThrottle(sched, nil))
	}
	if sec := v.Secondary(); sec != nil {
		o.Read = storage.Replicated(v.Primary(), sec, append(opts,
			storage.WithFallbackReport(func(f storage.Fallback) {
				// One note per run: a restore that falls back does so for
				// every object, and the first says why.
				o.mu.Lock()
				defer o.mu.Unlock()
				if o.fallbacks++; o.fallbacks == 1 && o.note != nil {
					o.note(f.String())
				}
			}),
			storage.WithContentHash(ObjectHashFromName))...)
	}
	o.Target = archive.VaultTarget{Name: v.Name(), Backend: o.Read}
	return o, nil
}

// OpenVaultForRead is OpenVault for jobs that only read (restore, points):
// when the primary copy cannot even be opened (its config is read from
// there) and the vault has a secondary copy, it reads from the secondary
// copy alone and says so.
func (s *Site) OpenVaultForRead(ctx context.Context) (*Vault, error) {
	o, err := s.OpenVault(ctx)
	if err == nil || !s.registered() || s.Vault.SecondaryURL == "" {
		return o, err
	}
	sa := vault.Account{URL: s.Vault.SecondaryURL, Options: s.Vault.Primary.Options}
	if so := s.Vault.Secondary; so != nil {
		sa.Options = *so
	}
	v, serr := vault.OpenVault(ctx, sa, s.Vault.Name, s.Vault.Secondary)
	if serr != nil {
		return nil, fmt.Errorf("%w; the secondary copy at %s failed too: %v", err, storage.Redact(s.Vault.SecondaryURL), serr)
	}
	s.note(fmt.Sprintf("the primary copy of vault %s failed (%v); reading from the secondary copy at %s",
		s.Vault.Name, err, storage.Redact(s.Vault.SecondaryURL)))
	b := v.Primary() // the secondary account's copy
	return &Vault{Vault: v, Target: archive.VaultTarget{Name: v.Name(), Backend: b}, Read: b,
		paced: func(b storage.Backend) storage.Backend { return b }}, nil
}

// ObjectHashFromName returns the SHA-256 an archive object's name says its
// bytes have (packs/, index/ and points/ objects are named by it).
func ObjectHashFromName(name string) ([32]byte, bool) {
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

// StageVault prepares to read a point of size bytes from the vault through
// the site's staging folder (next to the store when none is set), after
// the scratch rule: the folder must have 5 % of it free.
func StageVault(ctx context.Context, site *Site, v *Vault, bytes int64) (*archive.StagedVault, error) {
	staging := site.Staging
	if staging == "" {
		staging = filepath.Join(filepath.Dir(site.Store), "staging")
	}
	if err := vault.CheckScratch(staging, bytes); err != nil {
		return nil, err
	}
	return archive.NewStagedVault(ctx, v.Read, staging)
}

// TieredSource is what a restore of a local point reads from when the
// point names packs only the vault holds (a backup that deduplicated
// against the vault): the store first, those packs from the vault through
// the staging folder. With none such, it returns objects itself and held
// 0. Close releases the vault.
type TieredSource struct {
	storage.Backend
	Held    int    // packs of the point read from the vault
	Vault   string // their vault
	Staging string // where they are staged
	close   func() error
}

// Close closes the vault side (nothing for a store-only source).
func (t *TieredSource) Close() error {
	if t.close == nil {
		return nil
	}
	return t.close()
}

// OpenTieredSource prepares to read point p of the store whose objects
// are objects.
func OpenTieredSource(ctx context.Context, site *Site, objects storage.Backend, p archive.PointHeader) (*TieredSource, error) {
	vaulted, err := archive.VaultedPacks(ctx, objects)
	if err != nil {
		return nil, err
	}
	held := 0
	var bytes int64
	for _, r := range p.Packs {
		if _, ok := vaulted[r.Pack]; ok {
			held++
			bytes += r.Size
		}
	}
	if held == 0 {
		return &TieredSource{Backend: objects}, nil
	}
	if !site.registered() {
		return nil, fmt.Errorf("point %s shares %d packs with points in the vault, and no vault is configured to read them from: %w",
			p.ID.String()[:12], held, ErrNotRegistered)
	}
	v, err := site.OpenVaultForRead(ctx)
	if err != nil {
		return nil, err
	}
	sv, err := StageVault(ctx, site, v, bytes)
	if err != nil {
		v.Close()
		return nil, err
	}
	return &TieredSource{
		Backend: archive.NewTieredBackend(objects, sv),
		Held:    held, Vault: v.Name(), Staging: sv.Dir(),
		close: func() error {
			err := sv.Close()
			if cerr := v.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}, nil
}
