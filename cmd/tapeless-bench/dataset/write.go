package dataset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
)

// Same reports whether two specs give the same file on disk.
func Same(a, b *File) bool {
	return a.Path == b.Path && a.Mode == b.Mode && a.MTime.Equal(b.MTime) && slices.Equal(a.Segs, b.Segs)
}

// Diff lists what turns the tree of from into the tree of to: files whose
// spec changed, files new in to, files gone from it (paths, sorted).
func Diff(from, to *Plan) (changed, added, removed []string) {
	i, j := 0, 0
	for i < len(from.Files) || j < len(to.Files) {
		switch {
		case j == len(to.Files) || (i < len(from.Files) && from.Files[i].Path < to.Files[j].Path):
			removed = append(removed, from.Files[i].Path)
			i++
		case i == len(from.Files) || to.Files[j].Path < from.Files[i].Path:
			added = append(added, to.Files[j].Path)
			j++
		default:
			if !Same(&from.Files[i], &to.Files[j]) {
				changed = append(changed, to.Files[j].Path)
			}
			i++
			j++
		}
	}
	return changed, added, removed
}

// Write creates the tree of p under dir (which may exist), workers files
// at a time (2 × GOMAXPROCS when < 1).
func Write(ctx context.Context, dir string, p *Plan, workers int) error {
	all := make([]*File, len(p.Files))
	for i := range p.Files {
		all[i] = &p.Files[i]
	}
	return write(ctx, dir, p, all, workers)
}

// Apply turns dir, which holds the tree of from, into the tree of to: it
// removes the files to lacks and writes the files that are new or changed.
func Apply(ctx context.Context, dir string, from, to *Plan, workers int) error {
	changed, added, removed := Diff(from, to)
	for _, path := range removed {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(path))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dataset: remove %s: %w", path, err)
		}
	}
	var files []*File
	for _, path := range append(changed, added...) {
		files = append(files, to.File(path))
	}
	return write(ctx, dir, to, files, workers)
}

func write(ctx context.Context, dir string, p *Plan, files []*File, workers int) error {
	for _, d := range p.Dirs {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
	}
	if workers < 1 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	// Largest first, so a 64 MiB file does not start last and run alone.
	files = slices.Clone(files)
	slices.SortStableFunc(files, func(a, b *File) int { return cmp.Compare(b.Size(), a.Size()) })
	work := make(chan *File)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWriter()
			for f := range work {
				if err := writeOne(dir, w, f); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
loop:
	for _, f := range files {
		select {
		case work <- f:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs
	}
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return nil
}

func writeOne(dir string, w *writer, f *File) error {
	path := filepath.Join(dir, filepath.FromSlash(f.Path))
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := w.writeFile(out, f); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	// Chmod after writing: the umask must not change the mode.
	if err := os.Chmod(path, f.Mode); err != nil {
		return err
	}
	return os.Chtimes(path, f.MTime, f.MTime)
}
