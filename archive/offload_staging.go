package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/tapeless/tapeless/storage"
)

// StagedVault wraps a vault backend for restore: every read is first
// downloaded into the staging (recovery) folder and then served from
// there, so nothing is downloaded twice. Point and index objects (small)
// and whole reads are staged whole and checked against their name (the
// SHA-256 of their bytes). A byte range of a pack is staged as that range
// alone (a file of its own in the folder); StageRange checks it while it
// downloads (a Reader authenticates every blob and the pack's key block in
// it), so a range that fails is read from a GRS vault's other copy.
// Writes are refused. Close removes what was staged.
type StagedVault struct {
	remote storage.Backend
	dir    string
	local  storage.Backend

	mu         sync.Mutex
	inflight   map[string]*sync.Mutex
	staged     int64                    // bytes downloaded
	ranges     map[string][]stagedRange // ranges of objects staged in part, by object name
	nRanges    int                      // files made for ranges, for their names
	failedCopy map[int]bool             // copies of a GRS remote whose Stat failed (0 primary, 1 secondary)
	onFetch    func(int64)              // told of every byte downloaded
}

// stagedRange is bytes [off, off+n) of an object, kept in file.
type stagedRange struct {
	off, n int64
	file   string
}

var _ storage.Backend = (*StagedVault)(nil)

// NewStagedVault stages remote's objects in a fresh folder under staging.
func NewStagedVault(ctx context.Context, remote storage.Backend, staging string) (*StagedVault, error) {
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	dir, err := os.MkdirTemp(staging, "restore-")
	if err != nil {
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	local, err := storage.Open(ctx, "file://"+filepath.ToSlash(dir), storage.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	return &StagedVault{remote: remote, dir: dir, local: local, inflight: map[string]*sync.Mutex{},
		ranges: map[string][]stagedRange{}, failedCopy: map[int]bool{}}, nil
}

// Dir is the folder this restore stages into.
func (s *StagedVault) Dir() string { return s.dir }

// StagedBytes is how many bytes were downloaded from the vault.
func (s *StagedVault) StagedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staged
}

// Location names the remote and the staging folder.
func (s *StagedVault) Location() string {
	return s.remote.Location() + " (staged in " + s.dir + ")"
}

// Save is refused: a restore never writes to the vault.
func (s *StagedVault) Save(context.Context, string, io.Reader, int64) error {
	return errors.New("staged vault is read-only")
}

// Remove is refused: a restore never deletes from the vault.
func (s *StagedVault) Remove(context.Context, string) error {
	return errors.New("staged vault is read-only")
}

// Stat reports a staged object as staged. Otherwise it asks the remote;
// when the remote is GRS and its copies disagree on the object's size, one
// of them is damaged, so the object is staged (checked against its name,
// falling back to the other copy) and the staged size is the answer: a
// truncated primary must not fail a restore the secondary can serve.
func (s *StagedVault) Stat(ctx context.Context, name string) (storage.Info, error) {
	if info, err := s.local.Stat(ctx, name); err == nil {
		return info, nil
	}
	info, err := s.remote.Stat(ctx, name)
	r, grs := s.remote.(*storage.ReplicatedBackend)
	if err != nil || !grs {
		return info, err
	}
	if !s.sameSize(ctx, 0, r.Primary(), name, info.Size) || !s.sameSize(ctx, 1, r.Secondary(), name, info.Size) {
		if err := s.stage(ctx, name); err != nil {
			return storage.Info{}, err
		}
		return s.local.Stat(ctx, name)
	}
	return info, nil
}

// sameSize reports whether copy number i (c) holds name with size bytes,
// or cannot say. An unreachable copy is the remote's business; it is asked
// no more, so a copy that times out costs one timeout, not one per object.
func (s *StagedVault) sameSize(ctx context.Context, i int, c storage.Backend, name string, size int64) bool {
	s.mu.Lock()
	skip := s.failedCopy[i]
	s.mu.Unlock()
	if skip {
		return true
	}
	ci, err := c.Stat(ctx, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
		s.mu.Lock()
		s.failedCopy[i] = true
		s.mu.Unlock()
	}
	return err != nil || ci.Size == size
}

// List lists the remote.
func (s *StagedVault) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return s.remote.List(ctx, prefix, fn)
}

// Load serves the requested range from the staging folder: from the
// whole staged object, from a staged range holding it, or, staging it
// first, from a new range (a range of a pack) or the whole object
// (anything else: point and index objects are small and checked whole).
func (s *StagedVault) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if _, err := s.local.Stat(ctx, name); err == nil {
		return s.local.Load(ctx, name, offset, length, fn)
	}
	if offset < 0 || length < 0 || !strings.HasPrefix(name, PacksPrefix) {
		if err := s.stage(ctx, name); err != nil {
			return err
		}
		return s.local.Load(ctx, name, offset, length, fn)
	}
	if err := s.StageRange(ctx, name, offset, length, nil); err != nil {
		return err
	}
	return s.loadRange(name, offset, length, fn)
}

// SetFetchReport makes fn be called with the count of bytes each download
// brings, as they come (for a progress bar); set it before reading.
func (s *StagedVault) SetFetchReport(fn func(int64)) {
	s.mu.Lock()
	s.onFetch = fn
	s.mu.Unlock()
}

// covering returns the staged range holding [off, off+n) of name.
func (s *StagedVault) covering(name string, off, n int64) (stagedRange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.ranges[name]
	// Ranges are sorted by offset; the last one starting at or before off
	// is the only candidate worth a look first, but staged ranges may
	// overlap, so look back until one covers.
	i := sort.Search(len(rs), func(i int) bool { return rs[i].off > off })
	for j := i - 1; j >= 0; j-- {
		if rs[j].off+rs[j].n >= off+n {
			return rs[j], true
		}
	}
	return stagedRange{}, false
}

func (s *StagedVault) loadRange(name string, off, n int64, fn func(io.Reader) error) error {
	sr, ok := s.covering(name, off, n)
	if !ok {
		return fmt.Errorf("load %s: range %d+%d is not staged", name, off, n)
	}
	f, err := os.Open(sr.file)
	if err != nil {
		return fmt.Errorf("load %s: staged range: %w", name, err)
	}
	defer f.Close()
	return fn(io.NewSectionReader(f, off-sr.off, n))
}

// StageRange downloads bytes [off, off+n) of name into the staging folder
// unless a staged range holds them already. check, when set, reads the
// range as it arrives and says whether it is good; an error from it is
// returned wrapping storage.ErrCorrupt (unless it wraps it already), which
// makes a GRS remote read the range from its other copy, and nothing of
// the failed attempt is kept.
func (s *StagedVault) StageRange(ctx context.Context, name string, off, n int64, check func(io.Reader) error) error {
	if _, ok := s.covering(name, off, n); ok {
		return nil
	}
	m := s.lockName(name)
	defer m.Unlock()
	if _, ok := s.covering(name, off, n); ok {
		return nil
	}
	s.mu.Lock()
	s.nRanges++
	file := filepath.Join(s.dir, fmt.Sprintf(".range-%d", s.nRanges))
	report := s.onFetch
	s.mu.Unlock()
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("stage %s: %w", name, err)
	}
	defer f.Close()
	var got int64
	err = s.remote.Load(ctx, name, off, n, func(r io.Reader) error {
		// A GRS read calls this again for the secondary copy when the
		// primary's range fails its check: start clean each time.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		cr := &fetchCounter{r: r, report: report}
		in := io.TeeReader(cr, f)
		if check != nil {
			if err := check(in); err != nil {
				if !errors.Is(err, storage.ErrCorrupt) {
					err = fmt.Errorf("%w: %w", storage.ErrCorrupt, err)
				}
				return err
			}
		}
		if _, err := io.Copy(io.Discard, in); err != nil {
			return err
		}
		got = cr.n
		if got != n {
			return fmt.Errorf("%w: %d bytes at offset %d, asked for %d", storage.ErrCorrupt, got, off, n)
		}
		return nil
	})
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("stage %s (%d bytes at %d) from %s: %w", name, n, off, s.remote.Location(), err)
	}
	s.mu.Lock()
	s.staged += got
	rs := append(s.ranges[name], stagedRange{off: off, n: n, file: file})
	sort.Slice(rs, func(i, j int) bool { return rs[i].off < rs[j].off })
	s.ranges[name] = rs
	s.mu.Unlock()
	return nil
}

// fetchCounter counts the bytes read through it and reports them.
type fetchCounter struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *fetchCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.report != nil && n > 0 {
		c.report(int64(n))
	}
	return n, err
}

// lockName returns name's staging mutex, locked: one download of an
// object at a time.
func (s *StagedVault) lockName(name string) *sync.Mutex {
	s.mu.Lock()
	m, ok := s.inflight[name]
	if !ok {
		m = &sync.Mutex{}
		s.inflight[name] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m
}

func (s *StagedVault) stage(ctx context.Context, name string) error {
	m := s.lockName(name)
	defer m.Unlock()
	if _, err := s.local.Stat(ctx, name); err == nil {
		return nil
	}
	id, err := idFromName(name)
	if err != nil {
		return fmt.Errorf("stage %s: %w", name, err)
	}
	// The size comes from the bytes read, never from a Stat: a GRS read
	// that falls back to the secondary (the primary's copy is damaged,
	// perhaps truncated) must stage the secondary's bytes whole.
	var size int64
	err = s.remote.Load(ctx, name, 0, -1, func(r io.Reader) error {
		// A GRS read calls this again for the secondary copy when the
		// primary's bytes turn out not to match their name: start clean
		// each time. ConfirmSHA256 below checks what finally landed.
		if err := s.local.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		var err error
		s.mu.Lock()
		report := s.onFetch
		s.mu.Unlock()
		size, err = s.saveWhole(ctx, name, &fetchCounter{r: r, report: report})
		return err
	})
	if err != nil {
		return fmt.Errorf("stage %s from %s: %w", name, s.remote.Location(), err)
	}
	if err := storage.ConfirmSHA256(ctx, s.local, name, size, id); err != nil {
		s.local.Remove(ctx, name)
		return fmt.Errorf("stage %s: %w: %w", name, ErrAuthentication, err)
	}
	s.mu.Lock()
	s.staged += size
	s.mu.Unlock()
	return nil
}

// saveWhole stages everything r holds as name and returns its size: the
// bytes go to a temporary file first, since the staged copy's Save needs
// the size up front.
func (s *StagedVault) saveWhole(ctx context.Context, name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(s.dir, ".download-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, r)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return n, s.local.Save(ctx, name, f, n)
}

// Close removes the staged objects. The remote stays open: it belongs to
// the caller.
func (s *StagedVault) Close() error {
	err := s.local.Close()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}
