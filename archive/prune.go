package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// PruneLockTTL is how long prune's vault lock counts as live without a
// refresh; far above storage.MaxClockSkew.
const PruneLockTTL = time.Hour

// DefaultOrphanGrace is how old an object no point references must be
// before prune removes it: younger ones may belong to an offload still
// running on another server of the vault (it writes a point's packs
// before the point).
const DefaultOrphanGrace = 48 * time.Hour

// ErrShortListing is wrapped when prune refuses to delete because the
// vault listing holds fewer points than the local catalogue says exist.
var ErrShortListing = errors.New("vault listing is shorter than the local catalogue")

// PruneOptions tunes Prune.
type PruneOptions struct {
	// Select chooses the points to expire from this server's points (its
	// key): those in the vault and, so that a policy's buckets count the
	// points offload will bring, the local ones. Prune expires only the
	// selected points that are in the vault and complete on every copy:
	// a point whose replication is pending, a local-only point and another
	// server's point are never expired, whatever Select returns. Nil
	// expires nothing.
	Select SelectFunc
	Now    func() time.Time
	DryRun bool
	// OrphanGrace overrides DefaultOrphanGrace (tests).
	OrphanGrace time.Duration
	// ImmutableDays is the vault's object-lock period; a dry run uses it
	// to tell which deletions would have to wait.
	ImmutableDays int
	// MaxClockSkew overrides storage.MaxClockSkew; < 0 turns the check off.
	MaxClockSkew time.Duration
	Log          func(string)
}

// WaitingObject is a vault object prune wants to delete that is under
// object-lock retention.
type WaitingObject struct {
	Name  string    `json:"name"`
	Until time.Time `json:"until,omitzero"` // estimated end of retention, when known
}

// PruneResult is what Prune did (or, in a dry run, would do).
type PruneResult struct {
	// Points are the points Select was shown.
	Points         []PointStatus   `json:"-"`
	Expired        []ID            `json:"expired"` // point objects removed
	ObjectsRemoved int             `json:"objects_removed"`
	BytesRemoved   int64           `json:"removed_bytes"`
	Orphans        int             `json:"orphans"` // of ObjectsRemoved: referenced by no point
	Waiting        []WaitingObject `json:"waiting"`
	Foreign        int             `json:"foreign_points"` // points of other servers' keys, left alone
	// Damaged are the point objects (in the vault or the store) that
	// could not be read: skipped. While one in the vault is damaged no
	// pack or index object is removed, since it may need any of them.
	Damaged []DamagedPoint `json:"damaged"`
	// PacksKept is set when no pack or index object was removed because
	// a point in the vault is damaged.
	PacksKept bool          `json:"packs_kept_for_damaged"`
	DryRun    bool          `json:"dry_run"`
	Duration  time.Duration `json:"duration_ns"`
}

// vaultListing is the complete listing of every copy.
type vaultListing struct {
	copies []map[string]storage.Info // per copy, by name
}

func (l vaultListing) union(prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range l.copies {
		for n := range m {
			if strings.HasPrefix(n, prefix) && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

func listCopies(ctx context.Context, v VaultTarget) (vaultListing, error) {
	var l vaultListing
	for _, b := range v.Copies() {
		m := map[string]storage.Info{}
		for _, prefix := range []string{PointsPrefix, PacksPrefix, IndexPrefix} {
			err := b.List(ctx, prefix, func(i storage.Info) error {
				m[i.Name] = i
				return nil
			})
			if err != nil {
				// A listing that failed part-way must never look like
				// missing objects.
				return l, fmt.Errorf("list %s at %s: %w", prefix, b.Location(), err)
			}
		}
		l.copies = append(l.copies, m)
	}
	return l, nil
}

// Prune expires the vault points of this store's key that o.Select picks
// (the caller applies the long-term policy there), and removes the vault objects no remaining point
// (of any server) needs, under the vault lock "prune". It refuses to delete
// anything when the vault listing lacks a point the local catalogue says
// is archived, and when the clocks disagree. Objects under object lock are
// reported as waiting and left. A killed prune is completed by the next
// one (its decisions are journaled in the store first).
func Prune(ctx context.Context, s *Store, v VaultTarget, o PruneOptions) (*PruneResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OrphanGrace == 0 {
		o.OrphanGrace = DefaultOrphanGrace
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = storage.MaxClockSkew
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	start := o.Now()
	res := &PruneResult{DryRun: o.DryRun, Waiting: []WaitingObject{}, Damaged: []DamagedPoint{}}
	// holdLock keeps the vault lock ours through a long prune: it renews
	// the lock every quarter of its TTL, so no other prune ever takes it
	// for stale, and stops prune when it was lost (broken meanwhile).
	holdLock := func(bool) error { return nil }
	if !o.DryRun {
		if o.MaxClockSkew > 0 {
			for _, b := range v.raw() {
				if err := storage.CheckClockSkew(ctx, b, o.Now(), o.MaxClockSkew); err != nil {
					return nil, fmt.Errorf("prune: %w", err)
				}
			}
		}
		lock, err := storage.AcquireLock(ctx, v.Primary, "prune", "prune", PruneLockTTL, o.Now())
		if errors.Is(err, storage.ErrLockHeld) {
			// A prune killed on this host leaves its lock behind; its
			// process is gone, so the lock is released at once instead
			// of after the TTL.
			if dead, rerr := storage.ReleaseDeadLock(ctx, v.Primary, "prune"); rerr == nil && dead != nil {
				o.Log(fmt.Sprintf("released the vault lock of a prune that is gone (pid %d since %s)", dead.PID, dead.Time.Format(time.RFC3339)))
				lock, err = storage.AcquireLock(ctx, v.Primary, "prune", "prune", PruneLockTTL, o.Now())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		defer lock.Release(context.WithoutCancel(ctx))
		renewed := o.Now()
		holdLock = func(check bool) error {
			var err error
			if now := o.Now(); now.Sub(renewed) >= PruneLockTTL/4 {
				err, renewed = lock.Refresh(ctx, now), now
			} else if check {
				err = lock.Check(ctx)
			}
			if err != nil {
				return fmt.Errorf("prune: stopping: %w", err)
			}
			return nil
		}
	}

	listing, err := listCopies(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// Read every point header (clear part, checked against its name) from
	// a copy that has it.
	// A point damaged on every copy that lists it is skipped and
	// reported; a point that cannot be read for another reason (an
	// outage) stops prune: both keep all their objects.
	headers := map[string]PointHeader{}
	vaultDamaged := 0
	for _, name := range listing.union(PointsPrefix) {
		var damage, outage error
		where := ""
		read := false
		for i, b := range v.Copies() {
			if _, ok := listing.copies[i][name]; !ok {
				continue
			}
			h, err := readPointHeader(ctx, b, name)
			if err == nil {
				headers[name], read = h, true
				break
			}
			if isDamage(err) {
				if damage == nil {
					damage, where = err, b.Location()
				}
			} else {
				outage = err
			}
		}
		switch {
		case read:
		case outage != nil:
			return nil, fmt.Errorf("prune: refusing to decide with an unreadable point: %w", outage)
		default:
			res.Damaged = append(res.Damaged, DamagedPoint{Name: name, Location: where, Err: damage})
			vaultDamaged++
		}
	}

	// Never decide from a short listing.
	cat, err := Catalog(ctx, s)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, e := range cat {
		if !e.Archived() {
			continue
		}
		name := PointName(e.Point)
		if _, ok := listing.copies[0][name]; !ok {
			missing = append(missing, e.Point.String()[:12]+" (primary)")
		}
		if e.State == StateArchived && len(listing.copies) > 1 {
			if _, ok := listing.copies[1][name]; !ok {
				missing = append(missing, e.Point.String()[:12]+" (secondary)")
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("prune: %w: %d archived points are missing from the listing (%s); refusing to delete anything — check the vault (verify) before pruning",
			ErrShortListing, len(missing), strings.Join(firstN(missing, 5), ", "))
	}

	// The plan: this server's points (its key), local ones included so
	// that vault buckets count the points offload will bring.
	local, err := s.ListPoints(ctx)
	if err != nil && !OnlyDamage(err) {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// A damaged local point only leaves the policy's view (which then
	// keeps more, never less); the vault's objects do not depend on it.
	res.Damaged = append(res.Damaged, DamagedPoints(err)...)
	isLocal := map[ID]bool{}
	state := map[ID]CatalogState{}
	for _, e := range cat {
		state[e.Point] = e.State
	}
	var pts []PointStatus
	for _, h := range local {
		isLocal[h.ID] = true
		if _, inVault := headers[PointName(h.ID)]; inVault {
			continue // added below, archived
		}
		pts = append(pts, PointStatus{ID: h.ID, Source: h.Source, Time: h.Time, Local: true})
	}
	expirable := map[ID]bool{}
	for name, h := range headers {
		if h.KeyFingerprint != s.pub.Fingerprint {
			res.Foreign++
			continue
		}
		ps := PointStatus{ID: h.ID, Source: h.Source, Time: h.Time, Local: isLocal[h.ID], Archived: true}
		onAll := true
		for i := range listing.copies {
			if _, ok := listing.copies[i][name]; !ok {
				onAll = false
			}
		}
		ps.Pending = !onAll || state[h.ID] == StatePending
		expirable[h.ID] = !ps.Pending
		pts = append(pts, ps)
	}
	sortStatus(pts)
	res.Points = pts
	var selected []ID
	if o.Select != nil {
		if selected, err = o.Select(pts); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}

	// Journal: the expired points and every object they reference, so a
	// killed run still knows what to collect once the points are gone.
	journal, err := pruneJournal(s)
	if err != nil {
		return nil, err
	}
	expire := map[string]bool{}
	for _, id := range selected {
		complete, known := expirable[id]
		if !complete {
			if known {
				o.Log(fmt.Sprintf("point %s is not expired: its replication is pending", id.String()[:12]))
			}
			continue // not this server's vault point: never expired here
		}
		name := PointName(id)
		expire[name] = true
		journal[name] = true
		for _, r := range headers[name].Packs {
			journal[PackName(r.Pack)] = true
			journal[IndexName(r.Index)] = true
		}
	}
	if !o.DryRun {
		// Listing and reading every point may have taken long: the
		// decisions stand only if the lock is still ours.
		if err := holdLock(true); err != nil {
			return nil, err
		}
		if err := pruneJournalAdd(s, journal); err != nil {
			return nil, err
		}
		crashPoint(crashPruneJournal)
	}

	now := o.Now()
	remove := func(name string, size int64) (bool, error) {
		if o.DryRun {
			if until, locked := lockedUntil(listing, name, o.ImmutableDays, now); locked {
				res.Waiting = append(res.Waiting, WaitingObject{Name: name, Until: until})
				return false, nil
			}
			return true, nil
		}
		if err := holdLock(false); err != nil {
			return false, err
		}
		err := removeEverywhere(ctx, v, name)
		if errors.Is(err, storage.ErrLocked) {
			until, _ := lockedUntil(listing, name, o.ImmutableDays, now)
			res.Waiting = append(res.Waiting, WaitingObject{Name: name, Until: until})
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("prune: %w", err)
		}
		return true, nil
	}

	// Points first (a point must never outlive the objects it needs).
	gone := map[string]bool{}
	for _, name := range listing.union(PointsPrefix) {
		if !expire[name] {
			continue
		}
		ok, err := remove(name, sizeOf(listing, name))
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		gone[name] = true
		id, _ := idFromName(name)
		res.Expired = append(res.Expired, id)
		res.ObjectsRemoved++
		res.BytesRemoved += sizeOf(listing, name)
		if !o.DryRun {
			if e, ok, err := catalogGet(s, id); err == nil && ok {
				e.State = StateExpired
				if err := catalogPut(s, e); err != nil {
					return res, err
				}
			}
			crashPoint(crashPrunePointRemoved)
		}
	}
	// What the remaining points (of every server) need.
	needed := map[string]bool{}
	for name, h := range headers {
		if gone[name] {
			continue
		}
		for _, r := range h.Packs {
			needed[PackName(r.Pack)] = true
			needed[IndexName(r.Index)] = true
		}
	}
	// Objects no point references are collected only when the listing
	// shows points at all: packs without a single point look exactly
	// like a points listing that came back empty.
	collectOrphans := len(headers) > 0 || len(listing.union(PacksPrefix)) == 0
	if !collectOrphans {
		o.Log("the vault lists packs but no point: leaving unreferenced objects alone (an empty points listing is never a reason to delete)")
	}
	// A damaged point may need any pack: while one is in the vault no
	// pack or index object is removed. The journal keeps what the points
	// expired now leave behind for a prune after it is dealt with.
	collect := vaultDamaged == 0
	res.PacksKept = !collect
	if !collect {
		o.Log(fmt.Sprintf("%d point objects in the vault are damaged and may need any pack: removing no pack or index object until it is repaired or removed", vaultDamaged))
	}
	// Index objects before their packs: an index must never name a
	// missing pack.
	var cands []string
	for _, prefix := range []string{IndexPrefix, PacksPrefix} {
		if !collect {
			break
		}
		for _, name := range listing.union(prefix) {
			if needed[name] {
				continue
			}
			if journal[name] {
				cands = append(cands, name)
				continue
			}
			if age := now.Sub(newestModTime(listing, name)); collectOrphans && age >= o.OrphanGrace {
				cands = append(cands, name)
				res.Orphans++
			}
		}
	}
	for _, name := range cands {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ok, err := remove(name, sizeOf(listing, name))
		if err != nil {
			return res, err
		}
		if ok {
			res.ObjectsRemoved++
			res.BytesRemoved += sizeOf(listing, name)
			if !o.DryRun {
				crashPoint(crashPruneObjectRemoved)
			}
		}
	}
	if !o.DryRun && collect {
		if err := pruneJournalClear(s); err != nil {
			return res, err
		}
	}
	res.Duration = o.Now().Sub(start)
	return res, nil
}

// removeEverywhere deletes name from every copy, primary first; a copy
// that already lacks it is fine (a killed prune resumes). Object lock on
// the primary leaves the secondary alone, so the copies stay alike.
func removeEverywhere(ctx context.Context, v VaultTarget, name string) error {
	for _, b := range v.Copies() {
		if err := b.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove %s from %s: %w", name, b.Location(), err)
		}
	}
	return nil
}

func sizeOf(l vaultListing, name string) int64 {
	for _, m := range l.copies {
		if i, ok := m[name]; ok {
			return i.Size
		}
	}
	return 0
}

func newestModTime(l vaultListing, name string) time.Time {
	var t time.Time
	for _, m := range l.copies {
		if i, ok := m[name]; ok && i.ModTime.After(t) {
			t = i.ModTime
		}
	}
	return t
}

// lockedUntil estimates when object lock releases name: its write time
// plus the vault's immutable days.
func lockedUntil(l vaultListing, name string, days int, now time.Time) (time.Time, bool) {
	if days <= 0 {
		return time.Time{}, false
	}
	until := newestModTime(l, name).Add(time.Duration(days) * 24 * time.Hour)
	return until, until.After(now)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

func pruneJournal(s *Store) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPrune)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the prune journal: %w", err)
	}
	return out, nil
}

func pruneJournalAdd(s *Store, names map[string]bool) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPrune)
		if err != nil {
			return err
		}
		for n := range names {
			if err := b.Put([]byte(n), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write the prune journal: %w", err)
	}
	return nil
}

func pruneJournalClear(s *Store) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPrune) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketPrune)
	})
	if err != nil {
		return fmt.Errorf("clear the prune journal: %w", err)
	}
	return nil
}
