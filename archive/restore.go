package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapeless/tapeless/storage"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Target is the directory restored into; it is created if missing.
	// Nothing is ever written outside it.
	Target string
	// Path restores only this path of the point (a file, or a directory
	// with everything below it) plus its parent directories; empty means
	// the whole point. Paths keep their place: a/b lands in Target/a/b.
	Path string
	// Overwrite replaces existing files and symlinks; without it an
	// existing entry is an error. Existing directories are merged into.
	Overwrite bool
	// SpecialBits restores setuid and setgid on files and file
	// capabilities (the security.capability xattr); without it they are
	// dropped and counted (a restore should not plant privileged programs
	// by default).
	SpecialBits bool
	// Partial restores every selected file whose content is readable and
	// lists the others in the summary, when packs are missing or damaged;
	// without it such a restore fails before writing (UnavailableError).
	Partial bool
	// Progress, when set, is called about every 200 ms and at the end.
	Progress func(RestoreProgress)
	// Workers is the number of files written in parallel (default 2 to
	// 4, by CPU count).
	Workers int
}

func (o RestoreOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return min(max(runtime.GOMAXPROCS(0), 2), 4)
}

// RestoreProgress is a snapshot of a running restore.
type RestoreProgress struct {
	Files      int64
	Bytes      int64 // logical bytes of files done
	TotalBytes int64 // of the whole point
	Elapsed    time.Duration
	// Fetched and FetchTotal count the bytes a restore from the vault
	// downloads before it writes (the ranges of the blobs it needs); both
	// are 0 for a restore from the store.
	Fetched    int64
	FetchTotal int64
}

// RestoreSummary reports what a restore did.
type RestoreSummary struct {
	Point     ID     `json:"id"`
	Target    string `json:"target"`
	Path      string `json:"path,omitempty"`
	Files     int64  `json:"files"`
	Dirs      int64  `json:"dirs"`
	Symlinks  int64  `json:"symlinks"`
	HardLinks int64  `json:"hard_links"`
	Bytes     int64  `json:"source_bytes"`  // logical size of the files
	Written   int64  `json:"written_bytes"` // data actually written (holes skipped)
	// Warnings lists metadata that could not be restored (owners without
	// privilege, xattrs the target file system refuses).
	Warnings []string `json:"warnings"`
	// NotRestored lists (the first maxNotRestoredNamed of) the files a
	// partial restore could not write, NotRestoredCount counts them all;
	// Unavailable names the missing or damaged objects, each with why.
	NotRestored      []string `json:"not_restored"`
	NotRestoredCount int64    `json:"not_restored_count"`
	Unavailable      []string `json:"unavailable"`
	// SetIDDropped counts files whose setuid or setgid bit was not
	// restored, CapabilitiesDropped files whose file capabilities
	// (security.capability) were not: both need SpecialBits.
	// AlreadyPresent counts the files (of Files) the target held
	// already with the point's content, left by an interrupted restore
	// (or identical anyway): not fetched, not written, metadata set again.
	AlreadyPresent int64 `json:"-"`
	// Fetched is what a restore from the vault downloaded (point, index
	// objects, manifest and the blobs' ranges); 0 from the store.
	Fetched             int64         `json:"-"`
	SetIDDropped        int64         `json:"setid_dropped"`
	CapabilitiesDropped int64         `json:"capabilities_dropped"`
	Duration            time.Duration `json:"duration_ns"`
}

// xattrCapability is the extended attribute holding a file's capabilities
// (setcap); cap_setuid+ep makes a program as powerful as setuid root.
const xattrCapability = "security.capability"

// UnavailableError is returned when files of the selection need objects
// that are missing or damaged and RestoreOptions.Partial is not set.
type UnavailableError struct {
	Files    int64    // files that cannot be restored
	Paths    []string // the first of them
	Problems []error  // the objects missing or damaged
}

func (e *UnavailableError) Error() string {
	named := e.Paths[:min(len(e.Paths), maxConflictsNamed)]
	paths := strings.Join(named, ", ")
	if int64(len(named)) < e.Files {
		paths += fmt.Sprintf(" and %d more", e.Files-int64(len(named)))
	}
	var probs []string
	for i, p := range e.Problems {
		if i == maxProblemsNamed {
			probs = append(probs, fmt.Sprintf("and %d more", len(e.Problems)-i))
			break
		}
		probs = append(probs, p.Error())
	}
	return fmt.Sprintf("%d files cannot be restored (%s): they need objects that are missing or damaged: %s; use --partial to restore everything else",
		e.Files, paths, strings.Join(probs, "; "))
}

// Unwrap returns the problems, so errors.Is finds storage.ErrNotFound or
// ErrAuthentication.
func (e *UnavailableError) Unwrap() []error { return e.Problems }

// maxNotRestoredNamed caps RestoreSummary.NotRestored (and the paths an
// UnavailableError names); maxProblemsNamed caps the objects an error names.
const (
	maxNotRestoredNamed = 1000
	maxProblemsNamed    = 5
)

// ErrPathNotInPoint is returned when RestoreOptions.Path names nothing in
// the point.
var ErrPathNotInPoint = errors.New("path not in recovery point")

// Restore writes the point id (or RestoreOptions.Path of it) read through r
// into o.Target. The point and its manifest are authenticated before the
// target is touched. Every file's size and SHA-256 are checked as it is
// written; every path is opened beneath the target with os.Root, symlinks
// are created last, and nothing the manifest says can make a write land
// outside the target.
func Restore(ctx context.Context, r *Reader, id ID, o RestoreOptions) (*RestoreSummary, error) {
	start := time.Now()
	if o.Target == "" {
		return nil, errors.New("restore: no target directory")
	}
	h, err := r.LoadPoint(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	bad, problems, err := checkPackSizes(ctx, r.b, h.Packs)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	sub := strings.Trim(filepath.ToSlash(o.Path), "/")
	if sub != "" {
		sub = path.Clean(sub)
		if err := CheckPath(sub); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	rs := &restoreRun{
		ctx:     ctx,
		r:       r,
		o:       o,
		sub:     sub,
		heads:   map[string]*Node{},
		linked:  map[string]string{},
		bad:     bad,
		skip:    map[string]bool{},
		sum:     &RestoreSummary{Point: id, Target: o.Target, Path: sub},
		start:   start,
		total:   h.Bytes,
		lastRep: start,
	}
	sv, _ := r.b.(*StagedVault)
	if sv != nil {
		rs.want = map[ID][]packEntry{}
	}
	// First pass, before the target is touched: the whole manifest must be
	// well formed and in order, the path must exist, nothing may be in the
	// way in the target, and every pack the selection needs must be found
	// and hash to its name (or, with Partial, the files needing one that
	// does not are left out).
	mr, err := OpenManifest(ctx, r, h.Tree)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	cc, err := newConflictCheck(o.Target, o.Overwrite)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	// Files already in place are kept only when this continues an
	// interrupted restore of the same point and path (or with Overwrite,
	// where keeping an identical file and replacing it end the same):
	// otherwise an existing file is in the way, however equal.
	cc.keepSame = o.Overwrite || resuming(o.Target, id, sub)
	rs.conflicts = cc
	rs.fresh = cc.root == nil
	rs.present = cc.present
	packs, err := rs.plan(mr)
	cc.close()
	if err == nil {
		err = cc.err()
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	var hashBad map[ID]error
	if sv != nil {
		// From the vault: only the byte ranges of the blobs needed, each
		// blob authenticated as it arrives, all before anything is
		// written.
		ranges, total := planFetch(rs.want)
		rs.want = nil
		rs.fetchTotal = total
		sv.SetFetchReport(func(n int64) { rs.fetched.Add(n) })
		hashBad, err = fetchPacks(ctx, r, sv, ranges, packs, func() { rs.report(false) })
		rs.report(true)
	} else {
		hashBad, err = checkPackHashes(ctx, r.b, packs)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	if len(hashBad) > 0 {
		// Files the first pass found readable may need these packs:
		// decide again (conflicts were checked already).
		for p, err := range hashBad {
			bad[p] = err
		}
		clear(rs.heads)
		rs.conflicts = &conflictCheck{}
		if mr, err = OpenManifest(ctx, r, h.Tree); err == nil {
			_, err = rs.plan(mr)
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", id, err)
		}
	}
	if rs.sum.NotRestoredCount > 0 {
		problems = append(problems, sortedErrors(bad)...)
		if rs.blobErr != nil {
			problems = append(problems, rs.blobErr)
		}
		if !o.Partial {
			return nil, fmt.Errorf("restore %s: %w", id, &UnavailableError{Files: rs.sum.NotRestoredCount, Paths: rs.sum.NotRestored, Problems: problems})
		}
		for _, p := range problems {
			rs.sum.Unavailable = append(rs.sum.Unavailable, p.Error())
		}
	}

	if err := os.MkdirAll(o.Target, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create target: %w", err)
	}
	root, err := os.OpenRoot(o.Target)
	if err != nil {
		return nil, fmt.Errorf("restore: open target: %w", err)
	}
	defer root.Close()
	rs.root = root
	if err := writeResumeMarker(o.Target, id, sub); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	rs.main = newFileWriter()
	clear(rs.heads)
	rs.startWorkers(o.workers())
	mr, err = OpenManifest(ctx, r, h.Tree)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	err = rs.run(mr)
	if err != nil {
		rs.drain()
	}
	rs.stopWorkers()
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	if err := os.Remove(filepath.Join(o.Target, resumeMarker)); err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	rs.sum.Duration = time.Since(start)
	if sv != nil {
		rs.sum.Fetched = sv.StagedBytes()
	}
	rs.summarize()
	rs.report(true)
	return rs.sum, nil
}

// checkPackHashes reads each pack whole and checks it against its name
// (the SHA-256 of its bytes), two at a time, so a flipped byte anywhere in
// a pack the restore needs is found, by name, before anything is written.
// Packs missing or damaged are returned; any other error (an outage) is
// returned as err.
func checkPackHashes(ctx context.Context, b storage.Backend, packs []ID) (map[ID]error, error) {
	return eachPack(ctx, packs, 2, func(id ID) error {
		name := PackName(id)
		h := sha256.New()
		err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
			_, err := io.Copy(h, r)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got := ID(h.Sum(nil)); got != id {
			return fmt.Errorf("%s: %w: its bytes hash to %s", name, ErrAuthentication, got)
		}
		return nil
	}, nil)
}

// unavailable tells whether err says an object is gone or damaged (which
// a partial restore works around) rather than unreachable.
func unavailable(err error) bool {
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, ErrAuthentication) || errors.Is(err, storage.ErrCorrupt)
}

// checkPackSizes makes sure every pack and index object the point lists
// exists with the size the point recorded, so a truncated or missing object
// is found, by name, before anything is written. It returns the packs
// missing or damaged, and problems with index objects (which matter only
// when no other index finds the blobs); other errors are returned as err.
func checkPackSizes(ctx context.Context, b storage.Backend, packs []PackRef) (bad map[ID]error, problems []error, err error) {
	bad = map[ID]error{}
	for _, p := range packs {
		for i, o := range []struct {
			name string
			size int64
		}{{PackName(p.Pack), p.Size}, {IndexName(p.Index), p.IndexSize}} {
			info, err := b.Stat(ctx, o.name)
			if err == nil && info.Size != o.size {
				err = fmt.Errorf("%w: %d bytes, the point recorded %d", ErrAuthentication, info.Size, o.size)
			}
			if err == nil {
				continue
			}
			err = fmt.Errorf("%s: %w", o.name, err)
			switch {
			case !unavailable(err):
				return nil, nil, err
			case i == 0:
				bad[p.Pack] = err
			default:
				problems = append(problems, err)
			}
		}
	}
	return bad, problems, nil
}

// sortedErrors returns the errors of m sorted by message.
func sortedErrors(m map[ID]error) []error {
	out := make([]error, 0, len(m))
	for _, err := range m {
		out = append(out, err)
	}
	slices.SortFunc(out, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return out
}

type restoreRun struct {
	ctx  context.Context
	r    *Reader
	o    RestoreOptions
	root *os.Root
	sub  string

	heads     map[string]*Node // hard-link group heads outside sub
	conflicts *conflictCheck   // used by plan
	// want are the blobs each pack holds for the selection, when they
	// are fetched in ranges (from the vault); nil otherwise.
	want map[ID][]packEntry
	// fetchTotal is what the fetch pass downloads, fetched what it and
	// anything after it did so far.
	fetchTotal int64
	fetched    atomic.Int64
	// fresh says the target was missing or empty when the restore
	// began, so nothing can be in a file's way; present are the entries
	// the target held already as the point has them (see conflictCheck).
	fresh   bool
	present map[string]bool
	// bad are the packs missing or damaged; skip the paths whose content
	// cannot be restored (and heads outside sub whose content is
	// unavailable); blobErr the first chunk no index knows.
	bad      map[ID]error
	skip     map[string]bool
	blobErr  error
	nBlobs   int
	topLinks []*Node // symlinks at the top of the target
	start    time.Time
	total    int64
	lastRep  time.Time
	main     *fileWriter // for files written by the main loop

	// Files are written by workers; the main loop waits for them (drain)
	// before it links to a file or closes a directory.
	jobs     chan fileJob
	pending  sync.WaitGroup
	workers  sync.WaitGroup
	mu       sync.Mutex        // guards the fields below
	sum      *RestoreSummary   //
	linked   map[string]string // head path → where its content was restored
	firstErr error
}

// fileJob is one file for a worker to write.
type fileJob struct {
	n    *Node
	dest string
}

// fileWriter is the per-goroutine state of writing files.
type fileWriter struct {
	h   hash.Hash
	buf []byte
}

func newFileWriter() *fileWriter {
	return &fileWriter{h: sha256.New(), buf: make([]byte, 1<<20)}
}

// startWorkers starts n goroutines writing submitted files.
func (rs *restoreRun) startWorkers(n int) {
	rs.jobs = make(chan fileJob, 2*n)
	for range n {
		rs.workers.Add(1)
		go func() {
			defer rs.workers.Done()
			w := newFileWriter()
			for j := range rs.jobs {
				if rs.err() == nil {
					if err := rs.file(w, j.n, j.dest); err != nil {
						rs.setErr(err)
					}
				}
				rs.pending.Done()
			}
		}()
	}
}

func (rs *restoreRun) stopWorkers() {
	if rs.jobs != nil {
		close(rs.jobs)
		rs.workers.Wait()
	}
}

func (rs *restoreRun) err() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.firstErr
}

func (rs *restoreRun) setErr(err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.firstErr == nil {
		rs.firstErr = err
	}
}

// submit hands a file to the workers and reports an earlier worker error.
func (rs *restoreRun) submit(n *Node, dest string) error {
	if err := rs.err(); err != nil {
		return err
	}
	rs.pending.Add(1)
	select {
	case rs.jobs <- fileJob{n, dest}:
		return nil
	case <-rs.ctx.Done():
		rs.pending.Done()
		return rs.ctx.Err()
	}
}

// drain waits until every submitted file is written.
func (rs *restoreRun) drain() error {
	rs.pending.Wait()
	return rs.err()
}

func (rs *restoreRun) report(final bool) {
	if rs.o.Progress == nil {
		return
	}
	if !final && time.Since(rs.lastRep) < 200*time.Millisecond {
		return
	}
	rs.lastRep = time.Now()
	rs.mu.Lock()
	p := RestoreProgress{Files: rs.sum.Files, Bytes: rs.sum.Bytes, TotalBytes: rs.total, Elapsed: time.Since(rs.start),
		Fetched: rs.fetched.Load(), FetchTotal: rs.fetchTotal}
	rs.mu.Unlock()
	rs.o.Progress(p)
}

func (rs *restoreRun) warn(format string, a ...any) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	const maxWarnings = 100
	if len(rs.sum.Warnings) < maxWarnings {
		rs.sum.Warnings = append(rs.sum.Warnings, fmt.Sprintf(format, a...))
	}
}

// summarize puts what was deliberately left out first in the warnings,
// where the cap on their number cannot drop it.
func (rs *restoreRun) summarize() {
	var head []string
	if n := rs.sum.SetIDDropped; n > 0 {
		head = append(head, fmt.Sprintf("%d files' setuid/setgid bits not restored; use --special-bits", n))
	}
	if n := rs.sum.CapabilitiesDropped; n > 0 {
		head = append(head, fmt.Sprintf("%d file capabilities not restored; use --special-bits", n))
	}
	rs.sum.Warnings = append(head, rs.sum.Warnings...)
}

// selected tells whether a node is restored: the sub-path, anything under
// it, and the directories above it.
func (rs *restoreRun) selected(p string, t EntryType) bool {
	if rs.sub == "" || p == rs.sub || strings.HasPrefix(p, rs.sub+"/") {
		return true
	}
	return t == TypeDir && strings.HasPrefix(rs.sub, p+"/")
}

// inSub tells whether p is the sub-path or below it.
func (rs *restoreRun) inSub(p string) bool {
	return rs.sub == "" || p == rs.sub || strings.HasPrefix(p, rs.sub+"/")
}

// openDir is a directory of the point whose subtree is still being
// restored.
type openDir struct {
	path     string
	node     *Node   // nil when it is not restored (outside the selection)
	symlinks []*Node // created when the directory is closed
}

// treeCheck enforces the manifest's order (depth-first, siblings sorted
// bytewise, see docs/FORMAT.md) entry by entry with memory bounded by the
// tree's depth. The order rules out duplicates, and every entry's parent
// must be the innermost open directory: an entry below a symlink, a file or
// a missing directory is refused, which is how a crafted manifest would
// try to write through a link.
type treeCheck struct {
	prev  []string
	stack []*openDir
}

// treeStep is where step placed a node: the directories its position
// closed (innermost first), its parent (nil at the top) and, for a
// directory, its own entry, now the innermost open one.
type treeStep struct {
	closed []*openDir
	parent *openDir
	dir    *openDir
}

// step checks n (enter) and, when n is a directory, opens it, so the
// entries that follow may be inside it.
func (c *treeCheck) step(n *Node) (treeStep, error) {
	closed, parent, err := c.enter(n)
	if err != nil {
		return treeStep{}, err
	}
	at := treeStep{closed: closed, parent: parent}
	if n.Type == TypeDir {
		at.dir = &openDir{path: n.Path}
		c.stack = append(c.stack, at.dir)
	}
	return at, nil
}

// compareComponents orders paths as the walk emits them.
func compareComponents(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// enter checks n against the entries before it. It returns the
// directories n's position closes (innermost first) and n's parent (nil at
// the top).
func (c *treeCheck) enter(n *Node) (closed []*openDir, parent *openDir, err error) {
	comps := strings.Split(n.Path, "/")
	if c.prev != nil && compareComponents(c.prev, comps) >= 0 {
		return nil, nil, fmt.Errorf("manifest entry %q: duplicate or out of order after %q", n.Path, strings.Join(c.prev, "/"))
	}
	c.prev = comps
	dir := path.Dir(n.Path)
	for len(c.stack) > 0 {
		top := c.stack[len(c.stack)-1]
		if top.path == dir || strings.HasPrefix(dir, top.path+"/") {
			break
		}
		closed = append(closed, top)
		c.stack = c.stack[:len(c.stack)-1]
	}
	if dir == "." {
		return closed, nil, nil
	}
	if len(c.stack) == 0 || c.stack[len(c.stack)-1].path != dir {
		return closed, nil, fmt.Errorf("manifest entry %q: parent %q is not a directory of the point", n.Path, dir)
	}
	return closed, c.stack[len(c.stack)-1], nil
}

// plan is the first pass: it checks the manifest, finds what is in the
// way in the target, and returns the packs holding the chunks the
// selection needs.
func (rs *restoreRun) plan(mr *ManifestReader) ([]ID, error) {
	var tc treeCheck
	packs := map[ID]bool{}
	var order []ID
	clear(rs.skip)
	rs.sum.NotRestored, rs.sum.NotRestoredCount, rs.blobErr, rs.nBlobs = nil, 0, nil, 0
	// need adds the packs n's content needs and tells whether they are
	// all there.
	if rs.want != nil {
		rs.want = map[ID][]packEntry{}
	}
	need := func(n *Node) (bool, error) {
		var ps []ID
		var es []packEntry
		for _, c := range n.Chunks {
			loc, err := rs.r.locate(rs.ctx, BlobData, c)
			p := loc.Pack
			if errors.Is(err, ErrBlobNotFound) {
				if rs.nBlobs++; rs.blobErr == nil {
					rs.blobErr = fmt.Errorf("%q: %w", n.Path, err)
				}
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("%q: %w", n.Path, err)
			}
			if rs.bad[p] != nil {
				return false, nil
			}
			ps = append(ps, p)
			if rs.want != nil {
				es = append(es, packEntry{Type: BlobData, ID: c, Offset: loc.Offset, Length: loc.Length, RawLen: loc.RawLen})
			}
		}
		for i, p := range ps {
			if !packs[p] {
				packs[p] = true
				order = append(order, p)
			}
			if rs.want != nil {
				rs.want[p] = append(rs.want[p], es[i])
			}
		}
		return true, nil
	}
	found := false
	var total int64
	err := mr.Each(rs.ctx, func(n *Node) error {
		if _, err := tc.step(n); err != nil {
			return err
		}
		sel := rs.selected(n.Path, n.Type)
		if !sel && n.Type == TypeFile && n.Nlink > 1 {
			rs.heads[n.Path] = n
		}
		if !sel {
			return nil
		}
		found = found || rs.inSub(n.Path)
		rs.conflicts.check(n)
		if rs.present[n.Path] {
			// Restored already (a rerun of an interrupted restore): its
			// content is not fetched again.
			if n.Type == TypeFile && n.LinkTo == "" {
				total += n.Size
			}
			return nil
		}
		if n.LinkTo != "" {
			if head, ok := rs.heads[n.LinkTo]; ok {
				delete(rs.heads, n.LinkTo)
				ok, err := need(head)
				if err != nil {
					return err
				}
				if ok {
					total += head.Size
				} else {
					rs.skip[head.Path] = true
					rs.notRestored(n.Path)
				}
			} else if rs.skip[n.LinkTo] {
				rs.notRestored(n.Path) // its group's content is unavailable
			}
			return nil
		}
		ok, err := need(n)
		if err != nil {
			return err
		}
		if ok {
			total += n.Size
		} else {
			rs.notRestored(n.Path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrPathNotInPoint, rs.sub)
	}
	if rs.nBlobs > 1 {
		rs.blobErr = fmt.Errorf("%w (and %d more chunks not found)", rs.blobErr, rs.nBlobs-1)
	}
	rs.total = total // what the progress bar counts to
	return order, nil
}

// notRestored records that the file at p cannot be restored.
func (rs *restoreRun) notRestored(p string) {
	rs.skip[p] = true
	rs.sum.NotRestoredCount++
	if len(rs.sum.NotRestored) < maxNotRestoredNamed {
		rs.sum.NotRestored = append(rs.sum.NotRestored, p)
	}
}

// run is the second pass: it writes the selection into the target.
func (rs *restoreRun) run(mr *ManifestReader) error {
	var tc treeCheck
	err := mr.Each(rs.ctx, func(n *Node) error {
		at, err := tc.step(n)
		if err != nil {
			return err
		}
		if err := rs.closeDirs(at.closed); err != nil {
			return err
		}
		sel := rs.selected(n.Path, n.Type)
		if !sel && n.Type == TypeFile && n.Nlink > 1 {
			rs.heads[n.Path] = n // a link inside sub may need its content
		}
		if at.dir != nil && sel {
			at.dir.node = n
		}
		if !sel {
			return nil
		}
		if n.Type == TypeSymlink {
			// Created when its directory is closed: by then nothing else
			// is written below that directory, so no later write can pass
			// through a symlink the archive created.
			if at.parent != nil {
				at.parent.symlinks = append(at.parent.symlinks, n)
			} else {
				rs.topLinks = append(rs.topLinks, n)
			}
			return nil
		}
		if n.Type == TypeFile && rs.skip[n.Path] {
			return nil // a partial restore: its content is unavailable
		}
		pausePoint(pauseRestoreWrite)
		if err := rs.entry(n); err != nil {
			return err
		}
		rs.report(false)
		return nil
	})
	if err != nil {
		return err
	}
	if err := rs.drain(); err != nil {
		return err
	}
	slices.Reverse(tc.stack)
	if err := rs.closeDirs(tc.stack); err != nil {
		return err
	}
	for _, n := range rs.topLinks {
		if err := rs.symlink(n); err != nil {
			return err
		}
	}
	return nil
}

// closeDirs finishes directories whose subtrees are complete, innermost
// first: their symlinks, then their owner, mode, xattrs and mtime (after
// everything inside, so the mtime sticks and a read-only directory is
// locked only when full).
func (rs *restoreRun) closeDirs(dirs []*openDir) error {
	if len(dirs) == 0 {
		return nil
	}
	if err := rs.drain(); err != nil {
		return err
	}
	for _, d := range dirs {
		for _, n := range d.symlinks {
			if err := rs.symlink(n); err != nil {
				return err
			}
		}
		if d.node != nil {
			if err := rs.dirMeta(d.node); err != nil {
				return err
			}
		}
	}
	return nil
}

func (rs *restoreRun) entry(n *Node) error {
	switch {
	case n.Type == TypeDir:
		return rs.dir(n)
	case n.LinkTo != "":
		return rs.hardlink(n)
	case n.Type == TypeFile:
		return rs.submit(n, n.Path)
	}
	return fmt.Errorf("manifest entry %q: unsupported type %v", n.Path, n.Type)
}

// clear makes room for a new entry at p: nothing there is fine; an existing
// entry is removed with Overwrite and an error without.
func (rs *restoreRun) clear(p string) error {
	fi, err := rs.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	if !rs.o.Overwrite {
		return fmt.Errorf("restore %s: %w (use --overwrite to replace it)", p, fs.ErrExist)
	}
	if fi.IsDir() {
		return fmt.Errorf("restore %s: a directory is in the way", p)
	}
	if err := rs.root.Remove(p); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	return nil
}

func (rs *restoreRun) dir(n *Node) error {
	fi, err := rs.root.Lstat(n.Path)
	switch {
	case err == nil && fi.IsDir():
		// merge into an existing directory
	case err == nil || !errors.Is(err, fs.ErrNotExist):
		if err := rs.clear(n.Path); err != nil {
			return err
		}
		fallthrough
	default:
		// Owner-only until its contents are in; dirMeta sets the real mode.
		if err := rs.root.Mkdir(n.Path, 0o700); err != nil {
			return fmt.Errorf("restore %s: %w", n.Path, err)
		}
	}
	rs.mu.Lock()
	rs.sum.Dirs++
	rs.mu.Unlock()
	return nil
}

func (rs *restoreRun) hardlink(n *Node) error {
	if err := rs.drain(); err != nil { // the link's target must be complete
		return err
	}
	if rs.present[n.Path] {
		rs.mu.Lock()
		rs.sum.HardLinks++
		rs.mu.Unlock()
		return nil
	}
	rs.mu.Lock()
	to, ok := rs.linked[n.LinkTo]
	rs.mu.Unlock()
	if ok {
		if err := rs.clear(n.Path); err != nil {
			return err
		}
		if err := rs.root.Link(to, n.Path); err != nil {
			return fmt.Errorf("restore hard link %s: %w", n.Path, err)
		}
		rs.mu.Lock()
		rs.sum.HardLinks++
		rs.mu.Unlock()
		return nil
	}
	head, ok := rs.heads[n.LinkTo]
	if !ok {
		return fmt.Errorf("manifest entry %q: hard link to %q, which is not an earlier file", n.Path, n.LinkTo)
	}
	// The group's first member lies outside the restored path: this
	// member gets the content and later ones link to it.
	delete(rs.heads, n.LinkTo)
	return rs.file(rs.main, head, n.Path)
}

// fileMode converts stored permission bits to an os.FileMode.
func fileMode(perm uint32, special bool) fs.FileMode {
	m := fs.FileMode(perm & 0o777)
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if special && perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if special && perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	return m
}

// resumeMarker is the file a restore keeps at the top of its target while
// it writes (removed when it finishes): a rerun that finds it naming the
// same point and path continues that restore.
const resumeMarker = ".tapeless-restore-in-progress"

func resumeMarkerText(id ID, sub string) string {
	return fmt.Sprintf("point %s\npath %q\n", id, sub)
}

// resuming tells whether target holds the marker of an interrupted
// restore of point id's sub.
func resuming(target string, id ID, sub string) bool {
	b, err := os.ReadFile(filepath.Join(target, resumeMarker))
	return err == nil && string(b) == resumeMarkerText(id, sub)
}

func writeResumeMarker(target string, id ID, sub string) error {
	return os.WriteFile(filepath.Join(target, resumeMarker), []byte(resumeMarkerText(id, sub)), 0o600)
}

// partName is where the content of dest is written before it is complete
// and checked: next to it, under a name a rerun finds again, so a file a
// killed restore left half written never sits at dest (where a rerun
// would take it for the user's) and the rerun replaces it.
func partName(dest string) string {
	h := sha256.Sum256([]byte(dest))
	return path.Join(path.Dir(dest), fmt.Sprintf(".tapeless-restore-%x", h[:8]))
}

// file restores the content and metadata of n at dest (n.Path, or another
// member of its hard-link group): written under partName, then renamed
// into place once its content is checked and its metadata set.
func (rs *restoreRun) file(w *fileWriter, n *Node, dest string) error {
	if dest == n.Path && rs.present[dest] {
		return rs.keep(n)
	}
	if !rs.fresh {
		// The target held something when the restore began: what is in
		// the way goes by the conflict rules (clear).
		if err := rs.clear(dest); err != nil {
			return err
		}
	}
	part := partName(dest)
	f, err := rs.root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Left by a restore that was interrupted: ours to replace.
		if err := rs.root.Remove(part); err != nil {
			return fmt.Errorf("restore %s: %w", dest, err)
		}
		f, err = rs.root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", dest, err)
	}
	err = rs.content(w, f, n, dest)
	if err == nil {
		err = rs.fileMeta(f, n, dest)
	}
	if err == nil {
		// Last, after every write, through the descriptor.
		if err = futimens(f, n.Mtime); err != nil {
			err = fmt.Errorf("restore %s: set times: %w", dest, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore %s: %w", dest, cerr)
	}
	if err == nil {
		if err = rs.root.Rename(part, dest); err != nil {
			err = fmt.Errorf("restore %s: %w", dest, err)
		}
	}
	if err != nil {
		rs.root.Remove(part)
		return err
	}
	if n.Changed {
		rs.warn("%s changed while it was backed up: its content may be inconsistent", dest)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n.Nlink > 1 {
		rs.linked[n.Path] = dest
	}
	rs.sum.Files++
	rs.sum.Bytes += n.Size
	return nil
}

// keep takes a file the target holds already with the point's size and
// SHA-256 (restored by an interrupted run) as restored: its metadata is set
// again, its content is neither fetched nor written.
func (rs *restoreRun) keep(n *Node) error {
	f, err := rs.root.OpenFile(n.Path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("restore %s: %w", n.Path, err)
	}
	err = rs.fileMeta(f, n, n.Path)
	if err == nil {
		if err = futimens(f, n.Mtime); err != nil {
			err = fmt.Errorf("restore %s: set times: %w", n.Path, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore %s: %w", n.Path, cerr)
	}
	if err != nil {
		return err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n.Nlink > 1 {
		rs.linked[n.Path] = n.Path
	}
	rs.sum.Files++
	rs.sum.Bytes += n.Size
	rs.sum.AlreadyPresent++
	return nil
}

// content writes the file's data extents, leaving holes unwritten, and
// checks size and SHA-256 of what was written.
func (rs *restoreRun) content(w *fileWriter, f *os.File, n *Node, dest string) error {
	h := w.h
	h.Reset()
	cs := newBlobStream(rs.ctx, rs.r, BlobData, n.Chunks)
	var written int64
	for _, x := range n.dataExtents() {
		ow := io.NewOffsetWriter(f, x.Offset)
		c, err := io.CopyBuffer(io.MultiWriter(ow, h), io.LimitReader(cs, x.Length), w.buf)
		written += c
		if err != nil {
			return fmt.Errorf("restore %s: %w", dest, err)
		}
		if c != x.Length {
			return fmt.Errorf("restore %s: content is %d bytes short of the manifest's size", dest, x.Length-c)
		}
	}
	if extra, err := cs.Read(make([]byte, 1)); extra > 0 || (err != nil && err != io.EOF) {
		if err != nil {
			return fmt.Errorf("restore %s: %w", dest, err)
		}
		return fmt.Errorf("restore %s: content is longer than the manifest's size", dest)
	}
	if !bytes.Equal(h.Sum(nil), n.SHA256) {
		return fmt.Errorf("restore %s: content does not match its SHA-256 in the manifest", dest)
	}
	// Truncate sets the size past the last extent, so trailing holes stay
	// holes.
	if err := f.Truncate(n.Size); err != nil {
		return fmt.Errorf("restore %s: %w", dest, err)
	}
	rs.mu.Lock()
	rs.sum.Written += written
	rs.mu.Unlock()
	return nil
}

// fileMeta sets owner, mode and xattrs through the open descriptor. Owner
// goes first: chown clears set-ID bits.
func (rs *restoreRun) fileMeta(f *os.File, n *Node, dest string) error {
	if err := f.Chown(int(n.UID), int(n.GID)); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("restore %s: %w", dest, err)
		}
		rs.warn("%s: owner %d:%d not restored: %v", dest, n.UID, n.GID, err)
	}
	if err := f.Chmod(fileMode(n.Perm, rs.o.SpecialBits)); err != nil {
		return fmt.Errorf("restore %s: %w", dest, err)
	}
	if !rs.o.SpecialBits && n.Perm&0o6000 != 0 {
		rs.mu.Lock()
		rs.sum.SetIDDropped++
		rs.mu.Unlock()
	}
	rs.setXattrs(int(f.Fd()), n, dest)
	return nil
}

// setXattrs restores n's extended attributes, except file capabilities
// without SpecialBits: like a set-ID bit they would plant a privileged
// program.
func (rs *restoreRun) setXattrs(fd int, n *Node, dest string) {
	for _, x := range n.Xattrs {
		if x.Name == xattrCapability && !rs.o.SpecialBits {
			rs.mu.Lock()
			rs.sum.CapabilitiesDropped++
			rs.mu.Unlock()
			continue
		}
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			rs.warn("%s: xattr %s not restored: %v", dest, x.Name, err)
		}
	}
}

func (rs *restoreRun) symlink(n *Node) error {
	if rs.present[n.Path] {
		rs.mu.Lock()
		rs.sum.Symlinks++
		rs.mu.Unlock()
		return nil
	}
	if err := rs.clear(n.Path); err != nil {
		return err
	}
	if err := rs.root.Symlink(n.Target, n.Path); err != nil {
		return fmt.Errorf("restore symlink %s: %w", n.Path, err)
	}
	if err := rs.root.Lchown(n.Path, int(n.UID), int(n.GID)); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("restore symlink %s: %w", n.Path, err)
		}
		rs.warn("%s: owner %d:%d not restored: %v", n.Path, n.UID, n.GID, err)
	}
	// os.Root has no Lutimes: set the link's own mtime through its
	// parent's descriptor with AT_SYMLINK_NOFOLLOW.
	parent, base := path.Split(n.Path)
	if parent == "" {
		parent = "."
	}
	d, err := rs.root.Open(parent)
	if err != nil {
		return fmt.Errorf("restore symlink %s: %w", n.Path, err)
	}
	defer d.Close()
	ts := []unix.Timespec{{Nsec: utimeOmit}, unix.NsecToTimespec(n.Mtime)}
	if err := unix.UtimesNanoAt(int(d.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("restore symlink %s: set times: %w", n.Path, err)
	}
	rs.mu.Lock()
	rs.sum.Symlinks++
	rs.mu.Unlock()
	return nil
}

// dirMeta sets a directory's owner, mode, xattrs and times once its
// contents are complete.
func (rs *restoreRun) dirMeta(n *Node) error {
	d, err := rs.root.Open(n.Path)
	if err != nil {
		return fmt.Errorf("restore %s: %w", n.Path, err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("restore %s: no longer a directory", n.Path)
	}
	if err := d.Chown(int(n.UID), int(n.GID)); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("restore %s: %w", n.Path, err)
		}
		rs.warn("%s: owner %d:%d not restored: %v", n.Path, n.UID, n.GID, err)
	}
	// Directories keep setgid (it only steers the group of new files).
	mode := fileMode(n.Perm, true) &^ fs.ModeSetuid
	if err := d.Chmod(mode); err != nil {
		return fmt.Errorf("restore %s: %w", n.Path, err)
	}
	rs.setXattrs(int(d.Fd()), n, n.Path)
	if err := futimens(d, n.Mtime); err != nil {
		return fmt.Errorf("restore %s: set times: %w", n.Path, err)
	}
	return nil
}

// conflictCheck finds, before anything is written, the entries of the
// selection that the target already has in the way, so a restore that
// would be refused is refused before it writes anything.
//
// An entry the target holds already as the point has it is not in the way:
// a regular file with the point's size whose data hashes to the point's
// SHA-256, a symlink with the same target, a hard link to such a file of
// its group. Those are "present": the rerun of an interrupted restore
// keeps them and fetches only the rest.
type conflictCheck struct {
	root      *os.Root // nil when the target is missing or empty
	present   map[string]bool
	keepSame  bool // look for present entries
	overwrite bool
	exist     []string // would replace an existing entry (needs Overwrite)
	dirs      []string // a directory is where a non-directory goes
	nExist    int
	nDirs     int
}

// maxConflictsNamed is how many paths an error names.
const maxConflictsNamed = 10

func newConflictCheck(target string, overwrite bool) (*conflictCheck, error) {
	c := &conflictCheck{overwrite: overwrite, present: map[string]bool{}}
	fi, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("target %s is not a directory", target)
	}
	root, err := os.OpenRoot(target)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	d, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open target: %w", err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err == io.EOF { // empty: nothing can be in the way
		root.Close()
		return c, nil
	}
	c.root = root
	return c, nil
}

func (c *conflictCheck) close() {
	if c.root != nil {
		c.root.Close()
		c.root = nil
	}
}

// check notes whether the target has something in n's way. Only what the
// write pass would refuse counts; an error reading the target is left to
// the write pass to report where it happens.
func (c *conflictCheck) check(n *Node) {
	if c.root == nil {
		return
	}
	fi, err := c.root.Lstat(n.Path)
	if err != nil {
		return
	}
	if c.keepSame && c.same(n, fi) {
		c.present[n.Path] = true
		return
	}
	switch {
	case n.Type == TypeDir && fi.IsDir():
		// merged into
	case fi.IsDir():
		c.nDirs++
		if len(c.dirs) < maxConflictsNamed {
			c.dirs = append(c.dirs, n.Path)
		}
	case !c.overwrite:
		c.nExist++
		if len(c.exist) < maxConflictsNamed {
			c.exist = append(c.exist, n.Path)
		}
	}
}

// same tells whether fi, the target's entry at n.Path, is what restoring
// n would make of it (see conflictCheck).
func (c *conflictCheck) same(n *Node, fi fs.FileInfo) bool {
	switch {
	case n.Type == TypeSymlink:
		t, err := c.root.Readlink(n.Path)
		return fi.Mode()&fs.ModeSymlink != 0 && err == nil && t == n.Target
	case n.Type != TypeFile || !fi.Mode().IsRegular():
		return false
	case n.LinkTo != "":
		head, err := c.root.Lstat(n.LinkTo)
		return c.present[n.LinkTo] && err == nil && os.SameFile(fi, head)
	case fi.Size() != n.Size:
		return false
	}
	f, err := c.root.OpenFile(n.Path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	for _, x := range n.dataExtents() {
		if m, err := io.Copy(h, io.NewSectionReader(f, x.Offset, x.Length)); err != nil || m != x.Length {
			return false
		}
	}
	return bytes.Equal(h.Sum(nil), n.SHA256)
}

// err describes every conflict found, or is nil.
func (c *conflictCheck) err() error {
	list := func(paths []string, n int) string {
		s := strings.Join(paths, ", ")
		if n > len(paths) {
			s += fmt.Sprintf(" and %d more", n-len(paths))
		}
		return s
	}
	var errs []error
	if c.nExist > 0 {
		errs = append(errs, fmt.Errorf("%d entries already exist in the target: %s (use --overwrite to replace them): %w",
			c.nExist, list(c.exist, c.nExist), fs.ErrExist))
	}
	if c.nDirs > 0 {
		errs = append(errs, fmt.Errorf("%d entries have a directory in their place in the target, which restore never replaces: %s (remove them or restore elsewhere)",
			c.nDirs, list(c.dirs, c.nDirs)))
	}
	return errors.Join(errs...)
}
