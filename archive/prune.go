package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
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

// vaultListing is the complete listing of the vault: what each copy holds,
// by name.
type vaultListing map[string]storage.Presence

// listVault lists the points, packs and index objects of every copy: for
// GRS both copies in full (a listing that failed part-way must never look
// like missing objects), for LRS the one copy.
func listVault(ctx context.Context, v VaultTarget) (vaultListing, error) {
	l := vaultListing{}
	for _, prefix := range []string{PointsPrefix, PacksPrefix, IndexPrefix} {
		var err error
		if r, ok := v.Replicated(); ok {
			err = r.ListBoth(ctx, prefix, func(p storage.Presence) error {
				l[p.Name] = p
				return nil
			})
		} else {
			err = v.Backend.List(ctx, prefix, func(i storage.Info) error {
				l[i.Name] = storage.Presence{Name: i.Name, Primary: &i}
				return nil
			})
			if err != nil {
				err = fmt.Errorf("list %q at %s: %w", prefix, v.Backend.Location(), err)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

// names returns the listed names under prefix, sorted.
func (l vaultListing) names(prefix string) []string {
	var out []string
	for n := range l {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// size is the size the first copy listing name gives.
func (l vaultListing) size(name string) int64 {
	p := l[name]
	switch {
	case p.Primary != nil:
		return p.Primary.Size
	case p.Secondary != nil:
		return p.Secondary.Size
	}
	return 0
}

// newest is the latest write time of name on any copy.
func (l vaultListing) newest(name string) time.Time {
	var t time.Time
	p := l[name]
	for _, i := range []*storage.Info{p.Primary, p.Secondary} {
		if i != nil && i.ModTime.After(t) {
			t = i.ModTime
		}
	}
	return t
}

// lockedUntil estimates when object lock releases name: its write time
// plus the vault's immutable days.
func (l vaultListing) lockedUntil(name string, days int, now time.Time) (time.Time, bool) {
	if days <= 0 {
		return time.Time{}, false
	}
	until := l.newest(name).Add(time.Duration(days) * 24 * time.Hour)
	return until, until.After(now)
}

// Prune expires the vault points of this store's key that o.Select picks
// (the caller applies the long-term policy there), and removes the vault
// objects no remaining point (of any server) needs, under the vault lock
// "prune". It refuses to delete anything when the vault listing lacks a
// point the local catalogue says is archived, and when the clocks
// disagree. Objects under object lock are reported as waiting and left. A
// killed prune is completed by the next one (its decisions are journaled
// in the store first).
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
	p := &pruner{s: s, v: v, o: o, start: o.Now(), holdLock: func(bool) error { return nil },
		res: &PruneResult{DryRun: o.DryRun, Waiting: []WaitingObject{}, Damaged: []DamagedPoint{}}}
	if !o.DryRun {
		release, err := p.lock(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	if err := p.survey(ctx); err != nil {
		return nil, err
	}
	if err := p.decide(ctx); err != nil {
		return nil, err
	}
	p.now = o.Now()
	if err := p.removePoints(ctx); err != nil {
		return p.res, err
	}
	if err := p.collect(ctx); err != nil {
		return p.res, err
	}
	p.res.Duration = o.Now().Sub(p.start)
	return p.res, nil
}

// pruner is one run of Prune.
type pruner struct {
	s     *Store
	v     VaultTarget
	o     PruneOptions
	res   *PruneResult
	start time.Time
	now   time.Time // when the deletions start

	// holdLock keeps the vault lock ours through a long prune (see lock);
	// check asks the lock's record even when no renewal is due.
	holdLock func(check bool) error

	listing      vaultListing
	headers      map[string]PointHeader // readable point objects, by name
	vaultDamaged int                    // damaged point objects in the vault
	cat          []CatalogEntry
	expirable    map[ID]bool // this server's vault points, true when complete
	selected     []ID
	journal      map[string]bool // expired points and what they reference
	expire       map[string]bool // point objects to remove
	gone         map[string]bool // point objects removed (or would be)
	// localNeeds are the vault objects the store's own points name (a
	// backup that deduplicated against the vault names vault-held
	// packs); localDamaged counts store point objects that cannot be read.
	localNeeds   map[string]bool
	localDamaged int
	orphan       map[string]bool // candidates no point references
}

// survey checks the state prune decides from: the vault listing, every
// point header, the catalogue (never decide from a short listing).
func (p *pruner) survey(ctx context.Context) error {
	var err error
	if p.listing, err = listVault(ctx, p.v); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if err := p.readHeaders(ctx); err != nil {
		return err
	}
	if p.cat, err = Catalog(ctx, p.s); err != nil {
		return err
	}
	if err := p.readLocal(ctx); err != nil {
		return err
	}
	return p.checkListing()
}

// readLocal records what the store's points need from the vault.
func (p *pruner) readLocal(ctx context.Context) error {
	local, err := p.s.ListPoints(ctx)
	if err != nil && !OnlyDamage(err) {
		return fmt.Errorf("prune: %w", err)
	}
	p.localDamaged = len(DamagedPoints(err))
	p.localNeeds = map[string]bool{}
	for _, h := range local {
		for _, r := range h.Packs {
			p.localNeeds[PackName(r.Pack)] = true
			p.localNeeds[IndexName(r.Index)] = true
		}
	}
	return nil
}

// decide shows the policy this server's points, picks the points to
// expire and journals them.
func (p *pruner) decide(ctx context.Context) error {
	pts, err := p.points(ctx)
	if err != nil {
		return err
	}
	p.res.Points = pts
	if p.o.Select != nil {
		if p.selected, err = p.o.Select(pts); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return p.writeJournal()
}

// lock checks the clocks and takes the vault lock "prune", and sets
// holdLock to renew it every quarter of its TTL, so no other prune ever
// takes it for stale, and to stop prune when it was lost (broken
// meanwhile). release gives the lock back.
func (p *pruner) lock(ctx context.Context) (release func(), err error) {
	if p.o.MaxClockSkew > 0 {
		if err := storage.CheckClockSkew(ctx, p.v.Backend, p.o.Now(), p.o.MaxClockSkew); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	primary := p.v.Primary()
	lock, err := vault.AcquireLock(ctx, primary, "prune", "prune", PruneLockTTL, p.o.Now())
	if errors.Is(err, vault.ErrLockHeld) {
		// A prune killed on this host leaves its lock behind; its
		// process is gone, so the lock is released at once instead of
		// after the TTL.
		if dead, rerr := vault.ReleaseDeadLock(ctx, primary, "prune"); rerr == nil && dead != nil {
			p.o.Log(fmt.Sprintf("released the vault lock of a prune that is gone (pid %d since %s)", dead.PID, dead.Time.Format(time.RFC3339)))
			lock, err = vault.AcquireLock(ctx, primary, "prune", "prune", PruneLockTTL, p.o.Now())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	renewed := p.o.Now()
	p.holdLock = func(check bool) error {
		var err error
		if now := p.o.Now(); now.Sub(renewed) >= PruneLockTTL/4 {
			err, renewed = lock.Refresh(ctx, now), now
		} else if check {
			err = lock.Check(ctx)
		}
		if err != nil {
			return fmt.Errorf("prune: stopping: %w", err)
		}
		return nil
	}
	return func() { lock.Release(context.WithoutCancel(ctx)) }, nil
}

// readHeaders reads every listed point header (clear part, checked against
// its name) from a copy that has it. A point damaged on every copy that
// lists it is skipped and reported; a point that cannot be read for
// another reason (an outage) stops prune: both keep all their objects.
func (p *pruner) readHeaders(ctx context.Context) error {
	p.headers = map[string]PointHeader{}
	b := p.v.Backend
	if r, ok := p.v.Replicated(); ok {
		// Deciding, not restoring: a damaged primary copy is prune's to
		// report (as damaged when no copy reads), not a note per read.
		b = r.With(storage.WithFallbackReport(func(storage.Fallback) {}))
	}
	for _, name := range p.listing.names(PointsPrefix) {
		h, err := readVaultPointHeader(ctx, b, name)
		switch {
		case err == nil:
			p.headers[name] = h
		case isDamage(err):
			p.res.Damaged = append(p.res.Damaged, DamagedPoint{Name: name, Location: p.location(name), Err: err})
			p.vaultDamaged++
		default:
			return fmt.Errorf("prune: refusing to decide with an unreadable point: %w", err)
		}
	}
	return nil
}

// location names the first copy that lists name.
func (p *pruner) location(name string) string {
	if p.listing[name].Primary == nil && p.v.Secondary() != nil {
		return p.v.Secondary().Location()
	}
	return p.v.Primary().Location()
}

// readVaultPointHeader is readPointHeader with the object checked against
// its name as it is read: bytes that do not match are an error wrapping
// storage.ErrCorrupt, on which a GRS read falls back to the secondary.
func readVaultPointHeader(ctx context.Context, b storage.Backend, name string) (PointHeader, error) {
	id, err := idFromName(name)
	if err != nil {
		return PointHeader{}, fmt.Errorf("%s: %w: bad name: %w", name, errBadPoint, err)
	}
	var data []byte
	err = b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		if data, err = io.ReadAll(r); err != nil {
			return err
		}
		if got := objectHash(data); got != id {
			return fmt.Errorf("%s: %w: %d bytes hash to %s: %w", name, ErrAuthentication, len(data), got, storage.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return PointHeader{}, fmt.Errorf("load %s: %w", name, err)
	}
	h, _, err := parsePoint(data)
	if err != nil {
		return PointHeader{}, fmt.Errorf("%s: %w: %w", name, errBadPoint, err)
	}
	h.ID = id
	return h, nil
}

// checkListing refuses to go on when the listing lacks a point the
// catalogue records as archived: on the primary, and on the secondary
// when its replication is complete.
func (p *pruner) checkListing() error {
	grs := p.v.Secondary() != nil
	var missing []string
	for _, e := range p.cat {
		if !e.Archived() {
			continue
		}
		at := p.listing[PointName(e.Point)]
		if at.Primary == nil {
			missing = append(missing, e.Point.String()[:12]+" (primary)")
		}
		if e.State == StateArchived && grs && at.Secondary == nil {
			missing = append(missing, e.Point.String()[:12]+" (secondary)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("prune: %w: %d archived points are missing from the listing (%s); refusing to delete anything — check the vault (verify) before pruning",
			ErrShortListing, len(missing), strings.Join(firstN(missing, 5), ", "))
	}
	return nil
}

// points returns what the policy is shown: this server's points (its
// key), local ones included so that vault buckets count the points offload
// will bring; and it notes which vault points may expire (complete on
// every copy).
func (p *pruner) points(ctx context.Context) ([]PointStatus, error) {
	local, err := p.s.ListPoints(ctx)
	if err != nil && !OnlyDamage(err) {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// A damaged local point only leaves the policy's view (which then
	// keeps more, never less); the vault's objects do not depend on it.
	p.res.Damaged = append(p.res.Damaged, DamagedPoints(err)...)
	isLocal := map[ID]bool{}
	state := map[ID]CatalogState{}
	for _, e := range p.cat {
		state[e.Point] = e.State
	}
	var pts []PointStatus
	for _, h := range local {
		isLocal[h.ID] = true
		if _, inVault := p.headers[PointName(h.ID)]; inVault {
			continue // added below, archived
		}
		pts = append(pts, PointStatus{ID: h.ID, Source: h.Source, Time: h.Time, Local: true})
	}
	grs := p.v.Secondary() != nil
	p.expirable = map[ID]bool{}
	for name, h := range p.headers {
		if h.KeyFingerprint != p.s.pub.Fingerprint {
			p.res.Foreign++
			continue
		}
		ps := PointStatus{ID: h.ID, Source: h.Source, Time: h.Time, Local: isLocal[h.ID], Archived: true}
		at := p.listing[name]
		onAll := at.Primary != nil && (!grs || at.Secondary != nil)
		ps.Pending = !onAll || state[h.ID] == StatePending
		p.expirable[h.ID] = !ps.Pending
		pts = append(pts, ps)
	}
	sortStatus(pts)
	return pts, nil
}

// writeJournal picks the selected points that may expire and journals
// them with every object they reference, so a killed run still knows what
// to collect once the points are gone.
func (p *pruner) writeJournal() error {
	journal, err := pruneJournal(p.s)
	if err != nil {
		return err
	}
	p.journal, p.expire = journal, map[string]bool{}
	for _, id := range p.selected {
		complete, known := p.expirable[id]
		if !complete {
			if known {
				p.o.Log(fmt.Sprintf("point %s is not expired: its replication is pending", id.String()[:12]))
			}
			continue // not this server's vault point: never expired here
		}
		name := PointName(id)
		p.expire[name] = true
		p.journal[name] = true
		for _, r := range p.headers[name].Packs {
			p.journal[PackName(r.Pack)] = true
			p.journal[IndexName(r.Index)] = true
		}
	}
	if p.o.DryRun {
		return nil
	}
	// Listing and reading every point may have taken long: the
	// decisions stand only if the lock is still ours.
	if err := p.holdLock(true); err != nil {
		return err
	}
	if err := pruneJournalAdd(p.s, p.journal); err != nil {
		return err
	}
	crashPoint(crashPruneJournal)
	return nil
}

// remove deletes name from the vault (every copy), or in a dry run says
// whether it would. An object under object lock is reported as waiting
// and left: removed is false.
func (p *pruner) remove(ctx context.Context, name string) (removed bool, err error) {
	if p.o.DryRun {
		if until, locked := p.listing.lockedUntil(name, p.o.ImmutableDays, p.now); locked {
			p.res.Waiting = append(p.res.Waiting, WaitingObject{Name: name, Until: until})
			return false, nil
		}
		return true, nil
	}
	if err := p.holdLock(false); err != nil {
		return false, err
	}
	// The replicated backend removes the primary first and leaves the
	// secondary alone when the primary refuses, so the copies stay alike;
	// a copy that already lacks the object is fine (a killed prune
	// resumes).
	err = p.v.Backend.Remove(ctx, name)
	switch {
	case errors.Is(err, storage.ErrLocked):
		until, _ := p.listing.lockedUntil(name, p.o.ImmutableDays, p.now)
		p.res.Waiting = append(p.res.Waiting, WaitingObject{Name: name, Until: until})
		return false, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return false, fmt.Errorf("prune: %w", err)
	}
	return true, nil
}

// removePoints removes the expired point objects first: a point must
// never outlive the objects it needs.
func (p *pruner) removePoints(ctx context.Context) error {
	p.gone = map[string]bool{}
	for _, name := range p.listing.names(PointsPrefix) {
		if !p.expire[name] {
			continue
		}
		ok, err := p.remove(ctx, name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		p.gone[name] = true
		id, _ := idFromName(name)
		p.res.Expired = append(p.res.Expired, id)
		p.res.ObjectsRemoved++
		p.res.BytesRemoved += p.listing.size(name)
		if !p.o.DryRun {
			if e, ok, err := catalogGet(p.s, id); err == nil && ok {
				e.State = StateExpired
				if err := catalogPut(p.s, e); err != nil {
					return err
				}
			}
			crashPoint(crashPrunePointRemoved)
		}
	}
	return nil
}

// collect removes the pack and index objects no remaining point needs:
// those the journal names, and orphans older than the grace period. Then
// the journal is cleared.
func (p *pruner) collect(ctx context.Context) error {
	cands := p.candidates()
	for _, name := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.orphan[name] {
			// Another server's store may still name an object of its key
			// that no point in the vault names (it deduplicated against
			// it): only that server's prune may remove it.
			own, err := p.sealedToUs(ctx, name)
			if err != nil {
				return err
			}
			if !own {
				continue
			}
			p.res.Orphans++
		}
		if err := p.forget(ctx, name); err != nil {
			return err
		}
		ok, err := p.remove(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			p.res.ObjectsRemoved++
			p.res.BytesRemoved += p.listing.size(name)
			if !p.o.DryRun {
				crashPoint(crashPruneObjectRemoved)
			}
		}
	}
	if !p.o.DryRun && !p.res.PacksKept {
		return pruneJournalClear(p.s)
	}
	return nil
}

// candidates returns the pack and index objects to remove, index objects
// before their packs (an index must never name a missing pack). It counts
// the orphans among them and sets PacksKept when a damaged vault point
// forbids removing any.
// sealedToUs reports whether a pack or index object is this store's to
// remove: sealed to its key (the recipient fingerprint of its key block),
// or no tapeless object at all (too short, or without the prefix), which
// no point of any server can need.
func (p *pruner) sealedToUs(ctx context.Context, name string) (bool, error) {
	off := int64(prefixLen) // a pack: its key block follows the prefix
	if strings.HasPrefix(name, IndexPrefix) {
		off = int64(indexOffBlock)
	}
	var head []byte
	err := p.v.Backend.Load(ctx, name, 0, off+fingerprintLen, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		head = b
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil // gone meanwhile: nothing to remove
	}
	if errors.Is(err, storage.ErrInvalidRange) {
		return true, nil // shorter than any object's key block
	}
	if err != nil {
		return false, fmt.Errorf("prune: read the key of %s: %w", name, err)
	}
	if int64(len(head)) < off+fingerprintLen || string(head[:len(objectMagic)]) != objectMagic {
		return true, nil
	}
	want := fingerprintBytes(p.s.pub.Public)
	return bytes.Equal(head[off:], want[:]), nil
}

// forget drops a pack the vault is about to lose from the store's dedup
// index first, so no backup references it once it is gone; a crash after
// forgetting and before removing leaves an orphan the next prune removes.
func (p *pruner) forget(ctx context.Context, name string) error {
	if p.o.DryRun || !strings.HasPrefix(name, PacksPrefix) {
		return nil
	}
	id, err := idFromName(name)
	if err != nil {
		return nil // not a pack of ours by name: nothing indexed
	}
	return p.s.ForgetVaultPack(ctx, id)
}

func (p *pruner) candidates() []string {
	// What the remaining points (of every server) and the store's own
	// points need.
	needed := maps.Clone(p.localNeeds)
	p.orphan = map[string]bool{}
	for name, h := range p.headers {
		if p.gone[name] {
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
	collectOrphans := len(p.headers) > 0 || len(p.listing.names(PacksPrefix)) == 0
	if !collectOrphans {
		p.o.Log("the vault lists packs but no point: leaving unreferenced objects alone (an empty points listing is never a reason to delete)")
	}
	// A damaged point may need any pack: while one is in the vault no
	// pack or index object is removed. The journal keeps what the points
	// expired now leave behind for a prune after it is dealt with.
	if p.vaultDamaged > 0 {
		p.res.PacksKept = true
		p.o.Log(fmt.Sprintf("%d point objects in the vault are damaged and may need any pack: removing no pack or index object until it is repaired or removed", p.vaultDamaged))
		return nil
	}
	if p.localDamaged > 0 {
		p.res.PacksKept = true
		p.o.Log(fmt.Sprintf("%d point objects in the store are damaged and may name any pack of the vault: removing no pack or index object until they are repaired or removed", p.localDamaged))
		return nil
	}
	var cands []string
	for _, prefix := range []string{IndexPrefix, PacksPrefix} {
		for _, name := range p.listing.names(prefix) {
			if needed[name] {
				continue
			}
			if p.journal[name] {
				cands = append(cands, name)
				continue
			}
			if age := p.now.Sub(p.listing.newest(name)); collectOrphans && age >= p.o.OrphanGrace {
				cands = append(cands, name)
				p.orphan[name] = true
			}
		}
	}
	return cands
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
