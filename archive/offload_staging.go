package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tapeless/tapeless/storage"
)

// StagedVault wraps a vault backend for restore: every object read is
// first downloaded whole into the staging (recovery) folder, checked
// against its name (the SHA-256 of its bytes), and then served from there,
// so a restore reads each pack from the vault once however many blobs it
// needs, and never reads bytes that do not match. Writes are refused.
// Close removes what was staged.
type StagedVault struct {
	remote storage.Backend
	dir    string
	local  storage.Backend

	mu         sync.Mutex
	inflight   map[string]*sync.Mutex
	staged     int64        // bytes downloaded
	failedCopy map[int]bool // copies of a GRS remote whose Stat failed (0 primary, 1 secondary)
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
	return &StagedVault{remote: remote, dir: dir, local: local, inflight: map[string]*sync.Mutex{}, failedCopy: map[int]bool{}}, nil
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

// Load stages name (once) and reads the requested range from the staged copy.
func (s *StagedVault) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := s.stage(ctx, name); err != nil {
		return err
	}
	return s.local.Load(ctx, name, offset, length, fn)
}

func (s *StagedVault) stage(ctx context.Context, name string) error {
	s.mu.Lock()
	m, ok := s.inflight[name]
	if !ok {
		m = &sync.Mutex{}
		s.inflight[name] = m
	}
	s.mu.Unlock()
	m.Lock()
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
		size, err = s.saveWhole(ctx, name, r)
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
