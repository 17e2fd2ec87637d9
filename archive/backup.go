package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapeless/tapeless/storage/vault"
)

// BackupOptions configures Backup.
type BackupOptions struct {
	// Sources are the paths to back up (see Walk for how they are named
	// inside the point).
	Sources []string
	// Name is the data source name the point is filed under; empty means
	// the absolute source path(s).
	Name string
	// Exclude, ExcludeFiles, IgnoreFile, ExcludeCaches and OneFileSystem
	// are as in WalkOptions; invalid patterns and unreadable exclude files
	// stop the backup before anything is written.
	Exclude       []string
	ExcludeFiles  []string
	IgnoreFile    string
	ExcludeCaches bool
	OneFileSystem bool
	// ScratchDir is where the scratch-space rule is checked; empty means
	// the store directory, where the backup writes.
	ScratchDir string
	// Workers is the number of files read in parallel (default 2 to 4,
	// by CPU count).
	Workers int
	// Progress, when set, is called about every ProgressEvery and once at
	// the end, from a single goroutine.
	Progress      func(BackupProgress)
	ProgressEvery time.Duration
	// OnError is told about every entry that is skipped because it cannot
	// be read; the backup goes on. Returning an error aborts it.
	OnError func(path string, err error) error
	// Now is the point's time; zero means time.Now().
	Now time.Time
	// NoCache makes the backup read every file even when the file cache
	// says it is unchanged.
	NoCache bool
}

// BackupProgress is a snapshot of a running backup.
type BackupProgress struct {
	Files, Dirs int64 // entries done
	Bytes       int64 // logical bytes of files done (read or unchanged)
	BytesRead   int64 // bytes actually read from files
	TotalFiles  int64 // from the size scan before the backup
	TotalBytes  int64
	Elapsed     time.Duration
}

// FileError is one entry the backup skipped or flagged.
type FileError struct {
	Path string `json:"path"`
	Err  string `json:"error"`
}

// BackupSummary reports what a backup did.
type BackupSummary struct {
	Point  ID        `json:"id"`
	Parent *ID       `json:"parent_id,omitempty"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`

	Files     int64 `json:"files"`
	Dirs      int64 `json:"dirs"`
	Symlinks  int64 `json:"symlinks"`
	HardLinks int64 `json:"hard_links"`   // second and later paths of a group
	Bytes     int64 `json:"source_bytes"` // logical size of all files

	FilesRead      int64 `json:"files_read"`
	FilesUnchanged int64 `json:"files_unchanged"` // taken from the file cache, not read
	BytesRead      int64 `json:"read_bytes"`
	NewChunks      int64 `json:"new_chunks"`
	NewPlainBytes  int64 `json:"new_plain_bytes"`  // plaintext of chunks not already stored
	NewStoredBytes int64 `json:"new_stored_bytes"` // what they took in the store
	TreeBlobs      int   `json:"tree_blobs"`

	// DedupRatio is bytes read per new plaintext byte; CompressionRatio is
	// new plaintext per new stored byte. 0 when undefined.
	DedupRatio       float64 `json:"dedup_ratio"`
	CompressionRatio float64 `json:"compression_ratio"`

	Special  int64 `json:"special_skipped"` // devices, sockets, FIFOs
	Excluded int64 `json:"excluded"`
	// ExcludedBy splits Excluded by reason.
	ExcludedBy ExcludeCounts `json:"excluded_by"`
	Changed    []string      `json:"changed_during_read"`
	Errors     []FileError   `json:"errors"`
	// ErrorCount counts all skipped entries; Errors keeps the first
	// maxReportedErrors of them.
	ErrorCount int64 `json:"error_count"`
	// MissingPacks are packs the dedup index named but the store no
	// longer holds (removed or truncated behind its back): their data was
	// stored again for this point, and the older points that need them
	// are damaged (verify names them).
	MissingPacks []ID          `json:"missing_packs,omitempty"`
	Duration     time.Duration `json:"duration_ns"`
}

// Partial reports whether something was skipped or stored with a warning,
// or the store was found damaged, which the command line turns into exit
// code 3.
func (s *BackupSummary) Partial() bool {
	return s.ErrorCount > 0 || len(s.Changed) > 0 || len(s.MissingPacks) > 0
}

const maxReportedErrors = 1000

// changeRetries is how often a file that changes while being read is read
// again before it is stored marked as changed.
const changeRetries = 2

// Backup makes a recovery point of o.Sources in s. Files whose size, mtime,
// ctime and inode match the file cache are not read again. Unreadable
// entries are reported through o.OnError, skipped and counted; the point
// is still made. Nothing is written before the source size limit and the
// scratch-space rule have been checked.
//
// Memory does not grow with the data: with W workers the buffers live at
// once are the pack being filled and at most maxBackgroundPacks being
// written (each DefaultPackSize plus an eighth), one chunker window per
// reader (2×ChunkMax), at most 3W chunks in flight (one per reader blocked
// on the queue, W queued, W being compressed; ChunkMax each) and W
// compression buffers: about 125 MiB live at W=2 in a heap profile taken
// mid-backup. The dedup index and the file
// cache stay in bbolt on disk (its pages are mapped, not held); the point's
// reference set keeps one entry per pack plus the blobs not yet committed
// (see refsSweepAt); what grows with the data is the list of chunk IDs of
// each file being read and of the point's tree blobs (32 bytes per chunk).
// With the garbage collector's default headroom and the garbage of
// per-chunk buffers the process peaks at two to three times that: 320–410
// MiB RSS over runs of the 1 GiB benchmark (make bench), none of it
// proportional to the tree. Keeping pack buffers across collections
// instead of in a sync.Pool did not measurably lower it.
func Backup(ctx context.Context, s *Store, o BackupOptions) (*BackupSummary, error) {
	sum, err := backupPoint(ctx, s, o)
	if errors.Is(err, syscall.ENOSPC) {
		// No point was saved (the point object is written last) and
		// nothing half-written stays: say what to do about it.
		err = fmt.Errorf("%w\nthe disk holding the store %s is full; no point was made and earlier points are intact: free space there (or move the store), then back up again", err, s.Dir())
	}
	return sum, err
}

func backupPoint(ctx context.Context, s *Store, o BackupOptions) (*BackupSummary, error) {
	start := time.Now()
	now := o.Now
	if now.IsZero() {
		now = start
	}
	name := o.Name
	if name == "" {
		var abs []string
		for _, src := range o.Sources {
			a, err := filepath.Abs(src)
			if err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
			abs = append(abs, a)
		}
		name = strings.Join(abs, ",")
	}

	// Size scan: the limits must hold before anything is written, and the
	// totals give the progress bar its ETA.
	totalFiles, totalBytes, err := scanSize(ctx, o.Sources, o.walkOptions(storePaths(s)))
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", name, err)
	}
	if err := vault.CheckSourceSize(name, totalBytes); err != nil {
		return nil, err
	}
	scratch := o.ScratchDir
	if scratch == "" {
		scratch = s.Dir()
	}
	if err := vault.CheckScratch(scratch, totalBytes); err != nil {
		var se *vault.ScratchSpaceError
		if errors.As(err, &se) && o.ScratchDir == "" {
			se.Hint = "free space in the store or move it"
		}
		return nil, err
	}

	var parent *ID
	// The parent is informational: a point that cannot be read (named in
	// the error) must not stop new backups, so the error is ignored.
	points, _ := s.ListPoints(ctx)
	for i := range points {
		p := &points[i]
		if p.Source == name && (parent == nil || p.Time.After(pointTime(points, *parent))) {
			id := p.ID
			parent = &id
		}
	}

	// Check each pack the dedup index names afresh in this run: one
	// that went missing since must not be deduplicated against.
	s.ResetPackChecks()
	lostBefore := len(s.LostPacks())
	var cache *fileCache
	if !o.NoCache {
		cache, err = newFileCache(s.DB(), name, uint64(now.UnixNano()))
		if err != nil {
			return nil, err
		}
	}
	b := &backupRun{
		ctx:   ctx,
		s:     s,
		o:     o,
		cache: cache,
		refs:  s.NewRefs(),
		sum:   &BackupSummary{Source: name, Time: now, Parent: parent},
	}
	b.progress.TotalFiles, b.progress.TotalBytes = totalFiles, totalBytes
	stopProgress := b.startProgress(start)
	treeIDs, err := b.run()
	stopProgress()
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", name, err)
	}
	if err := b.refs.AddAll(ctx, BlobTree, treeIDs); err != nil {
		return nil, fmt.Errorf("backup %s: %w", name, err)
	}
	host, _ := os.Hostname()
	sum := b.sum
	h := PointHeader{
		Source: name,
		Time:   now,
		Host:   host,
		Files:  sum.Files,
		Bytes:  sum.Bytes,
		Tree:   treeIDs,
		Parent: parent,
		Refs:   b.refs,
	}
	id, err := s.SavePoint(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", name, err)
	}
	sum.Point = id
	sum.MissingPacks = s.LostPacks()[lostBefore:]
	if cache != nil {
		// Only after the point is saved: a failed backup leaves the old
		// entries, which stay valid because they are checked against the
		// index before use.
		if err := cache.sweep(); err != nil {
			return nil, fmt.Errorf("backup %s: %w", name, err)
		}
	}
	sum.TreeBlobs = len(treeIDs)
	if sum.NewPlainBytes > 0 {
		sum.DedupRatio = float64(sum.BytesRead) / float64(sum.NewPlainBytes)
	}
	if sum.NewStoredBytes > 0 {
		sum.CompressionRatio = float64(sum.NewPlainBytes) / float64(sum.NewStoredBytes)
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

func pointTime(points []PointHeader, id ID) time.Time {
	for _, p := range points {
		if p.ID == id {
			return p.Time
		}
	}
	return time.Time{}
}

// walkOptions are the walk's options for a backup that skips the paths
// skip (the store).
func (o *BackupOptions) walkOptions(skip []string) WalkOptions {
	return WalkOptions{
		Exclude:       o.Exclude,
		ExcludeFiles:  o.ExcludeFiles,
		IgnoreFile:    o.IgnoreFile,
		ExcludeCaches: o.ExcludeCaches,
		OneFileSystem: o.OneFileSystem,
		SkipPaths:     skip,
	}
}

// scanSize counts the files and logical bytes under sources.
func scanSize(ctx context.Context, sources []string, o WalkOptions) (files, bytes int64, err error) {
	o.NoXattrs = true
	_, err = Walk(ctx, sources, o, func(e *Entry) error {
		if e.Type == TypeFile && e.LinkTo == "" {
			files++
			bytes += e.Size
		}
		return nil
	})
	return files, bytes, err
}

// storePaths names the store directory as a walk may meet it: as given and
// with symlinks resolved.
func storePaths(s *Store) []string {
	out := []string{s.Dir()}
	if p, err := filepath.EvalSymlinks(s.Dir()); err == nil && p != s.Dir() {
		out = append(out, p)
	}
	return out
}

// backupRun is the state of one Backup call.
type backupRun struct {
	ctx   context.Context
	s     *Store
	o     BackupOptions
	cache *fileCache
	refs  *Refs
	blobs chan blobJob // chunks for the blob workers

	mu  sync.Mutex // guards sum
	sum *BackupSummary

	progress BackupProgress // totals only; counters below
	files    atomic.Int64
	dirs     atomic.Int64
	bytes    atomic.Int64
	read     atomic.Int64
}

func (b *backupRun) snapshot(start time.Time) BackupProgress {
	p := b.progress
	p.Files, p.Dirs = b.files.Load(), b.dirs.Load()
	p.Bytes, p.BytesRead = b.bytes.Load(), b.read.Load()
	p.Elapsed = time.Since(start)
	return p
}

// startProgress reports progress periodically until the returned function
// is called, which sends a final report.
func (b *backupRun) startProgress(start time.Time) func() {
	if b.o.Progress == nil {
		return func() {}
	}
	every := b.o.ProgressEvery
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.o.Progress(b.snapshot(start))
			case <-done:
				b.o.Progress(b.snapshot(start))
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// addError records a skipped entry and asks OnError whether to go on.
func (b *backupRun) addError(path string, err error) error {
	b.mu.Lock()
	b.sum.ErrorCount++
	if len(b.sum.Errors) < maxReportedErrors {
		b.sum.Errors = append(b.sum.Errors, FileError{Path: path, Err: err.Error()})
	}
	b.mu.Unlock()
	if b.o.OnError != nil {
		return b.o.OnError(path, err)
	}
	return nil
}

// item is one walked entry on its way to the manifest, in walk order.
type item struct {
	e    *Entry
	node *Node
	done chan struct{} // closed when node (or err) is final
	err  error         // the entry is skipped
}

// run walks, reads and writes the manifest; it returns the tree blob IDs.
func (b *backupRun) run() ([]ID, error) {
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()

	workers := b.o.Workers
	if workers <= 0 {
		workers = min(max(runtime.GOMAXPROCS(0), 2), 4)
	}
	order := make(chan *item, 4096)
	work := make(chan *item, workers*2)

	var walkErr error
	var walkStats WalkStats
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		wo := b.o.walkOptions(storePaths(b.s)) // never back up the store into itself
		wo.OnError = b.addError
		walkStats, walkErr = Walk(ctx, b.o.Sources, wo, func(e *Entry) error {
			it := &item{e: e, node: nodeFromEntry(e), done: make(chan struct{})}
			needsRead := false
			if e.Type == TypeFile && e.LinkTo == "" {
				needsRead = !b.fromCache(ctx, it)
			}
			select {
			case order <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
			if !needsRead {
				close(it.done)
				return nil
			}
			select {
			case work <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
	}()
	b.blobs = make(chan blobJob, workers)
	var blobWG sync.WaitGroup
	for range workers {
		blobWG.Add(1)
		go func() {
			defer blobWG.Done()
			b.blobWorker(ctx)
		}()
	}
	defer func() { // after the file readers, which wait for their chunks
		close(b.blobs)
		blobWG.Wait()
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				it.err = b.readFile(ctx, it)
				close(it.done)
			}
		}()
	}

	treeIDs, err := b.writeManifest(ctx, order)
	if err != nil {
		cancel()
	}
	for range order { // drain so the walker can finish
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if walkErr != nil {
		return nil, walkErr
	}
	b.sum.Special, b.sum.Excluded, b.sum.ExcludedBy = walkStats.Special, walkStats.Excluded, walkStats.ExcludedBy
	return treeIDs, nil
}

// nodeFromEntry copies the metadata of a walked entry into a manifest node.
func nodeFromEntry(e *Entry) *Node {
	n := &Node{
		Path:   e.Path,
		Type:   e.Type,
		Perm:   e.Perm,
		UID:    e.UID,
		GID:    e.GID,
		User:   e.User,
		Group:  e.Group,
		Mtime:  e.Mtime,
		Target: e.Target,
		LinkTo: e.LinkTo,
		Xattrs: e.Xattrs,
	}
	if e.Type == TypeFile && e.LinkTo == "" {
		n.Size = e.Size
		if e.Nlink > 1 {
			n.Nlink = e.Nlink
		}
	}
	return n
}

// fromCache fills the node's content from the file cache when the file is
// unchanged and every chunk is still in the store.
func (b *backupRun) fromCache(ctx context.Context, it *item) bool {
	if b.cache == nil {
		return false
	}
	c := b.cache.get(it.e.OSPath)
	if c == nil || !c.matches(it.e) {
		return false
	}
	for _, id := range c.Chunks {
		ok, err := b.s.Has(ctx, id)
		if err != nil || !ok {
			return false
		}
	}
	it.node.Extents = c.extents()
	it.node.Chunks = c.Chunks
	it.node.SHA256 = c.SHA256
	b.bytes.Add(it.e.Size)
	b.mu.Lock()
	b.sum.FilesUnchanged++
	b.mu.Unlock()
	return true
}

// writeManifest consumes items in walk order, waits for each to be final,
// and streams the manifest into tree blobs.
func (b *backupRun) writeManifest(ctx context.Context, order <-chan *item) ([]ID, error) {
	tw := newTreeWriter(ctx, b.s)
	mw, err := NewManifestWriter(tw)
	if err != nil {
		tw.abort(err)
		return nil, err
	}
	failed := map[string]bool{} // paths skipped, so their hard links are too
	for it := range order {
		select {
		case <-it.done:
		case <-ctx.Done():
			tw.abort(ctx.Err())
			return nil, ctx.Err()
		}
		e, n := it.e, it.node
		if it.err == nil && n.LinkTo != "" && failed[n.LinkTo] {
			it.err = fmt.Errorf("hard link to %s, which was skipped", n.LinkTo)
		}
		if it.err != nil {
			failed[e.Path] = true
			if e.Type == TypeFile && n.LinkTo == "" {
				b.bytes.Add(e.Size)
			}
			if err := b.addError(e.OSPath, it.err); err != nil {
				tw.abort(err)
				return nil, err
			}
			continue
		}
		if err := mw.Write(n); err != nil {
			tw.abort(err)
			return nil, err
		}
		if len(n.Chunks) > 0 {
			if err := b.refs.AddAll(ctx, BlobData, n.Chunks); err != nil {
				tw.abort(err)
				return nil, err
			}
		}
		switch {
		case e.Type == TypeDir:
			b.sum.Dirs++
			b.dirs.Add(1)
		case e.Type == TypeSymlink:
			b.sum.Symlinks++
		case n.LinkTo != "":
			b.sum.HardLinks++
		default:
			b.sum.Files++
			b.sum.Bytes += n.Size
			b.files.Add(1)
			if n.Changed {
				b.mu.Lock()
				b.sum.Changed = append(b.sum.Changed, e.OSPath)
				b.mu.Unlock()
			} else if b.cache != nil {
				if err := b.cache.put(e.OSPath, newCacheEntry(e, n)); err != nil {
					tw.abort(err)
					return nil, err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		tw.abort(err)
		return nil, err
	}
	if err := mw.Close(); err != nil {
		tw.abort(err)
		return nil, err
	}
	return tw.close()
}

// Test seams: openForBackup opens files to read, testHookBeforeRead runs
// between the first fstat of an open file and reading it, testHookAfterRead
// between reading a file and checking that it did not change.
var (
	openForBackup      = openNoFollow
	testHookBeforeRead func(path string)
	testHookAfterRead  func(path string)
)

// openNoFollow opens a regular file for reading without following a
// symlink and, when permitted, without updating its atime.
func openNoFollow(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|oNoatime, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// fileIdentity is what must not move while a file is read.
type fileIdentity struct {
	size, mtime, ctime int64
	ino                uint64
}

func fstatIdentity(f *os.File) (fileIdentity, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileIdentity{}, false, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fileIdentity{st.Size, statMtime(&st), statCtime(&st), uint64(st.Ino)}, st.Mode&unix.S_IFMT == unix.S_IFREG, nil
}

// readFile reads and stores one file's content, retrying a file that changes
// while being read; one that never settles is stored marked Changed.
func (b *backupRun) readFile(ctx context.Context, it *item) error {
	for attempt := 0; ; attempt++ {
		changed, err := b.readOnce(ctx, it)
		if err != nil || !changed {
			return err
		}
		if attempt == changeRetries {
			it.node.Changed = true
			return nil
		}
	}
}

// readOnce reads the file once; changed reports that its identity moved
// between the open and the end of the read.
func (b *backupRun) readOnce(ctx context.Context, it *item) (changed bool, err error) {
	e, n := it.e, it.node
	f, err := openForBackup(e.OSPath)
	if err != nil {
		return false, err
	}
	defer f.Close()
	before, regular, err := fstatIdentity(f)
	if err != nil {
		return false, err
	}
	if !regular {
		return false, fmt.Errorf("%s is no longer a regular file", e.OSPath)
	}
	// Metadata follows what is actually read, not the earlier lstat.
	e.Size, e.Mtime, e.Ctime, e.Ino = before.size, before.mtime, before.ctime, before.ino
	n.Size, n.Mtime = before.size, before.mtime

	var extents []Extent
	if e.Sparse() || (before.size > 0 && e.Blocks == 0) {
		if extents, err = DataExtents(f, before.size); err != nil {
			return false, err
		}
		if len(extents) == 1 && extents[0] == (Extent{0, before.size}) {
			extents = nil
		} else if extents == nil {
			extents = []Extent{}
		}
	}
	want := before.size
	if extents != nil {
		want = 0
		for _, x := range extents {
			want += x.Length
		}
	}
	if testHookBeforeRead != nil {
		testHookBeforeRead(e.OSPath)
	}
	h := sha256.New()
	cr := &countingReader{r: dataStream(f, extents, before.size), h: h, progress: &b.read, total: &b.bytes}
	chunks, err := b.storeChunks(ctx, cr)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", e.OSPath, err)
	}
	if testHookAfterRead != nil {
		testHookAfterRead(e.OSPath)
	}
	after, _, err := fstatIdentity(f)
	if err != nil {
		return false, err
	}
	changed = after != before || cr.n != want
	if cr.n != want {
		// The file shrank under us: record what was actually read so the
		// node stays self-consistent.
		extents = clipExtents(extents, cr.n)
		if extents == nil {
			n.Size = cr.n
		}
	}
	n.Extents, n.Chunks, n.SHA256 = extents, chunks, h.Sum(nil)
	b.mu.Lock()
	b.sum.FilesRead++
	b.sum.BytesRead += cr.n
	b.mu.Unlock()
	return changed, nil
}

// dataStream returns the concatenated data extents of f.
func dataStream(f *os.File, extents []Extent, size int64) io.Reader {
	if extents == nil {
		return io.LimitReader(f, size)
	}
	rs := make([]io.Reader, 0, len(extents))
	for _, x := range extents {
		rs = append(rs, io.NewSectionReader(f, x.Offset, x.Length))
	}
	return io.MultiReader(rs...)
}

// clipExtents keeps the first n bytes of the data stream described by
// extents (nil, the whole file, stays nil).
func clipExtents(extents []Extent, n int64) []Extent {
	if extents == nil {
		return nil
	}
	out := []Extent{}
	for _, x := range extents {
		if n <= 0 {
			break
		}
		l := min(x.Length, n)
		out = append(out, Extent{x.Offset, l})
		n -= l
	}
	return out
}

// countingReader hashes and counts what passes through it.
type countingReader struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	progress *atomic.Int64
	total    *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.h.Write(p[:n])
		c.n += int64(n)
		c.progress.Add(int64(n))
		c.total.Add(int64(n))
	}
	return n, err
}

// blobJob is one chunk handed to the blob workers.
type blobJob struct {
	buf  *[]byte // from chunkBufs; returned when stored
	done func(id ID, err error)
}

// blobWorker stores chunks for every file reader, so one big file still
// compresses on every core.
func (b *backupRun) blobWorker(ctx context.Context) {
	for j := range b.blobs {
		data := *j.buf
		id, stored, err := b.s.AddBlob(ctx, BlobData, data)
		if err == nil && stored > 0 {
			b.mu.Lock()
			b.sum.NewChunks++
			b.sum.NewPlainBytes += int64(len(data))
			b.sum.NewStoredBytes += stored
			b.mu.Unlock()
		}
		*j.buf = data[:0]
		chunkBufs.Put(j.buf)
		j.done(id, err)
	}
}

// storeChunks cuts r into content-defined chunks and has the blob workers
// store each as a data blob; it returns their IDs in order once all are
// stored.
func (b *backupRun) storeChunks(ctx context.Context, r io.Reader) ([]ID, error) {
	var (
		mu       sync.Mutex // guards ids and firstErr
		ids      []ID
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	err := forEachChunk(r, func(chunk []byte) error {
		if err := failed(); err != nil {
			return err
		}
		bp := chunkBufs.Get().(*[]byte)
		*bp = append((*bp)[:0], chunk...)
		mu.Lock()
		idx := len(ids)
		ids = append(ids, ID{})
		mu.Unlock()
		wg.Add(1)
		job := blobJob{buf: bp, done: func(id ID, err error) {
			mu.Lock()
			ids[idx] = id
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			wg.Done()
		}}
		select {
		case b.blobs <- job:
			return nil
		case <-ctx.Done():
			chunkBufs.Put(bp)
			wg.Done()
			return ctx.Err()
		}
	})
	wg.Wait()
	if err == nil {
		err = failed()
	}
	if err != nil {
		return nil, err
	}
	return ids, nil
}
