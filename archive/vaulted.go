package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// Deduplication spans both tiers. A pack that offload confirmed on every
// copy of the vault and that no local point needs any more is retired,
// not forgotten: its local files go, but the dedup index keeps its blobs,
// so a later backup of the same data references the pack in the vault
// instead of storing the data again. Such a pack is "vault-held".
//
// Two records say so, written in this order before the local files go:
// bucket archive.vaultpacks (pack ID → pack record), which backup's
// lookups read, and a marker object vaulted/<pack ID> in the store's
// objects, which keyless readers (verify, restore) read without the
// database. A pack leaves the vault only through a prune of this store,
// which forgets it here first (ForgetVaultPack), and a prune of another
// server never removes an object sealed to this server's key.

// VaultedPrefix is the folder of vault-held pack markers in a store's
// objects.
const VaultedPrefix = "vaulted/"

var bucketVaultPacks = []byte("archive.vaultpacks") // pack id -> packRecord, confirmed in the vault

// VaultedName is the marker object of a vault-held pack.
func VaultedName(pack ID) string { return VaultedPrefix + pack.String() }

// vaultedMarker is the content of a vault-held pack's marker: what a
// point's PackRef holds (the store's vault is the one it is registered
// to).
type vaultedMarker struct {
	Pack      ID    `json:"pack"`
	Size      int64 `json:"size"`
	Index     ID    `json:"index"`
	IndexSize int64 `json:"index_size"`
}

// MarkInVault records that pack is confirmed on every copy of the vault, so
// that once no local point needs it, it is retired rather than forgotten.
// A pack the store does not hold locally is ignored.
func (s *Store) MarkInVault(pack ID) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketPacks).Get(pack[:])
		if v == nil {
			return nil
		}
		return tx.Bucket(bucketVaultPacks).Put(pack[:], v)
	})
	if err != nil {
		return fmt.Errorf("record pack %s as held by the vault: %w", pack, err)
	}
	return nil
}

// vaultRecord returns the record of a vault-held pack.
func vaultRecord(tx *bbolt.Tx, pack ID) (packRecord, bool, error) {
	v := tx.Bucket(bucketVaultPacks).Get(pack[:])
	if v == nil {
		return packRecord{}, false, nil
	}
	rec, err := decodePackRecord(v)
	return rec, err == nil, err
}

// VaultOnly reports whether pack is held by the vault and not by the
// store.
func (s *Store) VaultOnly(pack ID) (bool, error) {
	var only bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPacks).Get(pack[:]) != nil {
			return nil
		}
		_, only, _ = vaultRecord(tx, pack)
		return nil
	})
	return only, err
}

// retirePack is RemovePack for a vault-held pack: the marker is written,
// the local record dropped (its blobs' entries stay), then the local
// files go. A crash in between leaves a pack both held and marked, which
// the next collection retires again.
func (s *Store) retirePack(ctx context.Context, pack ID) (bool, error) {
	var rec packRecord
	var held bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, held, err = vaultRecord(tx, pack)
		return err
	})
	if err != nil || !held {
		return false, err
	}
	m, err := json.Marshal(vaultedMarker{Pack: pack, Size: rec.Size, Index: rec.Index, IndexSize: rec.IndexSize})
	if err != nil {
		return false, err
	}
	// A marker left by a retirement cut short says the same.
	if err := saveObject(ctx, s.objects, VaultedName(pack), m); err != nil {
		return false, err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketPacks).Delete(pack[:]) })
	if err != nil {
		return false, err
	}
	s.packMu.Lock()
	s.present[pack] = true
	s.packMu.Unlock()
	for _, name := range []string{IndexName(rec.Index), PackName(pack)} {
		if err := s.objects.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return false, err
		}
	}
	return true, nil
}

// ForgetVaultPack drops a pack the vault is about to lose (prune): from
// then on no backup references it. A pack the store still holds locally
// stays known as local.
func (s *Store) ForgetVaultPack(ctx context.Context, pack ID) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketVaultPacks).Get(pack[:]) == nil {
			return nil
		}
		if err := tx.Bucket(bucketVaultPacks).Delete(pack[:]); err != nil {
			return err
		}
		if tx.Bucket(bucketPacks).Get(pack[:]) != nil {
			return nil
		}
		return forgetPack(tx, pack)
	})
	if err != nil {
		return fmt.Errorf("forget vault pack %s: %w", pack, err)
	}
	s.packMu.Lock()
	delete(s.present, pack)
	s.packMu.Unlock()
	if err := s.objects.Remove(ctx, VaultedName(pack)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("forget vault pack %s: %w", pack, err)
	}
	return nil
}

// VaultedPacks returns the vault-held packs a store's objects record (the
// markers), by pack ID: what a keyless reader of the store needs to tell
// a pack that is in the vault from one that was lost.
func VaultedPacks(ctx context.Context, objects storage.Backend) (map[ID]PackRef, error) {
	out := map[ID]PackRef{}
	var names []string
	err := objects.List(ctx, VaultedPrefix, func(i storage.Info) error {
		names = append(names, i.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list vault-held packs: %w", err)
	}
	for _, name := range names {
		var m vaultedMarker
		err := objects.Load(ctx, name, 0, -1, func(r io.Reader) error {
			return json.NewDecoder(r).Decode(&m)
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if VaultedName(m.Pack) != name {
			return nil, fmt.Errorf("read %s: it names pack %s", name, m.Pack)
		}
		out[m.Pack] = PackRef(m)
	}
	return out, nil
}

// TieredBackend reads a store's objects, and what the store does not hold
// from the vault: the source a restore of a local point that names
// vault-held packs reads from (vault reads go through the staging folder
// the caller passes). Writes are refused.
type TieredBackend struct {
	local, vault storage.Backend
	fromVault    atomic.Int64 // objects read from the vault
}

var _ storage.Backend = (*TieredBackend)(nil)

// NewTieredBackend reads local first, then vault.
func NewTieredBackend(local, vault storage.Backend) *TieredBackend {
	return &TieredBackend{local: local, vault: vault}
}

// FromVault is how many reads the vault served.
func (t *TieredBackend) FromVault() int64 { return t.fromVault.Load() }

func (t *TieredBackend) Location() string {
	return t.local.Location() + " (and " + t.vault.Location() + ")"
}

func (t *TieredBackend) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	return fmt.Errorf("save %s: a tiered read of the store and the vault is read-only", name)
}

func (t *TieredBackend) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	err := t.local.Load(ctx, name, offset, length, fn)
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	t.fromVault.Add(1)
	return t.vault.Load(ctx, name, offset, length, fn)
}

func (t *TieredBackend) Stat(ctx context.Context, name string) (storage.Info, error) {
	i, err := t.local.Stat(ctx, name)
	if !errors.Is(err, storage.ErrNotFound) {
		return i, err
	}
	return t.vault.Stat(ctx, name)
}

// List lists the store: a restore never decides from the vault's listing.
func (t *TieredBackend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return t.local.List(ctx, prefix, fn)
}

func (t *TieredBackend) Remove(ctx context.Context, name string) error {
	return fmt.Errorf("remove %s: a tiered read of the store and the vault is read-only", name)
}

// Close closes neither backend: each belongs to its opener.
func (t *TieredBackend) Close() error { return nil }
