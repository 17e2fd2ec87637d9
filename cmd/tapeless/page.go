package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
)

// pageRuns is how many of the newest runs the status page lists.
const pageRuns = 20

// daemonPage is the status page's data beside the status report: each
// source's points by tier, read from local state only as status reads
// it (the store's point objects and the catalogue), the newest runs of
// the history and the throttle schedule of the configuration cfg
// returns. It reads no key and needs no passphrase.
func daemonPage(cfg func() *config) func(ctx context.Context) (scheduler.PageExtra, error) {
	return func(ctx context.Context) (scheduler.PageExtra, error) {
		c := cfg()
		ex := scheduler.PageExtra{Throttle: c.Throttle}
		if c.Store == "" {
			return ex, nil
		}
		var errs []error
		if hist, err := scheduler.OpenHistory(c.Store); err != nil {
			errs = append(errs, err)
		} else {
			runs := hist.Runs("")
			for i := len(runs) - 1; i >= 0 && len(ex.Runs) < pageRuns; i-- {
				ex.Runs = append(ex.Runs, runs[i])
			}
		}
		objs, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(c.Store, "objects")), storage.Options{})
		if err != nil {
			return ex, fmt.Errorf("open the store: %w", err)
		}
		local, err := archive.ListPoints(ctx, objs)
		objs.Close()
		if err != nil && !archive.OnlyDamage(err) {
			errs = append(errs, fmt.Errorf("list the local points: %w", err))
		}
		// The catalogue may be held by a running backup or offload; the
		// local points are shown anyway.
		cat, err := archive.CatalogAt(ctx, c.Store)
		if err != nil {
			errs = append(errs, fmt.Errorf("catalogue: %w (a backup, offload or prune may be running)", err))
		}
		bySource := map[string][]scheduler.PagePoint{}
		inVault := map[archive.ID]bool{}
		for _, e := range cat {
			if !e.Archived() {
				continue
			}
			inVault[e.Point] = true
			tier := "vault"
			switch {
			case e.State == archive.StatePending:
				tier = "pending"
			case e.Local:
				tier = "both"
			}
			bySource[e.Source] = append(bySource[e.Source], scheduler.PagePoint{Time: e.Time, Tier: tier, Bytes: e.Bytes})
		}
		for _, p := range local {
			if !inVault[p.ID] {
				bySource[p.Source] = append(bySource[p.Source], scheduler.PagePoint{Time: p.Time, Tier: "local", Bytes: p.Bytes})
			}
		}
		for src, pts := range bySource {
			sort.SliceStable(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
			ex.Sources = append(ex.Sources, scheduler.PageSource{Source: src, Points: pts})
		}
		if len(errs) > 0 {
			return ex, errors.Join(errs...)
		}
		return ex, nil
	}
}
