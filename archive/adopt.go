package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// AdoptStats says what AdoptVault learned.
type AdoptStats struct {
	Packs   int   `json:"packs"`   // packs of this key now known as vault-held
	Blobs   int   `json:"blobs"`   // their blobs, now in the dedup index
	Bytes   int64 `json:"bytes"`   // the packs' size
	Foreign int   `json:"foreign"` // index objects of other keys, skipped
	Skipped int   `json:"skipped"` // index objects unreadable or without their pack, skipped
}

// AdoptVault fills a store's dedup index from the vault's index objects of
// the store's key, so that the first backup of a server that took over a
// lost server's identity (or rebuilt its lost store) references what the
// vault already holds instead of sending it again. It reads index objects
// only (a few bytes per blob) and needs the private key, which every such
// path holds at that moment: take-over unwraps it with the passphrase.
// An index object whose pack the vault lacks, or that does not open, is
// skipped and counted: the store then stores that data again, never
// references what might not be there.
func AdoptVault(ctx context.Context, s *Store, vault storage.Backend, k *Keys) (AdoptStats, error) {
	var st AdoptStats
	packs := map[string]int64{}
	var indexes []string
	err := vault.List(ctx, "", func(i storage.Info) error {
		switch {
		case strings.HasPrefix(i.Name, PacksPrefix):
			packs[i.Name] = i.Size
		case strings.HasPrefix(i.Name, IndexPrefix):
			indexes = append(indexes, i.Name)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("adopt the vault's packs: %w", err)
	}
	want := fingerprintBytes(k.Public)
	for _, name := range indexes {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		id, err := idFromName(name)
		if err != nil {
			st.Skipped++
			continue
		}
		var data []byte
		err = vault.Load(ctx, name, 0, -1, func(r io.Reader) error {
			data, err = io.ReadAll(r)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("adopt the vault's packs: %w", err)
		}
		if len(data) < indexOffSealed || !bytes.Equal(data[indexOffBlock:indexOffBlock+fingerprintLen], want[:]) {
			st.Foreign++
			continue
		}
		h, es, err := openIndex(k, data)
		if err != nil || objectHash(data) != id {
			st.Skipped++
			continue
		}
		if size, ok := packs[PackName(h.Pack)]; !ok || size != h.PackSize {
			st.Skipped++
			continue
		}
		if err := s.adoptPack(ctx, h, id, int64(len(data)), es); err != nil {
			return st, err
		}
		st.Packs++
		st.Blobs += len(es)
		st.Bytes += h.PackSize
	}
	return st, nil
}

// adoptPack records one vault pack as vault-held: its blobs' locations
// (a blob the store already knows keeps its entry), its blob list, its
// record, and its marker.
func (s *Store) adoptPack(ctx context.Context, h indexHeader, index ID, indexSize int64, es []packEntry) error {
	rec := packRecord{Size: h.PackSize, Index: index, IndexSize: indexSize, Blobs: uint32(len(es)), Created: time.Now().Unix()}
	for _, e := range es {
		rec.RawBytes += int64(e.RawLen)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPacks).Get(h.Pack[:]) != nil {
			return nil // the store holds it itself
		}
		blobs := tx.Bucket(bucketBlobs)
		keys := make([]byte, 0, len(es)*33)
		for _, e := range es {
			k := makeBlobKey(e.Type, e.ID)
			keys = append(keys, k[:]...)
			if blobs.Get(k[:]) != nil {
				continue
			}
			loc := location{Pack: h.Pack, Offset: e.Offset, Length: e.Length, RawLen: e.RawLen}
			if err := blobs.Put(k[:], loc.encode()); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketPackBlobs).Put(h.Pack[:], keys); err != nil {
			return err
		}
		return tx.Bucket(bucketVaultPacks).Put(h.Pack[:], rec.encode())
	})
	if err != nil {
		return fmt.Errorf("adopt pack %s: %w", h.Pack, err)
	}
	m, err := json.Marshal(vaultedMarker{Pack: h.Pack, Size: rec.Size, Index: index, IndexSize: indexSize})
	if err != nil {
		return err
	}
	if err := saveObject(ctx, s.objects, VaultedName(h.Pack), m); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("adopt pack %s: %w", h.Pack, err)
	}
	return nil
}
