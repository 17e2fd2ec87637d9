package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// VaultTarget is the vault as offload and prune see it, rooted at the
// vault's folder (vaults/NAME/), with the object layout of a store (packs/,
// index/, points/).
type VaultTarget struct {
	Name string
	// Backend is the vault: a *storage.ReplicatedBackend for GRS (the
	// one place that writes, confirms, lists and removes both copies), the
	// one copy for LRS; throttled as configured.
	Backend storage.Backend
}

// Replicated returns the GRS backend, or false for LRS.
func (v VaultTarget) Replicated() (*storage.ReplicatedBackend, bool) {
	r, ok := v.Backend.(*storage.ReplicatedBackend)
	return r, ok
}

// Primary returns the primary copy.
func (v VaultTarget) Primary() storage.Backend {
	if r, ok := v.Replicated(); ok {
		return r.Primary()
	}
	return v.Backend
}

// Secondary returns the GRS copy, or nil for LRS.
func (v VaultTarget) Secondary() storage.Backend {
	if r, ok := v.Replicated(); ok {
		return r.Secondary()
	}
	return nil
}

// upkeep calls fn for each server of the vault, primary first (see
// (*storage.ReplicatedBackend).Upkeep).
func (v VaultTarget) upkeep(fn func(b storage.Backend, secondary bool) error) error {
	if r, ok := v.Replicated(); ok {
		return r.Upkeep(fn)
	}
	return fn(v.Backend, false)
}

// uploadAborter is implemented by backends that can leave incomplete
// multipart uploads behind (*storage.S3).
type uploadAborter interface {
	AbortUploads(ctx context.Context, abort func(name string, started time.Time) bool) (int, error)
}

// PointStatus is one recovery point as a retention policy sees it. It is
// plain data: the policy (package retention) is applied by the caller, so
// the archive never depends on it.
type PointStatus struct {
	ID     ID
	Source string
	Time   time.Time
	// Local is true while the store holds the point.
	Local bool
	// Archived is true when the vault holds the point, confirmed at least
	// on the primary copy.
	Archived bool
	// Pending is true for an archived point whose secondary (GRS) copy is
	// not complete yet; such a point must never be expired.
	Pending bool
	// Stored is the stored size of a local point: its packs, index
	// objects and point object. PlanOffload fills it; it is 0 for a point
	// only in the vault and in what Prune shows.
	Stored int64
}

// SelectFunc chooses, from the points it is shown, the IDs of those to act
// on: the points to offload (PlanOffload) or to expire (Prune). The caller
// applies its retention policy here.
type SelectFunc func(points []PointStatus) ([]ID, error)

// OffloadPlan is what an offload will do: the points the caller selected
// from the store's points and the vault points the local catalogue knows,
// with the sizes an offload would move.
type OffloadPlan struct {
	// Points are every point the selection was made from, oldest first.
	Points []PointStatus
	// Offload are the selected points the store holds, oldest first.
	Offload []ID
	// Upload is the most an offload of the plan sends: the objects of the
	// points it offloads, each counted once; objects the vault already
	// holds are skipped and not sent.
	Upload  int64
	Objects int
	// Damaged are the store's point objects that could not be read: left
	// out of the plan, never offloaded or deleted, and while one is there
	// no local pack is collected (it may need any of them).
	Damaged []DamagedPoint

	local   map[ID]PointHeader
	catalog map[ID]CatalogEntry
}

// PlanOffload shows sel the store's points and the archived vault points
// the local catalogue knows, and plans the offload of the local points it
// selects (selected IDs the store does not hold are left out). It reads
// only local state: a dry run works with the vault unreachable. Damaged
// local points are skipped and listed in the plan.
func PlanOffload(ctx context.Context, s *Store, sel SelectFunc) (*OffloadPlan, error) {
	local, err := s.ListPoints(ctx)
	if err != nil && !OnlyDamage(err) {
		return nil, fmt.Errorf("plan offload: %w", err)
	}
	damaged := DamagedPoints(err)
	cat, err := Catalog(ctx, s)
	if err != nil {
		return nil, err
	}
	p := &OffloadPlan{Damaged: damaged, local: map[ID]PointHeader{}, catalog: map[ID]CatalogEntry{}}
	for _, e := range cat {
		p.catalog[e.Point] = e
	}
	for _, h := range local {
		p.local[h.ID] = h
		size, err := pointStored(ctx, s, h)
		if err != nil {
			return nil, err
		}
		ps := PointStatus{ID: h.ID, Source: h.Source, Time: h.Time, Local: true, Stored: size}
		if e, ok := p.catalog[h.ID]; ok && e.Archived() {
			ps.Archived, ps.Pending = true, e.State == StatePending
		}
		p.Points = append(p.Points, ps)
	}
	for _, e := range cat {
		if _, ok := p.local[e.Point]; ok || !e.Archived() {
			continue
		}
		p.Points = append(p.Points, PointStatus{ID: e.Point, Source: e.Source, Time: e.Time, Archived: true, Pending: e.State == StatePending})
	}
	sortStatus(p.Points)
	ids, err := sel(p.Points)
	if err != nil {
		return nil, fmt.Errorf("plan offload: %w", err)
	}
	chosen := map[ID]bool{}
	for _, id := range ids {
		chosen[id] = true
	}
	seen := map[string]bool{}
	var offloads []PointHeader
	for id := range chosen {
		if h, ok := p.local[id]; ok {
			offloads = append(offloads, h)
		}
	}
	sortPoints(offloads)
	for _, h := range offloads {
		p.Offload = append(p.Offload, h.ID)
		objs, err := pointObjects(ctx, s, h)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !seen[o.name] {
				seen[o.name] = true
				p.Upload += o.size
				p.Objects++
			}
		}
	}
	return p, nil
}

// sortStatus sorts points oldest first, then by ID.
func sortStatus(ps []PointStatus) {
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].Time.Equal(ps[j].Time) {
			return ps[i].Time.Before(ps[j].Time)
		}
		return bytes.Compare(ps[i].ID[:], ps[j].ID[:]) < 0
	})
}

// Offloads returns the points the plan offloads, oldest first.
func (p *OffloadPlan) Offloads() []PointHeader {
	var out []PointHeader
	for _, id := range p.Offload {
		if h, ok := p.local[id]; ok {
			out = append(out, h)
		}
	}
	return out
}

// object is one object a point needs in the vault.
type object struct {
	name string
	size int64
}

// pointObjects lists what a point needs in the vault, in upload order:
// each pack before the index object describing it, the point object last
// (a point must never be visible before everything it needs).
func pointObjects(ctx context.Context, s *Store, h PointHeader) ([]object, error) {
	local, _, err := splitPacks(s, h)
	if err != nil {
		return nil, err
	}
	var out []object
	for _, r := range local {
		out = append(out, object{PackName(r.Pack), r.Size}, object{IndexName(r.Index), r.IndexSize})
	}
	info, err := s.objects.Stat(ctx, PointName(h.ID))
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", h.ID, err)
	}
	return append(out, object{PointName(h.ID), info.Size}), nil
}

// missingLocal returns the packs and index objects of h that the store
// lacks or holds with another size than h recorded.
func missingLocal(ctx context.Context, s *Store, h PointHeader) ([]string, error) {
	local, _, err := splitPacks(s, h)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range local {
		for _, ob := range []object{{PackName(r.Pack), r.Size}, {IndexName(r.Index), r.IndexSize}} {
			info, err := s.objects.Stat(ctx, ob.name)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				out = append(out, ob.name)
			case err != nil:
				return nil, fmt.Errorf("point %s: %w", h.ID, err)
			case info.Size != ob.size:
				out = append(out, fmt.Sprintf("%s (%d bytes, the point recorded %d)", ob.name, info.Size, ob.size))
			}
		}
	}
	return out, nil
}

// splitPacks divides a point's packs into those the store holds and those
// only the vault holds (vaulted.go): a backup that deduplicated against
// the vault names the latter, and offload sends them nowhere.
func splitPacks(s *Store, h PointHeader) (local, vaultOnly []PackRef, err error) {
	for _, r := range h.Packs {
		only, err := s.VaultOnly(r.Pack)
		if err != nil {
			return nil, nil, fmt.Errorf("point %s: %w", h.ID, err)
		}
		if only {
			vaultOnly = append(vaultOnly, r)
		} else {
			local = append(local, r)
		}
	}
	return local, vaultOnly, nil
}

func pointStored(ctx context.Context, s *Store, h PointHeader) (int64, error) {
	objs, err := pointObjects(ctx, s, h)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range objs {
		n += o.size
	}
	return n, nil
}

// OffloadOptions tunes Offload.
type OffloadOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Workers is how many objects are uploaded at once (default 4).
	Workers int
	// ReadBack also reads every uploaded object back from each copy and
	// checks its SHA-256 against its name, on top of the size and
	// checksum every copy is always confirmed by.
	ReadBack bool
	// MaxClockSkew overrides storage.MaxClockSkew; < 0 turns the check
	// off (tests only).
	MaxClockSkew time.Duration
	// AbortUploadsOlderThan: incomplete multipart uploads older than this
	// are aborted at the start (default 1h: younger ones may belong to
	// another server's live offload into the same vault). Uploads of this
	// store's own objects are aborted at any age.
	AbortUploadsOlderThan time.Duration
	// Progress is called about four times a second while data moves.
	Progress func(OffloadProgress)
	// Log receives one-line notes (aborted uploads, points done).
	Log func(string)
}

// OffloadProgress reports the transfer.
type OffloadProgress struct {
	Points, PointsDone int
	Bytes, TotalBytes  int64 // of the objects to place (skipped ones count as done)
	Elapsed            time.Duration
}

// OffloadResult is what Offload did.
type OffloadResult struct {
	// Archived points are confirmed on every copy and gone from the store.
	Archived []ID `json:"archived"`
	// Pending points are confirmed on the primary copy only: archived,
	// replication pending; their local copy is kept.
	Pending []ID `json:"pending"`
	// Damaged points need local objects that are missing or do not match
	// the point: they are not offloaded and stay in the store.
	Incomplete []IncompletePoint `json:"incomplete"`
	// CaughtUp points had pending replication and are now confirmed on
	// every copy (their local copy stays when the plan keeps it local).
	CaughtUp []ID `json:"caught_up"`

	ObjectsUploaded int   `json:"objects_uploaded"` // copies written
	BytesUploaded   int64 `json:"uploaded_bytes"`
	ObjectsPresent  int   `json:"objects_present"` // copies already there, confirmed
	PacksCollected  int   `json:"packs_collected"`
	BytesFreed      int64 `json:"freed_bytes"`
	UploadsAborted  int   `json:"uploads_aborted"`
	// LocalDeleteDeferred points are archived on every copy, but their
	// local copy is kept because a restore was reading the store (the
	// next offload deletes it); LocalCleanupDeferred then says so.
	LocalDeleteDeferred  []ID   `json:"local_delete_deferred"`
	LocalCleanupDeferred string `json:"local_cleanup_deferred,omitempty"`
	// PendingReplication sums the whole catalogue after the run.
	PendingReplication PendingSummary `json:"pending_replication"`
	SecondaryError     string         `json:"secondary_error,omitempty"`
	Duration           time.Duration  `json:"duration_ns"`
}

// IncompletePoint is a local point Offload could not move because objects
// it needs are missing from the store (or have another size than the point
// recorded). (A DamagedPoint, by contrast, is a point object that cannot be
// read at all.)
type IncompletePoint struct {
	Point   ID       `json:"id"`
	Missing []string `json:"missing"` // object names
}

// Offload moves the points plan offloads from the store s to vault v, oldest
// first, and finishes earlier runs: for each point it places every pack and
// index object it needs on each copy the vault lacks it on (primary, then
// secondary for GRS), confirming each by size and checksum read back from
// that copy, then the point object last; it records each step in the local
// catalogue, and only when every object is confirmed on every copy deletes
// the point locally. Finally it collects the local packs no remaining local
// point needs.
//
// When the secondary copy fails, the primary proceeds: such points are
// archived with replication pending, their local copy is kept, and a later
// Offload catches up before it deletes them. Points pending from earlier
// runs that the plan keeps local are caught up too.
//
// A point whose packs or index objects are missing from the store (or of
// another size than it recorded) is damaged: it is skipped, named in
// Damaged and kept in the store, and the other points go on.
//
// Offload is safe to kill at any instant; running it again completes the
// work (objects already confirmed are skipped). It refuses to run when a
// copy's clock differs from the local one by more than
// storage.MaxClockSkew.
func Offload(ctx context.Context, s *Store, v VaultTarget, plan *OffloadPlan, o OffloadOptions) (*OffloadResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = storage.MaxClockSkew
	}
	if o.AbortUploadsOlderThan == 0 {
		o.AbortUploadsOlderThan = time.Hour
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	start := o.Now()
	f := &offloader{s: s, v: v, o: o, res: &OffloadResult{}}
	if r, ok := v.Replicated(); ok {
		f.grs = r.With(storage.WithSaveReport(f.saved))
	}
	if err := f.checkClocks(ctx); err != nil {
		return nil, err
	}
	if err := f.abortUploads(ctx, plan); err != nil {
		return nil, err
	}
	work, inPlan, err := f.schedule(ctx, plan)
	if err != nil {
		return nil, err
	}
	stop := f.startProgress(start)
	defer stop()
	for _, h := range work {
		if err := ctx.Err(); err != nil {
			return f.res, err
		}
		if err := f.offloadPoint(ctx, h, inPlan[h.ID]); err != nil {
			return f.res, err
		}
		f.pointsDone.Add(1)
	}
	if err := f.collect(ctx, plan); err != nil {
		return f.res, err
	}
	if err := f.settleCatalog(ctx); err != nil {
		return f.res, err
	}
	if f.secondaryErr != nil {
		f.res.SecondaryError = f.secondaryErr.Error()
	}
	f.res.Duration = o.Now().Sub(start)
	return f.res, nil
}

type offloader struct {
	s   *Store
	v   VaultTarget
	o   OffloadOptions
	res *OffloadResult
	// grs is the vault's replicated backend reporting to this run, nil
	// for LRS.
	grs *storage.ReplicatedBackend

	mu           sync.Mutex
	secondaryErr error // first failure of the secondary copy in this run

	total      int64
	points     int
	done       atomic.Int64
	pointsDone atomic.Int64
}

// checkClocks refuses to run when a copy's clock is too far from ours. An
// unreachable secondary is no reason to stop: the primary proceeds and
// replication stays pending.
func (f *offloader) checkClocks(ctx context.Context) error {
	if f.o.MaxClockSkew <= 0 {
		return nil
	}
	err := f.v.upkeep(func(b storage.Backend, secondary bool) error {
		err := storage.CheckClockSkew(ctx, b, f.o.Now(), f.o.MaxClockSkew)
		var skew *storage.ClockSkewError
		if err != nil && secondary && !errors.As(err, &skew) {
			f.o.Log(fmt.Sprintf("could not read the clock of the secondary copy: %v", err))
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("offload: %w", err)
	}
	return nil
}

// abortUploads aborts the incomplete multipart uploads earlier runs left.
// This store's objects are named by the hash of ciphertext only it has,
// and no other process writes it while we hold its lock: an incomplete
// upload under one of their names is a leftover of this store's own killed
// run, aborted whatever its age. Other uploads may be another server's
// live offload into the vault and must be old. The S3 backend names
// uploads below its own prefix, which may hold the vault's folder
// (vaults/NAME/): match by the last path element, the 64-digit hash that
// only this store's objects have.
func (f *offloader) abortUploads(ctx context.Context, plan *OffloadPlan) error {
	own := map[string]bool{}
	for _, h := range plan.local {
		own[path.Base(PointName(h.ID))] = true
		for _, r := range h.Packs {
			own[path.Base(PackName(r.Pack))], own[path.Base(IndexName(r.Index))] = true, true
		}
	}
	cutoff := f.o.Now().Add(-f.o.AbortUploadsOlderThan)
	abandoned := func(name string, started time.Time) bool { return own[path.Base(name)] || started.Before(cutoff) }
	return f.v.upkeep(func(b storage.Backend, secondary bool) error {
		a, ok := storage.Innermost(b).(uploadAborter)
		if !ok {
			return nil
		}
		n, err := a.AbortUploads(ctx, abandoned)
		if err != nil {
			if secondary {
				f.o.Log(fmt.Sprintf("could not abort incomplete uploads at %s: %v", b.Location(), err))
				return nil
			}
			return fmt.Errorf("offload: abort incomplete uploads at %s: %w", b.Location(), err)
		}
		if n > 0 {
			f.o.Log(fmt.Sprintf("aborted %d incomplete uploads left at %s by an earlier run", n, b.Location()))
		}
		f.res.UploadsAborted += n
		return nil
	})
}

// schedule returns the points to work on, oldest first: the pending points
// the plan keeps local (to catch up their replication), then the plan's
// offloads (inPlan); and it sizes the progress report.
func (f *offloader) schedule(ctx context.Context, plan *OffloadPlan) (work []PointHeader, inPlan map[ID]bool, err error) {
	offloads := plan.Offloads()
	inPlan = map[ID]bool{}
	for _, h := range offloads {
		inPlan[h.ID] = true
	}
	for id, e := range plan.catalog {
		if e.State == StatePending && !inPlan[id] {
			if h, ok := plan.local[id]; ok {
				work = append(work, h)
			}
		}
	}
	sortPoints(work)
	work = append(work, offloads...)
	for _, h := range work {
		objs, err := pointObjects(ctx, f.s, h)
		if err != nil {
			return nil, nil, err
		}
		for _, ob := range objs {
			f.total += ob.size
		}
	}
	f.points = len(work)
	return work, inPlan, nil
}

// offloadPoint offloads one point, or catches up its replication; a point
// the store cannot produce in full is not offloaded and never deleted, and
// the others go on (its packs stay: it is local).
func (f *offloader) offloadPoint(ctx context.Context, h PointHeader, deleteLocal bool) error {
	missing, err := missingLocal(ctx, f.s, h)
	if err != nil {
		return err
	}
	held, err := f.missingInVault(ctx, h)
	if err != nil {
		return err
	}
	if len(missing) == 0 && len(held) == 0 {
		return f.point(ctx, h, deleteLocal)
	}
	f.res.Incomplete = append(f.res.Incomplete, IncompletePoint{Point: h.ID, Missing: append(missing, held...)})
	if len(missing) > 0 {
		f.o.Log(fmt.Sprintf("point %s is damaged, not offloaded and kept in the store: it needs %s, which the store lacks (see 'tapeless verify')",
			h.ID.String()[:12], strings.Join(missing, ", ")))
	} else {
		f.o.Log(fmt.Sprintf("point %s is not offloaded and kept in the store: it shares %s with points in the vault, and the vault lacks them (see 'tapeless verify --vault')",
			h.ID.String()[:12], strings.Join(held, ", ")))
	}
	if objs, err := pointObjects(ctx, f.s, h); err == nil {
		for _, ob := range objs {
			f.done.Add(ob.size) // counted in total: skipped is done
		}
	}
	return nil
}

// settleCatalog fixes the record of a run killed between the local delete
// and its catalogue update (Local set on a point the store no longer
// holds) and sums the pending replication.
func (f *offloader) settleCatalog(ctx context.Context) error {
	cat, err := Catalog(ctx, f.s)
	if err != nil {
		return err
	}
	for _, e := range cat {
		if !e.Local || !e.Archived() {
			continue
		}
		if _, err := f.s.objects.Stat(ctx, PointName(e.Point)); errors.Is(err, storage.ErrNotFound) {
			e.Local = false
			if err := catalogPut(f.s, e); err != nil {
				return err
			}
		}
	}
	f.res.PendingReplication = PendingReplication(cat)
	return nil
}

// missingInVault returns the objects of a point's vault-held packs that a
// copy of the vault lacks: the point object must never reach a copy that
// cannot restore it, so such a point is not offloaded. An unreachable
// secondary is no reason to stop: the point object then goes to the
// primary only, with replication pending.
func (f *offloader) missingInVault(ctx context.Context, h PointHeader) ([]string, error) {
	_, held, err := splitPacks(f.s, h)
	if err != nil || len(held) == 0 {
		return nil, err
	}
	var names []string
	for _, r := range held {
		names = append(names, PackName(r.Pack), IndexName(r.Index))
	}
	var onPrimary, onSecondary []string
	if r, ok := f.v.Replicated(); ok {
		var secErr error
		onPrimary, onSecondary, secErr, err = r.MissingTolerant(ctx, names)
		if secErr != nil {
			f.o.Log(fmt.Sprintf("could not check the secondary copy for the packs point %s shares with the vault: %v", h.ID.String()[:12], secErr))
		}
	} else {
		onPrimary, err = storage.MissingFrom(ctx, f.v.Backend, names)
	}
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", h.ID, err)
	}
	var out []string
	for _, n := range onPrimary {
		out = append(out, n+" (held by the vault, missing from its primary copy)")
	}
	for _, n := range onSecondary {
		out = append(out, n+" (held by the vault, missing from its secondary copy)")
	}
	return out, nil
}

func (f *offloader) startProgress(start time.Time) func() {
	if f.o.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				f.o.Progress(OffloadProgress{Points: f.points, PointsDone: int(f.pointsDone.Load()),
					Bytes: f.done.Load(), TotalBytes: f.total, Elapsed: f.o.Now().Sub(start)})
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// secondaryDown reports whether the secondary already failed in this run;
// later objects then go to the primary only instead of waiting for each
// call to time out.
func (f *offloader) secondaryDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.secondaryErr != nil
}

func (f *offloader) secondaryFailed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secondaryErr == nil {
		f.secondaryErr = err
		f.o.Log(fmt.Sprintf("the secondary copy failed, replication stays pending: %v", err))
	}
}

// pendingSet is the objects of one point not yet on the secondary copy.
type pendingSet struct {
	mu  sync.Mutex
	m   map[string]PendingObject
	now func() time.Time
}

func newPendingSet(e CatalogEntry, now func() time.Time) *pendingSet {
	p := &pendingSet{m: map[string]PendingObject{}, now: now}
	for _, o := range e.Pending {
		p.m[o.Name] = o
	}
	return p
}

// mark records whether ob is pending; an object pending since an earlier
// run keeps its first date.
func (p *pendingSet) mark(ob object, pending bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !pending {
		delete(p.m, ob.name)
	} else if _, ok := p.m[ob.name]; !ok {
		p.m[ob.name] = PendingObject{Name: ob.name, Size: ob.size, Since: p.now().UTC()}
	}
}

// sorted returns the pending objects by name.
func (p *pendingSet) sorted() []PendingObject {
	out := make([]PendingObject, 0, len(p.m))
	for _, o := range p.m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// point offloads one point (or catches up its replication): the packs and
// index objects first, the point object last, and only when every object
// is confirmed on every copy the local delete.
func (f *offloader) point(ctx context.Context, h PointHeader, deleteLocal bool) error {
	e, objs, err := f.begin(ctx, h)
	if err != nil {
		return err
	}
	body, last := objs[:len(objs)-1], objs[len(objs)-1]
	pending := newPendingSet(e, f.o.Now)
	if err := f.placeAll(ctx, body, pending); err != nil {
		return fmt.Errorf("offload point %s: %w", h.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The point object: on the primary once everything it needs is there;
	// on the secondary only once the secondary has everything too, so no
	// copy ever shows a point it cannot restore.
	pending.mark(last, false)
	primaryOnly := len(pending.m) > 0
	pend, err := f.place(ctx, last, primaryOnly)
	if err != nil {
		return fmt.Errorf("offload point %s: %w", h.ID, err)
	}
	if primaryOnly {
		crashPoint(crashPointPrimary)
	}
	pending.mark(last, pend)
	if len(pending.m) > 0 {
		return f.keepPending(h, e, pending.sorted())
	}
	return f.archived(ctx, h, e, deleteLocal)
}

// begin records the point as uploading (unless it is archived already)
// and returns its entry and objects in upload order.
func (f *offloader) begin(ctx context.Context, h PointHeader) (CatalogEntry, []object, error) {
	e, ok, err := catalogGet(f.s, h.ID)
	if err != nil {
		return e, nil, err
	}
	if !ok || !e.Archived() {
		e = CatalogEntry{Point: h.ID, Source: h.Source, Time: h.Time, Bytes: h.Bytes, State: StateUploading, Local: true}
	}
	e.Vault, e.Local = f.v.Name, true
	objs, err := pointObjects(ctx, f.s, h)
	if err != nil {
		return e, nil, err
	}
	e.Stored = 0
	for _, ob := range objs {
		e.Stored += ob.size
	}
	if err := catalogPut(f.s, e); err != nil {
		return e, nil, err
	}
	crashPoint(crashUploading)
	return e, objs, nil
}

// placeAll places objs with o.Workers uploads at once and marks each
// pending or not; the first error stops the rest.
func (f *offloader) placeAll(ctx context.Context, objs []object, pending *pendingSet) error {
	jobs := make(chan object)
	errs := make([]error, f.o.Workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range f.o.Workers {
		wg.Go(func() {
			for ob := range jobs {
				if errs[w] != nil {
					continue
				}
				pend, err := f.place(ctx, ob, false)
				if err != nil {
					errs[w] = err
					cancel()
					continue
				}
				pending.mark(ob, pend)
			}
		})
	}
	for _, ob := range objs {
		if ctx.Err() != nil {
			break
		}
		jobs <- ob
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// keepPending records a point archived with its replication pending; its
// local copy is kept.
func (f *offloader) keepPending(h PointHeader, e CatalogEntry, pending []PendingObject) error {
	e.State, e.Pending = StatePending, pending
	if err := catalogPut(f.s, e); err != nil {
		return err
	}
	f.res.Pending = append(f.res.Pending, h.ID)
	f.o.Log(fmt.Sprintf("point %s archived, replication pending (%d objects); the local copy is kept", h.ID.String()[:12], len(e.Pending)))
	return nil
}

// archived records a point confirmed on every copy and, when the plan
// offloads it, deletes it locally.
func (f *offloader) archived(ctx context.Context, h PointHeader, e CatalogEntry, deleteLocal bool) error {
	wasPending := e.State == StatePending
	e.State, e.Pending = StateArchived, nil
	// Every pack of the point is on every copy now: once no local point
	// needs one, it is retired to the vault, and backups still dedup
	// against it.
	for _, r := range h.Packs {
		if err := f.s.MarkInVault(r.Pack); err != nil {
			return err
		}
	}
	if err := catalogPut(f.s, e); err != nil {
		return err
	}
	crashPoint(crashArchived)
	if wasPending {
		f.res.CaughtUp = append(f.res.CaughtUp, h.ID)
	}
	if !deleteLocal {
		return nil
	}
	// Every object is confirmed on every copy: only now may the local
	// copy go (safety invariant 1), and not while a restore reads it.
	release, ok, err := f.s.tryLockCleanup()
	if err != nil {
		return err
	}
	if !ok {
		f.cleanupDeferred()
		f.res.LocalDeleteDeferred = append(f.res.LocalDeleteDeferred, h.ID)
		return nil
	}
	defer release()
	if err := f.s.RemovePoint(ctx, h.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	crashPoint(crashLocalPointRemoved)
	e.Local = false
	if err := catalogPut(f.s, e); err != nil {
		return err
	}
	f.res.Archived = append(f.res.Archived, h.ID)
	f.o.Log(fmt.Sprintf("point %s archived and removed from the store", h.ID.String()[:12]))
	return nil
}

// place puts ob in the vault from the store, each copy confirmed by size
// and checksum read back from it: for GRS through the replicated backend,
// on the primary only when primaryOnly or the secondary already failed in
// this run (pending is then true, as when the secondary fails now); for LRS
// on the one copy. The primary is always required.
func (f *offloader) place(ctx context.Context, ob object, primaryOnly bool) (pending bool, err error) {
	src, crc, err := f.openLocal(ctx, ob)
	if err != nil {
		return false, err
	}
	defer src.Close()
	switch {
	case f.grs == nil:
		err = f.placeSingle(ctx, ob, src, crc)
	case primaryOnly || f.secondaryDown():
		pending, err = true, f.grs.SavePrimary(ctx, ob.name, src, ob.size)
	default:
		err = f.grs.Save(ctx, ob.name, src, ob.size)
		if errors.Is(err, storage.ErrReplicationPending) && ctx.Err() == nil && !errors.Is(err, storage.ErrCorrupt) {
			// An outage of the secondary, not a different object there
			// (that needs an operator; never archive over it).
			f.secondaryFailed(err)
			pending, err = true, nil
		}
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, cerr
		}
		return false, fmt.Errorf("upload %s to %s: %w", ob.name, f.v.Backend.Location(), err)
	}
	if err := f.readBack(ctx, ob, pending); err != nil {
		return false, err
	}
	f.done.Add(ob.size)
	if !pending {
		crashPoint(crashCopyBoth)
	}
	return pending, nil
}

// placeSingle makes sure the LRS copy holds ob: an object already there is
// confirmed and skipped, a missing one is uploaded and confirmed.
func (f *offloader) placeSingle(ctx context.Context, ob object, src io.Reader, crc string) error {
	b := f.v.Backend
	err := storage.Confirm(ctx, b, ob.name, ob.size, crc)
	if err == nil {
		f.saved(storage.SaveReport{Name: ob.name, Size: ob.size})
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	saved, err := storage.SaveConfirmed(ctx, b, ob.name, src, ob.size)
	if err != nil {
		return err
	}
	if saved.Checksum != crc {
		return fmt.Errorf("%w: checksum %s, the local object has %s", storage.ErrCorrupt, saved.Checksum, crc)
	}
	f.saved(storage.SaveReport{Name: ob.name, Size: ob.size, Written: !saved.Existed})
	return nil
}

// saved counts what a Save did on one copy and marks the step between the
// copies for crash tests.
func (f *offloader) saved(r storage.SaveReport) {
	f.mu.Lock()
	if r.Written {
		f.res.ObjectsUploaded++
		f.res.BytesUploaded += r.Size
	} else {
		f.res.ObjectsPresent++
	}
	f.mu.Unlock()
	if f.grs != nil && !r.Secondary {
		crashPoint(crashCopyPrimary)
	}
}

// readBack, with o.ReadBack, reads ob back from each copy that holds it
// now and checks its SHA-256 against its name.
func (f *offloader) readBack(ctx context.Context, ob object, pending bool) error {
	if !f.o.ReadBack {
		return nil
	}
	id, err := idFromName(ob.name)
	if err != nil {
		return fmt.Errorf("%s: %w", ob.name, err)
	}
	switch {
	case f.grs == nil:
		return storage.ConfirmSHA256(ctx, f.v.Backend, ob.name, ob.size, id)
	case pending:
		return storage.ConfirmSHA256(ctx, f.grs.Primary(), ob.name, ob.size, id)
	default:
		return f.grs.ConfirmSHA256(ctx, ob.name, ob.size, id)
	}
}

// openLocal opens the store's copy of ob for an upload, after reading it
// once: its SHA-256 must match its name (a damaged local object is never
// uploaded) and its checksum is what each copy must confirm. The source
// can be rewound, so the secondary copy is written from it too.
func (f *offloader) openLocal(ctx context.Context, ob object) (*localObject, string, error) {
	id, err := idFromName(ob.name)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", ob.name, err)
	}
	fh, err := os.Open(filepath.Join(f.s.dir, storeObjectsDir, filepath.FromSlash(ob.name)))
	if errors.Is(err, fs.ErrNotExist) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("read local %s: %w", ob.name, err)
	}
	h := sha256.New()
	c := storage.NewChecksum()
	n, err := io.Copy(io.MultiWriter(h, c), fh)
	switch {
	case err != nil:
	case n != ob.size:
		err = fmt.Errorf("local object is %d bytes, the point recorded %d", n, ob.size)
	case ID(h.Sum(nil)) != id:
		err = fmt.Errorf("%w: local object does not match its name", ErrAuthentication)
	default:
		_, err = fh.Seek(0, io.SeekStart)
	}
	if err != nil {
		fh.Close()
		return nil, "", fmt.Errorf("read local %s: %w", ob.name, err)
	}
	return &localObject{ctx: ctx, f: fh}, storage.FormatChecksum(c.Sum(nil)), nil
}

// localObject is the source of an upload: a store object that can be
// rewound, honouring ctx, and passing a crash point on every read so a
// test can kill the process in the middle of a transfer.
type localObject struct {
	ctx context.Context
	f   *os.File
}

func (l *localObject) Read(p []byte) (int, error) {
	crashPoint(crashUploadRead)
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	return l.f.Read(p)
}

func (l *localObject) Seek(offset int64, whence int) (int64, error) {
	return l.f.Seek(offset, whence)
}

func (l *localObject) Close() error { return l.f.Close() }

// cleanupDeferred records that a restore reading the store made this run
// keep local objects it would have deleted.
func (f *offloader) cleanupDeferred() {
	if f.res.LocalCleanupDeferred == "" {
		f.res.LocalCleanupDeferred = "local cleanup deferred: a restore is reading the store; the next offload removes what this one kept"
		f.o.Log(f.res.LocalCleanupDeferred)
	}
}

// collect removes the local packs no remaining local point needs, unless
// a restore is reading the store.
func (f *offloader) collect(ctx context.Context, plan *OffloadPlan) error {
	release, ok, err := f.s.tryLockCleanup()
	if err != nil {
		return fmt.Errorf("collect local packs: %w", err)
	}
	if !ok {
		f.cleanupDeferred()
		return nil
	}
	defer release()
	// Packs are collected by what the local listing says is left; that
	// listing must hold every point the plan saw that this run did not
	// delete, or it is no basis for deleting anything.
	now, err := f.s.ListPoints(ctx)
	if d := DamagedPoints(err); len(d) > 0 && OnlyDamage(err) {
		f.o.Log(fmt.Sprintf("%d point objects in the store are damaged and may need any pack: not collecting local packs (%s)", len(d), d[0].Name))
		return nil
	}
	if err != nil {
		return fmt.Errorf("collect local packs: %w", err)
	}
	listed := map[ID]bool{}
	for _, h := range now {
		listed[h.ID] = true
	}
	gone := map[ID]bool{}
	for _, id := range f.res.Archived {
		gone[id] = true
	}
	for id := range plan.local {
		if !gone[id] && !listed[id] {
			f.o.Log(fmt.Sprintf("the store's listing lacks point %s, which no offload deleted: not collecting local packs", id.String()[:12]))
			return nil
		}
	}
	unused, err := f.s.UnusedPacks(ctx)
	if err != nil {
		return fmt.Errorf("collect local packs: %w", err)
	}
	for _, r := range unused {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.s.RemovePack(ctx, r.Pack); err != nil {
			return fmt.Errorf("collect local packs: %w", err)
		}
		f.res.PacksCollected++
		f.res.BytesFreed += r.Size + r.IndexSize
		crashPoint(crashGCPack)
	}
	return nil
}
