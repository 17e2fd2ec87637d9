package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sort"
	"sync"
)

// ErrReplicationPending means a GRS write reached the primary copy, where
// it is confirmed, but not the secondary: the object is archived with its
// replication pending. The caller keeps its local copy and catches up
// later with (*ReplicatedBackend).CatchUp.
var ErrReplicationPending = errors.New("storage: replication to the secondary copy is pending")

// Fallback describes a read that the primary copy could not serve and the
// secondary copy was asked instead.
type Fallback struct {
	Op        Op     // OpLoad, OpStat or OpList
	Name      string // the object, or the prefix for OpList
	Primary   string // Location of the primary copy
	Secondary string // Location of the secondary copy
	Err       error  // why the primary failed
	// Served is true when the secondary answered; false when it failed
	// too (the caller gets an error).
	Served bool
}

// String is the one line to show a user.
func (f Fallback) String() string {
	if f.Served {
		return fmt.Sprintf("%s %s: primary copy failed (%v); served from the secondary copy at %s", f.Op, f.Name, f.Err, f.Secondary)
	}
	return fmt.Sprintf("%s %s: primary copy failed (%v); the secondary copy at %s failed too", f.Op, f.Name, f.Err, f.Secondary)
}

// ReplicatedOption configures Replicated.
type ReplicatedOption func(*ReplicatedBackend)

// WithFallbackReport calls fn for every read that falls back to the
// secondary copy, so the caller can say so. The default logs a warning
// through log/slog's default logger.
func WithFallbackReport(fn func(Fallback)) ReplicatedOption {
	return func(r *ReplicatedBackend) { r.report = fn }
}

// WithContentHash tells Replicated the SHA-256 that the stored bytes of an
// object must have, when it is known from the name (tapeless names stored
// objects by that hash). fn returns ok false for names it does not know.
// With it, whole-object Loads check every byte and fall back to the
// secondary when the primary's bytes do not match, and Replicate never
// copies a damaged primary object to the secondary.
func WithContentHash(fn func(name string) (sum [32]byte, ok bool)) ReplicatedOption {
	return func(r *ReplicatedBackend) { r.contentHash = fn }
}

// WithThrottle paces the data of every transfer to and from either copy
// (Save, Load; see Throttled) with one limit for both copies together, so
// a GRS write that sends an object to each copy counts both against the
// schedule. The copies that Primary and Secondary return are the paced
// ones; Unwrap on them reaches the backends given to Replicated. A nil
// clock means SystemClock.
func WithThrottle(sched ThrottleSchedule, clock Clock) ReplicatedOption {
	return func(r *ReplicatedBackend) {
		if clock == nil {
			clock = SystemClock
		}
		t := &throttled{sched: sched, clock: clock}
		r.primary, r.secondary = &sharedThrottle{Backend: r.primary, t: t}, &sharedThrottle{Backend: r.secondary, t: t}
	}
}

// sharedThrottle paces one copy through a limiter its sibling copy shares.
type sharedThrottle struct {
	Backend
	t *throttled // only its limiter is used
	// unpacedLoads leaves Loads alone: see saveTo.
	unpacedLoads bool
}

func (s *sharedThrottle) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	return s.Backend.Save(ctx, name, &throttledReader{ctx: ctx, t: s.t, r: r}, size)
}

func (s *sharedThrottle) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if s.unpacedLoads {
		return s.Backend.Load(ctx, name, offset, length, fn)
	}
	return s.Backend.Load(ctx, name, offset, length, func(r io.Reader) error {
		return fn(&throttledReader{ctx: ctx, t: s.t, r: r})
	})
}

// Unwrap returns the copy being paced.
func (s *sharedThrottle) Unwrap() Backend { return s.Backend }

// SaveReport is what Save or SavePrimary did on one copy, once that copy
// is confirmed to hold the object and before the next step.
type SaveReport struct {
	Name      string
	Size      int64
	Secondary bool // false: the primary copy
	// Written is true when this call wrote the object; false when an
	// identical object was already there (an earlier run wrote it).
	Written bool
}

// WithSaveReport calls fn for every copy a Save or SavePrimary confirms,
// primary first, so a caller can count transfers and mark its progress.
// fn may be called from several goroutines at once (concurrent Saves).
func WithSaveReport(fn func(SaveReport)) ReplicatedOption {
	return func(r *ReplicatedBackend) { r.saved = fn }
}

// ReplicatedBackend is the GRS backend that Replicated returns: every
// object is written to a primary and then to a secondary copy (two
// endpoints or buckets), each write confirmed by size and checksum read
// back from that copy before the next step. LRS is the primary backend
// alone.
//
// Writes: Save returns nil only when both copies are confirmed; when the
// primary is confirmed but the secondary fails, an error wrapping
// ErrReplicationPending. Save is safe to repeat: an identical object
// already present on a copy counts as written (a run killed between the
// copies completes on the next Save or CatchUp); a different object under
// the name is an error wrapping ErrConflict and ErrExists, and nothing is
// ever overwritten. This is the one place it departs from the
// Backend contract, which returns ErrExists for any taken name: a caller
// cannot know which copies a killed run reached.
//
// Reads: Load and Stat go to the primary and fall back to the secondary
// when the primary fails — down, missing object, read error, or bytes that
// do not match (WithContentHash, or a Load callback error wrapping
// ErrCorrupt) — and report every fallback (WithFallbackReport). Because
// Stat falls back on a missing object too, it must not decide what to
// upload: use Missing for that, or simply Save.
//
// List lists the primary; only when the primary is unavailable before it
// produced anything does it list the secondary (and report it). Deletion
// decisions must not rest on a fallback listing: use ListBoth.
//
// Remove deletes both copies.
type ReplicatedBackend struct {
	primary, secondary Backend
	report             func(Fallback)
	contentHash        func(string) ([32]byte, bool)
	saved              func(SaveReport)
}

var _ Backend = (*ReplicatedBackend)(nil)

// Replicated returns the GRS backend over primary and secondary. It
// takes ownership of both: Close closes them.
func Replicated(primary, secondary Backend, opts ...ReplicatedOption) *ReplicatedBackend {
	r := &ReplicatedBackend{primary: primary, secondary: secondary}
	for _, o := range opts {
		o(r)
	}
	if r.report == nil {
		r.report = func(f Fallback) {
			slog.Warn("vault read fell back to the secondary copy", "op", string(f.Op), "name", f.Name,
				"primary", f.Primary, "secondary", f.Secondary, "served", f.Served, "err", f.Err)
		}
	}
	return r
}

// With returns a view of r with opts applied on top of r's own: same
// copies, for one caller's reports (WithSaveReport, WithFallbackReport).
// Closing either closes the copies.
func (r *ReplicatedBackend) With(opts ...ReplicatedOption) *ReplicatedBackend {
	c := *r
	for _, o := range opts {
		o(&c)
	}
	return &c
}

// Primary returns the primary copy's backend.
func (r *ReplicatedBackend) Primary() Backend { return r.primary }

// Secondary returns the secondary copy's backend.
func (r *ReplicatedBackend) Secondary() Backend { return r.secondary }

// Copies returns the primary and the secondary backend, for helpers that
// must reach every copy (CheckClockSkew, AbortIncompleteUploads).
func (r *ReplicatedBackend) Copies() []Backend { return []Backend{r.primary, r.secondary} }

// Location names both copies.
func (r *ReplicatedBackend) Location() string {
	return r.primary.Location() + " (secondary copy " + r.secondary.Location() + ")"
}

// Save writes the primary copy, confirms it, then writes and confirms the
// secondary copy. Each copy is asked first, so an object a copy already
// holds is compared (size and checksum), not sent again. The bytes for the
// secondary come from r again when r is an io.Seeker (a local file: no
// second download), otherwise from the primary copy; either way they are
// checked against the primary's checksum as they stream, so a mismatch
// leaves nothing on the secondary. With WithContentHash, bytes that do not
// match their name are refused before anything is stored: a content-named
// object can never be replaced.
func (r *ReplicatedBackend) Save(ctx context.Context, name string, rd io.Reader, size int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	var seeker io.Seeker
	var start int64
	if s, ok := rd.(io.Seeker); ok {
		if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
			seeker, start = s, pos
		}
	}
	p, err := r.saveTo(ctx, r.primary, false, name, rd, size, "", r.hashOf(name))
	if err != nil {
		return fmt.Errorf("save %s to the primary copy: %w", name, err)
	}
	if seeker != nil {
		if _, err = seeker.Seek(start, io.SeekStart); err == nil {
			_, err = r.saveTo(ctx, r.secondary, true, name, rd, size, p.Checksum, nil)
		} else {
			err = fmt.Errorf("rewind the source: %w", err)
		}
	} else {
		err = r.copyToSecondary(ctx, name, size, p.Checksum)
	}
	if err != nil {
		return r.pending(name, err)
	}
	return nil
}

// SavePrimary writes and confirms the primary copy only, as Save does, and
// leaves the secondary alone: for an object whose replication is to stay
// pending, because the secondary is known to be down or must not hold the
// object yet (a point object whose packs it lacks). Replicate or a later
// Save completes it.
func (r *ReplicatedBackend) SavePrimary(ctx context.Context, name string, rd io.Reader, size int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if _, err := r.saveTo(ctx, r.primary, false, name, rd, size, "", r.hashOf(name)); err != nil {
		return fmt.Errorf("save %s to the primary copy: %w", name, err)
	}
	return nil
}

// saveTo is SaveConfirmed on one copy (see saveCopy), asking the copy
// first: a present object is compared with rd instead of being sent, since
// a backend may learn that a name is taken only after the whole upload. It
// reports the confirmed copy (WithSaveReport).
func (r *ReplicatedBackend) saveTo(ctx context.Context, b Backend, secondary bool, name string, rd io.Reader, size int64, want string, sha *[32]byte) (Saved, error) {
	dst := b
	if st, ok := b.(*sharedThrottle); ok {
		// Confirming reads the object back where the copy keeps no
		// checksum (a folder): a check, not a transfer to pace.
		dst = &sharedThrottle{Backend: st.Backend, t: st.t, unpacedLoads: true}
	}
	if _, err := b.Stat(ctx, name); err == nil {
		dst = existing{dst}
	} else if !errors.Is(err, ErrNotFound) {
		return Saved{}, err
	}
	saved, err := saveCopy(ctx, dst, name, rd, size, want, sha)
	if err == nil {
		r.reportSaved(SaveReport{Name: name, Size: size, Secondary: secondary, Written: !saved.Existed})
	}
	return saved, err
}

func (r *ReplicatedBackend) reportSaved(s SaveReport) {
	if r.saved != nil {
		r.saved(s)
	}
}

// existing is a copy known to hold the object being saved: its Save says
// so at once, without reading (saveCopy then compares the objects).
type existing struct{ Backend }

func (e existing) Save(_ context.Context, name string, _ io.Reader, _ int64) error {
	return fmt.Errorf("save %s: %w", name, ErrExists)
}

// hashOf returns the SHA-256 name's bytes must have, or nil when unknown.
func (r *ReplicatedBackend) hashOf(name string) *[32]byte {
	if r.contentHash == nil {
		return nil
	}
	if s, ok := r.contentHash(name); ok {
		return &s
	}
	return nil
}

// pending wraps a failure to write the secondary copy after the primary
// copy was confirmed. A conflict is not pending: catching up cannot fix it.
func (r *ReplicatedBackend) pending(name string, err error) error {
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("save %s: the primary copy is confirmed but the secondary copy at %s holds a different object: %w", name, r.secondary.Location(), err)
	}
	return fmt.Errorf("save %s: the primary copy is confirmed; the secondary copy at %s failed (%w): %w", name, r.secondary.Location(), ErrReplicationPending, err)
}

// copyToSecondary streams the primary copy of name into the secondary,
// checking size, checksum (when known) and content hash (when known) as it
// goes. An identical object already on the secondary counts as copied.
func (r *ReplicatedBackend) copyToSecondary(ctx context.Context, name string, size int64, checksum string) error {
	sha := r.hashOf(name)
	if checksum != "" {
		// Skip the download when the secondary already has it.
		if err := checkCopy(ctx, r.secondary, name, size, checksum); err == nil {
			r.reportSaved(SaveReport{Name: name, Size: size, Secondary: true})
			return nil
		} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
			return err
		}
	}
	var saveErr error
	err := r.primary.Load(ctx, name, 0, -1, func(src io.Reader) error {
		_, saveErr = r.saveTo(ctx, r.secondary, true, name, src, size, checksum, sha)
		return saveErr
	})
	if saveErr != nil {
		return saveErr
	}
	if err != nil {
		return fmt.Errorf("read the primary copy: %w", err)
	}
	return nil
}

// Replicate copies name from the primary to the secondary copy unless the
// secondary already holds it identically, and confirms it there. It is how
// a pending object catches up. The primary copy's checksum comes from the
// primary (S3 keeps one) or from reading it; with WithContentHash the
// bytes must also match their hash, so a damaged primary copy is never
// replicated.
func (r *ReplicatedBackend) Replicate(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	info, err := r.primary.Stat(ctx, name)
	if err != nil {
		return fmt.Errorf("replicate %s: primary copy: %w", name, err)
	}
	if err := r.copyToSecondary(ctx, name, info.Size, info.Checksum); err != nil {
		return fmt.Errorf("replicate %s to %s: %w", name, r.secondary.Location(), err)
	}
	return nil
}

// CatchUp replicates each of names (see Replicate) and returns the names
// now confirmed on both copies. It goes on past an object that fails, but
// stops at the first sign that a copy is unreachable (ErrUnavailable) or
// that ctx is done. The error joins every failure.
func (r *ReplicatedBackend) CatchUp(ctx context.Context, names []string) ([]string, error) {
	var done []string
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := r.Replicate(ctx, name)
		if err == nil {
			done = append(done, name)
			continue
		}
		errs = append(errs, err)
		if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return done, fmt.Errorf("catch up replication: %d of %d objects done: %w", len(done), len(names), errors.Join(errs...))
	}
	return done, nil
}

// missingConcurrency bounds the Stat calls Missing has in flight per copy.
const missingConcurrency = 8

// Missing returns which of names are absent from the primary copy and
// which from the secondary, each in the order of names. It asks each
// object directly (no listing, so a short listing can never make an object
// look present or absent); any error other than ErrNotFound fails the
// call, since "unknown" must not be counted as either.
func (r *ReplicatedBackend) Missing(ctx context.Context, names []string) (onPrimary, onSecondary []string, err error) {
	onPrimary, err = missing(ctx, r.primary, names)
	if err != nil {
		return nil, nil, err
	}
	onSecondary, err = missing(ctx, r.secondary, names)
	if err != nil {
		return nil, nil, err
	}
	return onPrimary, onSecondary, nil
}

// MissingTolerant is Missing for a caller that can proceed with the
// secondary copy unknown: an error reaching the primary fails the call,
// one reaching the secondary is returned as secondaryErr (onSecondary is
// then nil and means nothing).
func (r *ReplicatedBackend) MissingTolerant(ctx context.Context, names []string) (onPrimary, onSecondary []string, secondaryErr, err error) {
	onPrimary, err = missing(ctx, r.primary, names)
	if err != nil {
		return nil, nil, nil, err
	}
	onSecondary, secondaryErr = missing(ctx, r.secondary, names)
	if secondaryErr != nil {
		return onPrimary, nil, secondaryErr, nil
	}
	return onPrimary, onSecondary, nil, nil
}

// MissingFrom returns which of names b does not hold, asking each object
// directly (see Missing).
func MissingFrom(ctx context.Context, b Backend, names []string) ([]string, error) {
	return missing(ctx, b, names)
}

// missing returns the names b does not hold.
func missing(ctx context.Context, b Backend, names []string) ([]string, error) {
	absent := make([]bool, len(names))
	errs := make([]error, len(names))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, missingConcurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := b.Stat(ctx, name)
			switch {
			case err == nil:
			case errors.Is(err, ErrNotFound):
				absent[i] = true
			default:
				errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("check %s at %s: %w", names[i], b.Location(), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check objects at %s: %w", b.Location(), err)
	}
	var out []string
	for i, a := range absent {
		if a {
			out = append(out, names[i])
		}
	}
	return out, nil
}

// ConfirmSHA256 reads name back whole from the primary copy and then from
// the secondary, checking its length and SHA-256 on each (see the function
// ConfirmSHA256): the full check a caller asks for on top of the size and
// checksum every Save confirms.
func (r *ReplicatedBackend) ConfirmSHA256(ctx context.Context, name string, size int64, sum [32]byte) error {
	if err := ConfirmSHA256(ctx, r.primary, name, size, sum); err != nil {
		return err
	}
	return ConfirmSHA256(ctx, r.secondary, name, size, sum)
}

// Upkeep calls fn with the primary copy and then, unless that failed,
// with the secondary (secondary true), and returns fn's first error: for
// per-server housekeeping that is no object write, such as checking a
// server's clock or aborting incomplete uploads. fn decides whether a
// failure of the secondary may be passed over (the primary proceeds and
// replication stays pending).
func (r *ReplicatedBackend) Upkeep(fn func(b Backend, secondary bool) error) error {
	if err := fn(r.primary, false); err != nil {
		return err
	}
	return fn(r.secondary, true)
}

// Load reads from the primary copy and, when that fails, from the
// secondary, calling fn again from the start: fn must not keep effects of
// a call that returned an error. With WithContentHash a whole-object
// read is checked as it streams; a mismatch is a read error (wrapping
// ErrCorrupt) returned at the last byte, so fn sees it before success.
// An error of fn's own is returned as it is, without a fallback, unless
// it wraps ErrCorrupt (the data did not authenticate).
func (r *ReplicatedBackend) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	own, perr := r.loadFrom(ctx, r.primary, name, offset, length, fn)
	if perr == nil || (own && !errors.Is(perr, ErrCorrupt)) || !r.canFallBack(ctx, perr) {
		return perr
	}
	_, serr := r.loadFrom(ctx, r.secondary, name, offset, length, fn)
	r.report(Fallback{Op: OpLoad, Name: name, Primary: r.primary.Location(), Secondary: r.secondary.Location(), Err: perr, Served: serr == nil})
	if serr != nil {
		return bothFailed("load", name, perr, serr)
	}
	return nil
}

// loadFrom loads from one copy; own reports that the error is fn's own
// rather than the copy's (fn failed while every read succeeded).
func (r *ReplicatedBackend) loadFrom(ctx context.Context, b Backend, name string, offset, length int64, fn func(io.Reader) error) (own bool, err error) {
	var sha *[32]byte
	if offset == 0 && length < 0 {
		sha = r.hashOf(name)
	}
	var fnErr error
	err = b.Load(ctx, name, offset, length, func(src io.Reader) error {
		rr := &recordingReader{r: src}
		var in io.Reader = rr
		var vr *hashCheckReader
		if sha != nil {
			vr = &hashCheckReader{r: rr, h: sha256.New(), want: *sha, loc: b.Location(), name: name}
			in = vr
		}
		err := fn(in)
		if err == nil && vr != nil && !vr.done {
			// fn stopped early; the object is good only if all of it is.
			_, err = io.Copy(io.Discard, vr)
		}
		if err != nil && rr.err == nil && (vr == nil || vr.err == nil) {
			fnErr = err
		}
		return err
	})
	return err != nil && fnErr != nil && errors.Is(err, fnErr), err
}

// canFallBack reports whether a failed primary call is worth repeating on
// the secondary: not when the caller gave up or asked for something no
// copy can serve.
func (r *ReplicatedBackend) canFallBack(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrInvalidName) && !errors.Is(err, ErrInvalidRange)
}

// bothFailed joins the failures of both copies. It wraps ErrNotFound only
// when both copies lack the object, so a primary that is merely down never
// makes an object look lost.
func bothFailed(op, name string, perr, serr error) error {
	if errors.Is(serr, ErrNotFound) && !errors.Is(perr, ErrNotFound) {
		return fmt.Errorf("%s %s: primary copy: %w; secondary copy: %v", op, name, perr, serr)
	}
	return fmt.Errorf("%s %s: primary copy: %w; secondary copy: %w", op, name, perr, serr)
}

// recordingReader remembers the first read error other than io.EOF, which
// tells a failing copy from a failing callback.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// hashCheckReader checks the SHA-256 of everything read at EOF and returns
// a *MismatchError instead of io.EOF when it differs.
type hashCheckReader struct {
	r         io.Reader
	h         hash.Hash
	want      [32]byte
	loc, name string
	done      bool
	err       error
}

func (v *hashCheckReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.done {
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		v.done = true
		if got := [32]byte(v.h.Sum(nil)); got != v.want {
			v.err = &MismatchError{Location: v.loc, Name: v.name, What: "SHA-256", Got: fmt.Sprintf("%x", got), Want: fmt.Sprintf("%x", v.want)}
			return n, v.err
		}
	} else if err != nil {
		v.err = err
	}
	return n, err
}

// Stat asks the primary copy and falls back to the secondary.
func (r *ReplicatedBackend) Stat(ctx context.Context, name string) (Info, error) {
	info, perr := r.primary.Stat(ctx, name)
	if perr == nil || !r.canFallBack(ctx, perr) {
		return info, perr
	}
	info, serr := r.secondary.Stat(ctx, name)
	r.report(Fallback{Op: OpStat, Name: name, Primary: r.primary.Location(), Secondary: r.secondary.Location(), Err: perr, Served: serr == nil})
	if serr != nil {
		return Info{}, bothFailed("stat", name, perr, serr)
	}
	return info, nil
}

// List lists the primary copy. Only when the primary is unavailable before
// it listed anything does it list the secondary instead, and report it.
func (r *ReplicatedBackend) List(ctx context.Context, prefix string, fn func(Info) error) error {
	listed := false
	perr := r.primary.List(ctx, prefix, func(i Info) error {
		listed = true
		return fn(i)
	})
	if perr == nil || listed || ctx.Err() != nil || !errors.Is(perr, ErrUnavailable) {
		return perr
	}
	serr := r.secondary.List(ctx, prefix, fn)
	r.report(Fallback{Op: OpList, Name: prefix, Primary: r.primary.Location(), Secondary: r.secondary.Location(), Err: perr, Served: serr == nil})
	if serr != nil {
		return bothFailed("list", prefix, perr, serr)
	}
	return nil
}

// Presence is one name in ListBoth: its Info on each copy, nil where the
// copy lacks it.
type Presence struct {
	Name               string
	Primary, Secondary *Info
}

// ListBoth lists prefix on both copies and calls fn once per name found on
// either, in lexical order, with what each copy holds. Both listings must
// complete before fn is first called, so a failed or cut-short listing of
// either copy is an error and never looks like missing objects. It holds
// both listings in memory.
func (r *ReplicatedBackend) ListBoth(ctx context.Context, prefix string, fn func(Presence) error) error {
	collect := func(b Backend) ([]Info, error) {
		var out []Info
		err := b.List(ctx, prefix, func(i Info) error {
			out = append(out, i)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %q at %s: %w", prefix, b.Location(), err)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	ps, err := collect(r.primary)
	if err != nil {
		return err
	}
	ss, err := collect(r.secondary)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ps) || j < len(ss) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var p Presence
		switch {
		case j >= len(ss) || (i < len(ps) && ps[i].Name < ss[j].Name):
			p = Presence{Name: ps[i].Name, Primary: &ps[i]}
			i++
		case i >= len(ps) || ss[j].Name < ps[i].Name:
			p = Presence{Name: ss[j].Name, Secondary: &ss[j]}
			j++
		default:
			p = Presence{Name: ps[i].Name, Primary: &ps[i], Secondary: &ss[j]}
			i++
			j++
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the object from the primary copy and then from the
// secondary. A copy that already lacks it is fine (a killed prune resumes),
// but the error wraps ErrNotFound when neither copy had it. When the
// primary refuses (object lock: ErrLocked, or down) the secondary is left
// alone, so both copies stay alike.
func (r *ReplicatedBackend) Remove(ctx context.Context, name string) error {
	perr := r.primary.Remove(ctx, name)
	if perr != nil && !errors.Is(perr, ErrNotFound) {
		return fmt.Errorf("remove %s from the primary copy: %w", name, perr)
	}
	serr := r.secondary.Remove(ctx, name)
	switch {
	case serr == nil:
		return nil
	case !errors.Is(serr, ErrNotFound):
		return fmt.Errorf("remove %s from the secondary copy at %s: %w", name, r.secondary.Location(), serr)
	case perr != nil:
		return fmt.Errorf("remove %s: on neither copy: %w", name, ErrNotFound)
	}
	return nil
}

// Close closes both copies.
func (r *ReplicatedBackend) Close() error {
	return errors.Join(r.primary.Close(), r.secondary.Close())
}
