package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// The local catalogue records, per recovery point, how far its offload has
// come. It lives in the store's state database (bucket "offload.catalog")
// and is written before and after every step, so that a run killed at any
// instant is finished by the next one, and so that prune can tell a vault
// listing that came back short from points that really are gone.
var (
	bucketCatalog = []byte("offload.catalog") // point ID -> CatalogEntry JSON
	bucketPrune   = []byte("offload.prune")   // object name -> "" (prune journal)
)

// CatalogState is where a point's offload stands.
type CatalogState string

// Catalogue states.
const (
	// StateLocal is a point only in the store.
	StateLocal CatalogState = "local"
	// StateUploading is a point whose objects are being copied to the
	// vault; it is not archived yet, whatever the vault holds.
	StateUploading CatalogState = "uploading"
	// StatePending is a point confirmed on the primary copy whose GRS
	// secondary copy is incomplete: archived, replication pending. Its
	// local copy is kept.
	StatePending CatalogState = "archived-pending-replication"
	// StateArchived is a point confirmed on every copy the vault's
	// replication setting demands.
	StateArchived CatalogState = "archived"
	// StateExpired is a point prune removed from the vault.
	StateExpired CatalogState = "expired"
)

// PendingObject is a vault object not yet on the secondary copy.
type PendingObject struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Since time.Time `json:"since"`
}

// CatalogEntry is one point in the local catalogue.
type CatalogEntry struct {
	Point  ID           `json:"point"`
	Source string       `json:"source"`
	Time   time.Time    `json:"time"`
	Bytes  int64        `json:"bytes"` // logical bytes of the source
	State  CatalogState `json:"state"`
	Vault  string       `json:"vault,omitempty"`
	// Stored is the size of every object the point needs in the vault
	// (packs, index objects and the point object).
	Stored int64 `json:"stored"`
	// Local is true while the point object is in the store.
	Local   bool            `json:"local"`
	Pending []PendingObject `json:"pending,omitempty"`
	Updated time.Time       `json:"updated"`
}

// Archived reports whether the point is in the vault, confirmed at least
// on the primary copy (its replication may be pending).
func (e CatalogEntry) Archived() bool { return e.State == StateArchived || e.State == StatePending }

// Catalog returns every entry of the store's local catalogue, oldest point
// first.
func Catalog(ctx context.Context, s *Store) ([]CatalogEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []CatalogEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCatalog)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e CatalogEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("catalogue entry %x: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the offload catalogue of %s: %w", s.dir, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Point.String() < out[j].Point.String()
	})
	return out, nil
}

// catalogGet returns the entry of one point, if any.
func catalogGet(s *Store, id ID) (CatalogEntry, bool, error) {
	var e CatalogEntry
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCatalog)
		if b == nil {
			return nil
		}
		v := b.Get(id[:])
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &e)
	})
	if err != nil {
		return e, false, fmt.Errorf("catalogue entry %s: %w", id, err)
	}
	return e, ok, nil
}

// catalogPut writes one entry; bbolt commits it durably (fsync) before it
// returns, which is what makes the catalogue a crash-safe record.
func catalogPut(s *Store, e CatalogEntry) error {
	e.Updated = time.Now().UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCatalog)
		if err != nil {
			return err
		}
		return b.Put(e.Point[:], v)
	})
	if err != nil {
		return fmt.Errorf("record point %s as %s in the catalogue: %w", e.Point, e.State, err)
	}
	return nil
}

// PendingSummary is what `vault status` shows about replication pending.
type PendingSummary struct {
	Points  int       `json:"points"`
	Objects int       `json:"objects"`
	Bytes   int64     `json:"stored_bytes"`
	Oldest  time.Time `json:"oldest,omitzero"` // when the oldest pending object was written to the primary
}

// PendingReplication sums the objects of catalogue entries whose secondary
// copy is pending.
func PendingReplication(entries []CatalogEntry) PendingSummary {
	var p PendingSummary
	seen := map[string]bool{}
	for _, e := range entries {
		if e.State != StatePending {
			continue
		}
		p.Points++
		for _, o := range e.Pending {
			if seen[o.Name] {
				continue // a pack two points share is pending once
			}
			seen[o.Name] = true
			p.Objects++
			p.Bytes += o.Size
			if p.Oldest.IsZero() || o.Since.Before(p.Oldest) {
				p.Oldest = o.Since
			}
		}
	}
	return p
}

// CatalogAt reads the local catalogue of the store in dir without taking
// the store lock (read-only, waiting up to two seconds for a writer to
// finish a transaction), for status output while another process may be
// at work.
func CatalogAt(ctx context.Context, dir string) ([]CatalogEntry, error) {
	db, err := bbolt.Open(filepath.Join(dir, storeDBFile), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("read the offload catalogue of %s: %w", dir, err)
	}
	defer db.Close()
	return Catalog(ctx, &Store{dir: dir, db: db})
}
