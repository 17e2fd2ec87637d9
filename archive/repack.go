package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/tapeless/tapeless/storage"
)

// Repacking mostly-empty packs is measured, not done. What prune cannot
// collect is a pack that expired points shared with kept ones: it stays
// whole while part of it is dead. Rewriting its live blobs into new packs
// is not safe in this format, for reasons that are the format's, not the
// code's:
//
//   - A point object lists its packs in its clear header (so offload, prune
//     and scrub work without the passphrase), and a point's ID is the
//     SHA-256 of that object. New packs mean a new point object, hence a new
//     ID for a point that has not changed: the IDs users keep and restore
//     by, the catalogue's records and every child point's Parent would
//     change, and safety invariant 2 allows deleting a vault object only
//     because its point expired.
//   - The daemon has no passphrase, and reading blobs needs one; under
//     object lock the old packs cannot go before their retention ends, so
//     a repack there first costs the space it means to save.
//
// So prune, given the passphrase, reports what a repack would save, and
// format changes (pack references outside the point's hash) are the way
// to act on it.

// RepackMaxLive is the live fraction below which a pack counts as mostly
// empty.
const RepackMaxLive = 0.5

// RepackMinSaving is the least a repack must free to be worth it, along
// with a tenth of the packs of this key in the vault.
const RepackMinSaving = 4 << 20

// RepackEstimate is what repacking the mostly-empty packs of one key would
// free.
type RepackEstimate struct {
	Points     int   `json:"points"`       // points of this key read
	Packs      int   `json:"packs"`        // packs those points need
	PackBytes  int64 `json:"stored_bytes"` // their stored size
	Sparse     int   `json:"sparse_packs"` // packs less than RepackMaxLive live
	SparseSize int64 `json:"sparse_bytes"` // their stored size
	LiveBytes  int64 `json:"live_bytes"`   // of those, the blobs still needed
	Saving     int64 `json:"saving_bytes"` // SparseSize - LiveBytes
	// Worth is true when Saving is at least RepackMinSaving and a tenth
	// of PackBytes: only then does a repack save real space.
	Worth bool `json:"worth"`
}

// EstimateRepack reads every point of k's key pair in b (tree blobs and
// index objects; the private key is needed) and adds up, per pack those
// points need, the bytes of the blobs they still reference. It changes
// nothing.
func EstimateRepack(ctx context.Context, b storage.Backend, k *Keys) (RepackEstimate, error) {
	var est RepackEstimate
	headers, err := ListPoints(ctx, b)
	if err != nil {
		return est, fmt.Errorf("estimate repack: %w", err)
	}
	r := NewReader(b, k)
	defer r.Close()
	size := map[ID]int64{}
	live := map[ID]int64{}
	seen := map[blobKey]bool{}
	add := func(t BlobType, id ID) error {
		key := makeBlobKey(t, id)
		if seen[key] {
			return nil
		}
		seen[key] = true
		loc, err := r.find(ctx, t, id)
		if err != nil {
			return err
		}
		live[loc.Pack] += int64(loc.Length)
		return nil
	}
	for _, ph := range headers {
		if ph.KeyFingerprint != k.Fingerprint {
			continue // another server's point: its packs are sealed to its key
		}
		if err := ctx.Err(); err != nil {
			return est, err
		}
		h, err := r.LoadPoint(ctx, ph.ID)
		if err != nil {
			return est, fmt.Errorf("estimate repack: %w", err)
		}
		est.Points++
		for _, p := range h.Packs {
			size[p.Pack] = p.Size
		}
		for _, id := range h.Tree {
			if err := add(BlobTree, id); err != nil {
				return est, fmt.Errorf("estimate repack: point %s: %w", h.ID, err)
			}
		}
		mr, err := OpenManifest(ctx, r, h.Tree)
		if err != nil {
			return est, fmt.Errorf("estimate repack: point %s: %w", h.ID, err)
		}
		for {
			n, err := mr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return est, fmt.Errorf("estimate repack: point %s: %w", h.ID, err)
			}
			for _, c := range n.Chunks {
				if err := add(BlobData, c); err != nil {
					return est, fmt.Errorf("estimate repack: point %s: %w", h.ID, err)
				}
			}
		}
	}
	packs := make([]ID, 0, len(size))
	for p := range size {
		packs = append(packs, p)
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i].String() < packs[j].String() })
	for _, p := range packs {
		est.Packs++
		est.PackBytes += size[p]
		if float64(live[p]) < RepackMaxLive*float64(size[p]) {
			est.Sparse++
			est.SparseSize += size[p]
			est.LiveBytes += live[p]
		}
	}
	est.Saving = est.SparseSize - est.LiveBytes
	est.Worth = est.Saving >= RepackMinSaving && est.Saving*10 >= est.PackBytes
	return est, nil
}
