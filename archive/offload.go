package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// VaultTarget is the vault as offload and prune see it: its copies, each
// rooted at the vault's folder (vaults/NAME/), with the object layout of a
// store (packs/, index/, points/).
type VaultTarget struct {
	Name      string
	Primary   storage.Backend
	Secondary storage.Backend // the GRS copy; nil for LRS
	// Raw are the copies without throttling or other wrappers that hide
	// the S3 backend, for the server clock and incomplete uploads; nil
	// means Copies().
	Raw []storage.Backend
}

func (v VaultTarget) raw() []storage.Backend {
	if v.Raw != nil {
		return v.Raw
	}
	return v.Copies()
}

// Copies returns the copies the replication setting demands, primary first.
func (v VaultTarget) Copies() []storage.Backend {
	if v.Secondary == nil {
		return []storage.Backend{v.Primary}
	}
	return []storage.Backend{v.Primary, v.Secondary}
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
	var out []object
	for _, r := range h.Packs {
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
	var out []string
	for _, r := range h.Packs {
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
	// Throttle limits the bandwidth of the whole offload: one limit for
	// every upload to every copy together (the uploads are paced where
	// they leave the store). Nil means unlimited.
	Throttle *storage.ThrottleSchedule
	// ThrottleClock is the throttle's clock; nil means the system clock.
	ThrottleClock storage.Clock
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
	res := &OffloadResult{}
	if o.MaxClockSkew > 0 {
		for i, b := range v.raw() {
			err := storage.CheckClockSkew(ctx, b, o.Now(), o.MaxClockSkew)
			var skew *storage.ClockSkewError
			if err != nil && i > 0 && !errors.As(err, &skew) {
				// An unreachable secondary is no reason to stop: the
				// primary proceeds and replication stays pending.
				o.Log(fmt.Sprintf("could not read the clock of the secondary copy: %v", err))
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("offload: %w", err)
			}
		}
	}
	// This store's objects are named by the hash of ciphertext only it
	// has, and no other process writes it while we hold its lock: an
	// incomplete upload under one of their names is a leftover of this
	// store's own killed run, aborted whatever its age. Other uploads may
	// be another server's live offload into the vault and must be old.
	// The S3 backend names uploads below its own prefix, which may hold
	// the vault's folder (vaults/NAME/): match by the last path element,
	// the 64-digit hash that only this store's objects have.
	own := map[string]bool{}
	for _, h := range plan.local {
		own[path.Base(PointName(h.ID))] = true
		for _, r := range h.Packs {
			own[path.Base(PackName(r.Pack))], own[path.Base(IndexName(r.Index))] = true, true
		}
	}
	cutoff := o.Now().Add(-o.AbortUploadsOlderThan)
	abandoned := func(name string, started time.Time) bool { return own[path.Base(name)] || started.Before(cutoff) }
	for i, b := range v.raw() {
		if a, ok := storage.Innermost(b).(uploadAborter); ok {
			n, err := a.AbortUploads(ctx, abandoned)
			if err != nil {
				if i > 0 {
					o.Log(fmt.Sprintf("could not abort incomplete uploads at %s: %v", b.Location(), err))
					continue
				}
				return nil, fmt.Errorf("offload: abort incomplete uploads at %s: %w", b.Location(), err)
			}
			if n > 0 {
				o.Log(fmt.Sprintf("aborted %d incomplete uploads left at %s by an earlier run", n, b.Location()))
			}
			res.UploadsAborted += n
		}
	}

	off := &offloader{s: s, v: v, o: o, res: res, upload: s.objects}
	if o.Throttle != nil {
		off.upload = storage.Throttled(s.objects, *o.Throttle, o.ThrottleClock)
	}
	offloads := plan.Offloads()
	inPlan := map[ID]bool{}
	for _, h := range offloads {
		inPlan[h.ID] = true
	}
	// Pending points the plan keeps local: catch up their replication.
	var catchUp []PointHeader
	for id, e := range plan.catalog {
		if e.State == StatePending && !inPlan[id] {
			if h, ok := plan.local[id]; ok {
				catchUp = append(catchUp, h)
			}
		}
	}
	sortPoints(catchUp)
	all := append(catchUp, offloads...)
	for _, h := range all {
		objs, err := pointObjects(ctx, s, h)
		if err != nil {
			return nil, err
		}
		for _, ob := range objs {
			off.total += ob.size
		}
	}
	off.points = len(all)
	stop := off.startProgress(start)
	defer stop()

	for _, h := range all {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// A point the store cannot produce in full is not offloaded and
		// never deleted; the others go on (its packs stay: it is local).
		missing, err := missingLocal(ctx, s, h)
		if err != nil {
			return res, err
		}
		if len(missing) > 0 {
			res.Incomplete = append(res.Incomplete, IncompletePoint{Point: h.ID, Missing: missing})
			o.Log(fmt.Sprintf("point %s is damaged, not offloaded and kept in the store: it needs %s, which the store lacks (see 'tapeless verify')",
				h.ID.String()[:12], strings.Join(missing, ", ")))
			if objs, err := pointObjects(ctx, s, h); err == nil {
				for _, ob := range objs {
					off.done.Add(ob.size) // counted in total: skipped is done
				}
			}
			off.pointsDone.Add(1)
			continue
		}
		deleteLocal := inPlan[h.ID]
		if err := off.point(ctx, h, deleteLocal); err != nil {
			return res, err
		}
		off.pointsDone.Add(1)
	}
	if err := off.collect(ctx, plan); err != nil {
		return res, err
	}
	cat, err := Catalog(ctx, s)
	if err != nil {
		return res, err
	}
	// A run killed between the local delete and its catalogue update
	// left Local set on a point the store no longer holds: fix the record.
	for _, e := range cat {
		if !e.Local || !e.Archived() {
			continue
		}
		if _, err := s.objects.Stat(ctx, PointName(e.Point)); errors.Is(err, storage.ErrNotFound) {
			e.Local = false
			if err := catalogPut(s, e); err != nil {
				return res, err
			}
		}
	}
	res.PendingReplication = PendingReplication(cat)
	if off.secondaryErr != nil {
		res.SecondaryError = off.secondaryErr.Error()
	}
	res.Duration = o.Now().Sub(start)
	return res, nil
}

type offloader struct {
	s   *Store
	v   VaultTarget
	o   OffloadOptions
	res *OffloadResult
	// upload is what uploads read from: the store's objects, throttled
	// when a limit is set.
	upload storage.Backend

	mu           sync.Mutex
	secondaryErr error // first failure of the secondary copy in this run

	total      int64
	points     int
	done       atomic.Int64
	pointsDone atomic.Int64
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

// point offloads one point (or catches up its replication).
func (f *offloader) point(ctx context.Context, h PointHeader, deleteLocal bool) error {
	e, ok, err := catalogGet(f.s, h.ID)
	if err != nil {
		return err
	}
	if !ok || !e.Archived() {
		e = CatalogEntry{Point: h.ID, Source: h.Source, Time: h.Time, Bytes: h.Bytes, State: StateUploading, Local: true}
	}
	e.Vault, e.Local = f.v.Name, true
	objs, err := pointObjects(ctx, f.s, h)
	if err != nil {
		return err
	}
	e.Stored = 0
	for _, ob := range objs {
		e.Stored += ob.size
	}
	if err := catalogPut(f.s, e); err != nil {
		return err
	}
	crashPoint(crashUploading)

	// Packs and index objects in parallel, the point object after all.
	body, last := objs[:len(objs)-1], objs[len(objs)-1]
	pending := map[string]PendingObject{}
	for _, p := range e.Pending {
		pending[p.Name] = p
	}
	var pmu sync.Mutex
	markPending := func(ob object, pend bool) {
		pmu.Lock()
		defer pmu.Unlock()
		if !pend {
			delete(pending, ob.name)
		} else if _, ok := pending[ob.name]; !ok {
			pending[ob.name] = PendingObject{Name: ob.name, Size: ob.size, Since: f.o.Now().UTC()}
		}
	}
	jobs := make(chan object)
	errs := make([]error, f.o.Workers)
	ctx2, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range f.o.Workers {
		wg.Go(func() {
			for ob := range jobs {
				if errs[w] != nil {
					continue
				}
				pend, err := f.place(ctx2, ob)
				if err != nil {
					errs[w] = err
					cancel()
					continue
				}
				markPending(ob, pend)
			}
		})
	}
	for _, ob := range body {
		if ctx2.Err() != nil {
			break
		}
		jobs <- ob
	}
	close(jobs)
	wg.Wait()
	cancel()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("offload point %s: %w", h.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The point object: on the primary once everything it needs is there;
	// on the secondary only once the secondary has everything too, so no
	// copy ever shows a point it cannot restore.
	var pend bool
	delete(pending, last.name)
	if len(pending) == 0 {
		pend, err = f.place(ctx, last)
	} else {
		pend, err = true, f.placeOn(ctx, f.v.Primary, last)
		crashPoint(crashPointPrimary)
	}
	if err != nil {
		return fmt.Errorf("offload point %s: %w", h.ID, err)
	}
	markPending(last, pend)

	if len(pending) > 0 {
		e.State = StatePending
		e.Pending = e.Pending[:0]
		for _, p := range pending {
			e.Pending = append(e.Pending, p)
		}
		sort.Slice(e.Pending, func(i, j int) bool { return e.Pending[i].Name < e.Pending[j].Name })
		if err := catalogPut(f.s, e); err != nil {
			return err
		}
		f.res.Pending = append(f.res.Pending, h.ID)
		f.o.Log(fmt.Sprintf("point %s archived, replication pending (%d objects); the local copy is kept", h.ID.String()[:12], len(e.Pending)))
		return nil
	}
	wasPending := e.State == StatePending
	e.State, e.Pending = StateArchived, nil
	if err := catalogPut(f.s, e); err != nil {
		return err
	}
	crashPoint(crashArchived)
	if wasPending && !deleteLocal {
		f.res.CaughtUp = append(f.res.CaughtUp, h.ID)
		return nil
	}
	if wasPending {
		f.res.CaughtUp = append(f.res.CaughtUp, h.ID)
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

// place puts ob on every copy; pending is true when the secondary copy
// could not be written (the primary is always required).
func (f *offloader) place(ctx context.Context, ob object) (pending bool, err error) {
	if err := f.placeOn(ctx, f.v.Primary, ob); err != nil {
		return false, err
	}
	if f.v.Secondary == nil {
		f.done.Add(ob.size)
		crashPoint(crashCopyBoth)
		return false, nil
	}
	crashPoint(crashCopyPrimary)
	if f.secondaryDown() {
		f.done.Add(ob.size)
		return true, nil
	}
	if err := f.placeOn(ctx, f.v.Secondary, ob); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrCorrupt) {
			// Not an outage: the copy holds a different object. An
			// operator must look; never archive over it.
			return false, err
		}
		f.secondaryFailed(err)
		f.done.Add(ob.size)
		return true, nil
	}
	f.done.Add(ob.size)
	crashPoint(crashCopyBoth)
	return false, nil
}

// placeOn makes sure b holds ob, confirmed by size and checksum read back
// from b: an object already there is confirmed and skipped, a missing one
// is uploaded from the store and confirmed.
func (f *offloader) placeOn(ctx context.Context, b storage.Backend, ob object) error {
	id, err := idFromName(ob.name)
	if err != nil {
		return fmt.Errorf("%s: %w", ob.name, err)
	}
	// Read the local object once: its SHA-256 must match its name (never
	// upload a damaged local object) and its checksum is what each copy
	// must confirm.
	var crc string
	err = f.s.objects.Load(ctx, ob.name, 0, -1, func(r io.Reader) error {
		h := sha256.New()
		c := storage.NewChecksum()
		n, err := io.Copy(io.MultiWriter(h, c), r)
		if err != nil {
			return err
		}
		if n != ob.size {
			return fmt.Errorf("local object is %d bytes, the point recorded %d", n, ob.size)
		}
		if ID(h.Sum(nil)) != id {
			return fmt.Errorf("%w: local object does not match its name", ErrAuthentication)
		}
		crc = storage.FormatChecksum(c.Sum(nil))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read local %s: %w", ob.name, err)
	}
	err = storage.Confirm(ctx, b, ob.name, ob.size, crc)
	if err == nil {
		f.mu.Lock()
		f.res.ObjectsPresent++
		f.mu.Unlock()
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	var saved storage.Saved
	err = f.upload.Load(ctx, ob.name, 0, -1, func(r io.Reader) error {
		var err error
		saved, err = storage.SaveConfirmed(ctx, b, ob.name, &crashReader{r: r}, ob.size)
		return err
	})
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", ob.name, b.Location(), err)
	}
	if saved.Checksum != crc {
		return fmt.Errorf("upload %s to %s: %w: checksum %s, the local object has %s", ob.name, b.Location(), storage.ErrCorrupt, saved.Checksum, crc)
	}
	if f.o.ReadBack {
		if err := storage.ConfirmSHA256(ctx, b, ob.name, ob.size, id); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if !saved.Existed {
		f.res.ObjectsUploaded++
		f.res.BytesUploaded += ob.size
	} else {
		f.res.ObjectsPresent++
	}
	f.mu.Unlock()
	return nil
}

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

// crashReader passes a crash point on every read of an upload's source, so
// a test can kill the process in the middle of a transfer.
type crashReader struct{ r io.Reader }

func (c *crashReader) Read(p []byte) (int, error) {
	crashPoint(crashUploadRead)
	return c.r.Read(p)
}
