package scheduler

import (
	"context"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
)

// PruneRequest is one run of the prune job.
type PruneRequest struct {
	DryRun bool // say what would be deleted; change nothing
}

// PruneReport is what a prune decided and did.
type PruneReport struct {
	Plan   retention.Plan
	Result *archive.PruneResult
}

// Prune is the prune job: apply the site's long-term retention policy to
// this server's points in the vault, delete those it expires and the
// objects no remaining point needs. A report with Problems is a partial
// success.
func Prune(ctx context.Context, site *Site, s *archive.Store, req PruneRequest) (*PruneReport, error) {
	if err := site.Policy.Validate(); err != nil {
		return nil, err
	}
	v, err := site.OpenVault(ctx)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	rep := &PruneReport{}
	rep.Result, err = archive.Prune(ctx, s, v.Target, archive.PruneOptions{
		Select:        selectByPolicy(site.Policy, site.now(), site.loc(), retention.Expire, &rep.Plan),
		Now:           site.clock(),
		DryRun:        req.DryRun,
		ImmutableDays: v.Config.ImmutableDays,
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// Problems are the reasons the prune succeeded only in part: point
// objects it could not read and skipped.
func (r *PruneReport) Problems() []string {
	if n := len(r.Result.Damaged); n > 0 {
		return []string{(&archive.DamagedPointsError{Points: r.Result.Damaged}).Error()}
	}
	return nil
}
