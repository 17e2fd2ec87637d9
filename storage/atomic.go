package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AtomicFile is a file being written under a temporary name in the folder
// of its final name, which it gets only once its data is complete and
// synced: a crash leaves the old file (or none) and at most a temporary
// file named ".tapeless-tmp-NAME-*", never a partial file under the final
// name. Every local file tapeless writes whole goes through it.
//
// AtomicFile has Write but no ReadFrom on purpose: io.Copy then uses the
// caller's buffer and reader, so a reader that watches a context is asked
// between every chunk.
type AtomicFile struct {
	f    *os.File
	path string
	done bool // committed or discarded: Close has nothing left to do
}

// CreateAtomic starts writing path with mode perm, set on the temporary
// file before the first byte so the data is never readable wider. The
// folder must exist. Write the data, then call Commit (replace) or
// CommitNew (never replace); Close discards whatever was not committed,
// so `defer f.Close()` is right on every path.
func CreateAtomic(path string, perm fs.FileMode) (*AtomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &AtomicFile{f: f, path: path}, nil
}

// Write appends b to the pending data.
func (a *AtomicFile) Write(b []byte) (int, error) { return a.f.Write(b) }

// Sync flushes the pending data to disk. Commit and CommitNew do it too;
// call it first to do the slow part before a last check of a context.
func (a *AtomicFile) Sync() error {
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", a.f.Name(), err)
	}
	return nil
}

// finish syncs and closes the temporary file, ready to be given its name.
func (a *AtomicFile) finish() error {
	if a.done {
		return fmt.Errorf("write %s: %w", a.path, fs.ErrClosed)
	}
	if err := a.Sync(); err != nil {
		return err
	}
	a.done = true
	if err := a.f.Close(); err != nil {
		os.Remove(a.f.Name())
		return err
	}
	return nil
}

// Commit gives the data the final name, replacing a file already there
// (rename(2): a reader sees the old file or the new one, whole), and syncs
// the folder so the new name survives a crash.
func (a *AtomicFile) Commit() error {
	if err := a.finish(); err != nil {
		return err
	}
	if err := os.Rename(a.f.Name(), a.path); err != nil {
		os.Remove(a.f.Name())
		return err
	}
	return syncDir(filepath.Dir(a.path))
}

// CommitNew gives the data the final name only if no file has it: link(2)
// fails when the name exists, also against another process doing the same
// at the same moment, so an existing file is never replaced and the error
// matches fs.ErrExist. The folder is synced afterwards.
func (a *AtomicFile) CommitNew() error {
	if err := a.finish(); err != nil {
		return err
	}
	tmp := a.f.Name()
	if err := os.Link(tmp, a.path); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return syncDir(filepath.Dir(a.path))
}

// Close discards the data unless it was committed; it is safe to call more
// than once and after a commit.
func (a *AtomicFile) Close() error {
	if a.done {
		return nil
	}
	a.done = true
	err := a.f.Close()
	if rerr := os.Remove(a.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// WriteFileAtomic replaces path with a file of mode perm holding data, so
// a reader or a crash sees the old file or the new one, never a mix.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	a, err := CreateAtomic(path, perm)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Write(data); err != nil {
		return err
	}
	return a.Commit()
}

// WriteNewFileAtomic creates path as a file of mode perm holding data, as
// WriteFileAtomic does, but never replaces an existing file: then it
// returns an error matching fs.ErrExist and leaves the file as it was.
func WriteNewFileAtomic(path string, data []byte, perm fs.FileMode) error {
	a, err := CreateAtomic(path, perm)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Write(data); err != nil {
		return err
	}
	return a.CommitNew()
}

// RemoveAtomicLeftovers deletes the temporary files that atomic writes of
// path killed before they finished left beside it. Call it only while no
// other process can be writing path (a lock guarantees that), since a live
// write's temporary file looks the same.
func RemoveAtomicLeftovers(path string) error {
	dir, prefix := filepath.Dir(path), tmpPrefix+filepath.Base(path)+"-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
