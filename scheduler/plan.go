package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
)

// The retention policy meets the archive here: the archive shows its points
// as plain data (archive.PointStatus), the policy decides, and the archive
// is handed plain lists of point IDs. The archive never imports retention.

// retentionPoints converts the archive's view of points for retention.Apply.
func retentionPoints(pts []archive.PointStatus) []retention.Point {
	out := make([]retention.Point, 0, len(pts))
	for _, p := range pts {
		rp := retention.Point{ID: p.ID.String(), Source: p.Source, Time: p.Time, Tier: retention.Local}
		switch {
		case p.Archived && p.Local:
			rp.Tier = retention.Both
		case p.Archived:
			rp.Tier = retention.Vault
		}
		if p.Pending {
			rp.State = retention.ReplicationPending
		}
		out = append(out, rp)
	}
	return out
}

// selectByPolicy returns a selection that applies policy at now (calendar
// buckets in loc), keeps the plan in *plan, and selects the points whose
// action is a.
func selectByPolicy(policy retention.Policy, now time.Time, loc *time.Location, a retention.Action, plan *retention.Plan) archive.SelectFunc {
	return func(pts []archive.PointStatus) ([]archive.ID, error) {
		p, err := retention.Apply(retentionPoints(pts), policy, now, loc)
		if err != nil {
			return nil, err
		}
		*plan = p
		var ids []archive.ID
		for _, d := range p.ByAction(a) {
			id, err := archive.ParseID(d.Point.ID)
			if err != nil {
				return nil, fmt.Errorf("retention plan: %w", err)
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
}

// OffloadPlan is an offload plan with the retention decisions behind it.
type OffloadPlan struct {
	retention.Plan
	Stored  map[archive.ID]int64 // stored size of each local point
	Upload  int64                // at most this is sent
	Objects int
	Archive *archive.OffloadPlan
}

// PlanOffload applies the short-term policy to the store's points.
func PlanOffload(ctx context.Context, s *archive.Store, policy retention.Policy, now time.Time, loc *time.Location) (*OffloadPlan, error) {
	var rp retention.Plan
	ap, err := archive.PlanOffload(ctx, s, selectByPolicy(policy, now, loc, retention.Offload, &rp))
	if err != nil {
		return nil, err
	}
	p := &OffloadPlan{Plan: rp, Stored: map[archive.ID]int64{}, Upload: ap.Upload, Objects: ap.Objects, Archive: ap}
	for _, pt := range ap.Points {
		if pt.Local {
			p.Stored[pt.ID] = pt.Stored
		}
	}
	return p, nil
}
