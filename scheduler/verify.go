package scheduler

import (
	"context"
	"fmt"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// VerifyRequest is one run of the store verify job.
type VerifyRequest struct {
	// Keys, when set, also decrypt and re-hash blobs and read every
	// point's manifest as a restore would (nil: without the passphrase,
	// sizes and structure only).
	Keys     *archive.Keys
	ReadData bool    // read packs back, not only their sizes
	Subset   float64 // percent of packs to read (0 or 100: all)
	// Problem receives each problem as it is found.
	Problem func(archive.VerifyProblem)
	// Site, when registered, lets the tree check read the blobs of
	// packs retired to the vault from there (without it, points that
	// need them are reported).
	Site *Site
}

// VerifyReport is what a store verify checked and found.
type VerifyReport struct {
	Stats    archive.VerifyStats
	Trees    *archive.TreeStats // with Keys only
	Problems []string
}

// VerifyStore is the store verify job: the key files first (a damaged
// public-keys file makes every later point unreadable, which checking the
// objects alone cannot show), then every object, then with the key every
// point's tree. The caller holds the store's read lock.
func VerifyStore(ctx context.Context, v *archive.StoreView, req VerifyRequest) (*VerifyReport, error) {
	rep := &VerifyReport{Problems: []string{}}
	report := func(p archive.VerifyProblem) {
		rep.Problems = append(rep.Problems, p.Error())
		if req.Problem != nil {
			req.Problem(p)
		}
	}
	for _, p := range v.CheckKeys(req.Keys) {
		report(archive.VerifyProblem{Object: p.Object, Err: fmt.Errorf("%w; %s", p.Err, RepairKeysHint)})
	}
	stats, err := archive.Verify(ctx, v.Objects, req.Keys, req.ReadData, req.Subset, report)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep.Stats = stats
	if req.Keys != nil {
		points, listErr := archive.ListPoints(ctx, v.Objects)
		if listErr != nil && points == nil {
			return nil, fmt.Errorf("verify: %w", listErr)
		}
		src, err := treeSource(ctx, req.Site, v.Objects, points)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		r := archive.NewReader(src, req.Keys)
		ts, err := archive.VerifyTrees(ctx, r, points, report)
		r.Close()
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		rep.Trees = &ts
	}
	return rep, nil
}

// treeSource is what the tree check reads: the store, and for packs the
// store retired to the vault, the vault (when the site has one).
func treeSource(ctx context.Context, site *Site, objects storage.Backend, points []archive.PointHeader) (*TieredSource, error) {
	var all archive.PointHeader
	seen := map[archive.ID]bool{}
	for _, p := range points {
		for _, r := range p.Packs {
			if !seen[r.Pack] {
				seen[r.Pack] = true
				all.Packs = append(all.Packs, r)
			}
		}
	}
	if site == nil || !site.registered() {
		return &TieredSource{Backend: objects}, nil
	}
	return OpenTieredSource(ctx, site, objects, all)
}
