package retention

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Reason texts that callers and tests may match on.
const (
	ReasonFuture       = "in the future: never offloaded or expired"
	ReasonPending      = "replication pending: never expired"
	ReasonEmptyVault   = "vault policy is empty: nothing expires"
	ReasonNotKept      = "not kept by the vault policy"
	ReasonExpiresLater = "not kept by the vault policy: prune expires it after offload"
	ReasonNoShortTerm  = "no short-term policy"
)

// Apply decides the action for every point under policy p at time now,
// with calendar buckets in loc (nil means UTC). See the package
// documentation for the rules. The plan holds one decision per point,
// sorted by source, then newest first, then ID. Apply fails on an invalid
// policy, a point with an empty ID, an unknown tier or state, or an ID
// listed twice (a point in both tiers must be one Point with Tier Both).
func Apply(points []Point, p Policy, now time.Time, loc *time.Location) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	if loc == nil {
		loc = time.UTC
	}
	seen := make(map[string]bool, len(points))
	for _, pt := range points {
		switch {
		case pt.ID == "":
			return Plan{}, fmt.Errorf("retention: point of source %q at %s has no ID", pt.Source, pt.Time)
		case seen[pt.ID]:
			return Plan{}, fmt.Errorf("retention: point %s listed twice", pt.ID)
		case tierNames[pt.Tier] == "":
			return Plan{}, fmt.Errorf("retention: point %s: unknown tier %d", pt.ID, int(pt.Tier))
		case stateNames[pt.State] == "":
			return Plan{}, fmt.Errorf("retention: point %s: unknown state %d", pt.ID, int(pt.State))
		}
		seen[pt.ID] = true
	}
	sorted := slices.Clone(points)
	slices.SortFunc(sorted, func(a, b Point) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), b.Time.Compare(a.Time), cmp.Compare(a.ID, b.ID))
	})
	plan := Plan{Decisions: make([]Decision, 0, len(sorted)), Location: loc}
	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Source == sorted[start].Source {
			end++
		}
		plan.Decisions = append(plan.Decisions, applySource(sorted[start:end], p, now, loc)...)
		start = end
	}
	return plan, nil
}

// applySource decides for the points of one source, sorted newest first.
func applySource(points []Point, p Policy, now time.Time, loc *time.Location) []Decision {
	ds := make([]Decision, len(points))
	var candidates []*Decision // vault points and offloads, newest first
	onDisk := 0
	for i, pt := range points {
		d := &ds[i]
		d.Point = pt
		switch {
		case pt.Time.After(now):
			// A future stamp means a wrong clock somewhere; such a point
			// neither moves nor takes a slot from a real one.
			d.Action = KeepLocal
			if pt.Tier == Vault {
				d.Action = KeepInVault
			}
			d.Reasons = []string{ReasonFuture}
		case pt.Tier == Vault:
			d.Action = KeepInVault
			candidates = append(candidates, d)
		default:
			onDisk++
			if p.Local.KeepWithin > 0 && now.Sub(pt.Time) < p.Local.KeepWithin {
				d.Reasons = append(d.Reasons, "keep-within "+days(p.Local.KeepWithin))
			}
			if onDisk <= p.Local.KeepLast {
				d.Reasons = append(d.Reasons, fmt.Sprintf("keep-last %d", p.Local.KeepLast))
			}
			if len(d.Reasons) > 0 {
				d.Action = KeepLocal
				continue
			}
			d.Action = Offload
			d.Reasons = offloadReasons(p.Local)
			candidates = append(candidates, d)
		}
	}
	if p.Vault.IsEmpty() {
		for _, d := range candidates {
			d.Reasons = append(d.Reasons, ReasonEmptyVault)
		}
		return ds
	}
	rules := []*rule{
		{name: "daily", left: p.Vault.Daily, key: func(t time.Time) string { return t.Format("2006-01-02") }},
		{name: "weekly", left: p.Vault.Weekly, key: func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{name: "monthly", left: p.Vault.Monthly, key: func(t time.Time) string { return t.Format("2006-01") }},
		{name: "yearly", left: p.Vault.Yearly, key: func(t time.Time) string { return t.Format("2006") }},
	}
	for _, d := range candidates {
		t := d.Point.Time.In(loc)
		kept := false
		for _, r := range rules {
			if reason, ok := r.take(t); ok {
				d.Reasons = append(d.Reasons, reason)
				kept = true
			}
		}
		switch {
		case kept:
		case d.Action == Offload:
			d.Reasons = append(d.Reasons, ReasonExpiresLater)
		case d.Point.State == ReplicationPending:
			d.Reasons = append(d.Reasons, ReasonNotKept, ReasonPending)
		default:
			d.Action = Expire
			d.Reasons = append(d.Reasons, ReasonNotKept)
		}
	}
	return ds
}

// rule is one long-term bucket rule while candidates are walked newest
// first: it keeps a point when the point opens a new bucket and the rule
// still has buckets left.
type rule struct {
	name string
	key  func(time.Time) string
	left int
	used int
	last string
}

func (r *rule) take(t time.Time) (string, bool) {
	if r.left == 0 {
		return "", false
	}
	k := r.key(t)
	if k == r.last {
		return "", false
	}
	r.last = k
	r.left--
	r.used++
	return fmt.Sprintf("%s %s (%d of %d)", r.name, k, r.used, r.used+r.left), true
}

func offloadReasons(l LocalPolicy) []string {
	var rs []string
	if l.KeepWithin > 0 {
		rs = append(rs, "older than "+days(l.KeepWithin))
	}
	if l.KeepLast > 0 {
		rs = append(rs, fmt.Sprintf("not among the %d newest on disk", l.KeepLast))
	}
	if len(rs) == 0 {
		rs = append(rs, ReasonNoShortTerm)
	}
	return rs
}

// days writes whole days as "14d", the unit retention is configured in.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
