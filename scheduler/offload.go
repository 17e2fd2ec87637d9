package scheduler

import (
	"context"
	"fmt"
	"strings"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/storage/humanize"
	"github.com/tapeless/tapeless/storage/vault"
)

// OffloadRequest is one run of the offload job.
type OffloadRequest struct {
	// Policy is the retention policy to plan with (the site's, with any
	// overrides the caller applied).
	Policy retention.Policy
	// DryRun plans and stops: no vault access, nothing changes.
	DryRun bool
	// ReadBack downloads every uploaded object from each copy again and
	// checks its SHA-256.
	ReadBack bool
	Progress func(archive.OffloadProgress)
	Log      func(msg string)
}

// OffloadReport is what an offload planned and did.
type OffloadReport struct {
	Plan *OffloadPlan
	// Damaged are the store's point objects that cannot be read: not
	// offloaded, kept locally with every local pack.
	Damaged []archive.DamagedPoint
	Result  *archive.OffloadResult // nil for a dry run
}

// Offload is the offload job: apply the short-term retention policy to
// the store's points and move those it calls old into the vault, after
// the scratch rule and a check that the vault can give the points back
// (it holds this store's key envelope). A report with Problems is a
// partial success.
func Offload(ctx context.Context, site *Site, s *archive.Store, req OffloadRequest) (*OffloadReport, error) {
	if err := req.Policy.Validate(); err != nil {
		return nil, err
	}
	plan, err := PlanOffload(ctx, s, req.Policy, site.now(), site.loc())
	if err != nil {
		return nil, err
	}
	rep := &OffloadReport{Plan: plan, Damaged: append([]archive.DamagedPoint{}, plan.Archive.Damaged...)}
	if req.DryRun {
		return rep, nil
	}
	if !site.registered() {
		return nil, ErrNotRegistered
	}
	// The scratch rule: offload stages nothing, but the staging folder is
	// where a restore of these points will land first.
	scratch := site.Staging
	if scratch == "" {
		scratch = s.Dir()
	}
	if err := vault.CheckScratch(scratch, plan.Upload); err != nil {
		return nil, err
	}
	v, err := site.OpenVault(ctx)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	if err := CheckVaultEnvelope(ctx, v.Vault, s.PublicKeys()); err != nil {
		return nil, err
	}
	rep.Result, err = archive.Offload(ctx, s, v.Target, plan.Archive, archive.OffloadOptions{
		Now:      site.clock(),
		ReadBack: req.ReadBack,
		Progress: req.Progress,
		Log:      req.Log,
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// Problems are the reasons the offload succeeded only in part, one
// sentence each: damaged points left in the store, replication pending,
// unreadable point objects. None means complete success.
func (r *OffloadReport) Problems() []string {
	var out []string
	if res := r.Result; res != nil {
		if n := len(res.Incomplete); n > 0 {
			var ds []string
			for _, d := range res.Incomplete {
				ds = append(ds, fmt.Sprintf("%s (missing %s)", d.Point.String()[:12], strings.Join(d.Missing, ", ")))
			}
			out = append(out, fmt.Sprintf("%d damaged point(s) not offloaded and kept in the store: %s; run 'tapeless verify'",
				n, strings.Join(ds, "; ")))
		}
		if pr := res.PendingReplication; pr.Objects > 0 {
			why := ""
			if res.SecondaryError != "" {
				why = ": " + res.SecondaryError
			}
			out = append(out, fmt.Sprintf("%d points archived, replication pending (%d objects, %s, to the secondary copy%s); their local copies are kept until the next offload confirms both copies",
				pr.Points, pr.Objects, humanize.Bytes(pr.Bytes), why))
		}
	}
	if len(r.Damaged) > 0 {
		out = append(out, (&archive.DamagedPointsError{Points: r.Damaged}).Error()+
			"; they are kept locally, and no local pack is collected while they are there")
	}
	return out
}
