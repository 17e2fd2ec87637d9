package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// tmpPrefix starts the names of in-progress saves. Object names whose
// elements start with it are refused so a listing never confuses the two.
const tmpPrefix = ".tapeless-tmp-"

// File is a Backend keeping each object as a file below a root directory;
// the name "packs/ab/cd" is the file root/packs/ab/cd. It is the embedded
// default behind file:///path URLs.
//
// Saves are atomic and write-once even with many writers (processes
// included): the data goes to a temporary file in the target directory,
// is fsynced, and is then hard-linked to its final name. link(2) fails when
// the name exists, so a second writer gets ErrExists and the first object is
// never replaced — rename(2) would silently overwrite it.
type File struct {
	root string
}

var _ Backend = (*File)(nil)

// NewFile returns a File backend rooted at dir, an absolute path, creating
// the directory (0700) if it is missing.
func NewFile(dir string) (*File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("file backend: %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file backend: create %s: %w", dir, err)
	}
	return &File{root: dir}, nil
}

// Location returns the file:// URL of the root.
func (f *File) Location() string { return "file://" + filepath.ToSlash(f.root) }

// Root returns the directory holding the objects.
func (f *File) Root() string { return f.root }

func (f *File) path(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, tmpPrefix) {
			return "", fmt.Errorf("%w %q: elements starting with %q are reserved", ErrInvalidName, name, tmpPrefix)
		}
	}
	return filepath.Join(f.root, filepath.FromSlash(name)), nil
}

// Save stores size bytes from r under name, atomically and write-once.
func (f *File) Save(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	p, err := f.path(name)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("save %s: negative size %d", name, size)
	}
	// Refuse early so a duplicate does not cost a full copy; the link below
	// is what actually guarantees write-once.
	if st, err := os.Lstat(p); err == nil {
		if st.IsDir() {
			return fmt.Errorf("save %s in %s: the name is a directory holding other objects", name, f.Location())
		}
		return fmt.Errorf("save %s: %w", name, ErrExists)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	tmp, err := CreateAtomic(p, 0o600)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	// Discards the temporary file unless the link below gave it its name.
	defer tmp.Close()

	buf := make([]byte, max(min(size, 1<<20), 512))
	n, err := io.CopyBuffer(tmp, io.LimitReader(ctxReader{ctx, r}, size), buf)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("save %s: reader ended after %d of %d bytes: %w", name, n, size, io.ErrUnexpectedEOF)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := tmp.CommitNew(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save %s: %w", name, ErrExists)
		}
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

// RemoveTemps deletes the temporary files that saves killed before they
// finished left below the root (regular files whose names start with
// ".tapeless-tmp-"; a save that returns removes its own) and returns how
// many it removed and their bytes. A live save's file looks the same, so
// call it only while no other process can be saving into this root (the
// store lock guarantees that for a store's objects).
func (f *File) RemoveTemps(ctx context.Context) (n int, size int64, err error) {
	err = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		n++
		size += info.Size()
		return nil
	})
	if err != nil {
		return n, size, fmt.Errorf("remove temporary files in %s: %w", f.Location(), err)
	}
	return n, size, nil
}

// Load calls fn with a reader over the requested range of the object.
func (f *File) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	p, err := f.path(name)
	if err != nil {
		return err
	}
	fh, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("load %s: %w", name, fileErr(err))
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	if st.IsDir() {
		return fmt.Errorf("load %s: %w", name, ErrNotFound)
	}
	size := st.Size()
	if offset < 0 || offset > size {
		return fmt.Errorf("load %s: offset %d of %d-byte object: %w", name, offset, size, ErrInvalidRange)
	}
	if length < 0 || offset+length > size {
		length = size - offset
	}
	return fn(ctxReader{ctx, io.NewSectionReader(fh, offset, length)})
}

// Stat returns the object's size and modification time.
func (f *File) Stat(ctx context.Context, name string) (Info, error) {
	p, err := f.path(name)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", name, fileErr(err))
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("stat %s: %w", name, ErrNotFound)
	}
	return Info{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List walks the tree in lexical order of object names, visiting only the
// directories that can hold names starting with prefix.
func (f *File) List(ctx context.Context, prefix string, fn func(Info) error) error {
	// Start in the deepest directory the prefix names completely.
	rel := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		rel = prefix[:i+1]
		if CheckName(strings.TrimSuffix(rel, "/")) != nil {
			return nil // no valid name can start with this prefix
		}
	}
	return f.walk(ctx, rel, prefix, fn)
}

// walk lists directory rel ("" or ending in "/"). Entries are visited in
// the order of their names with "/" appended to directories, which is the
// lexical order of the full object names: "a-b" sorts before "a/x".
func (f *File) walk(ctx context.Context, rel, prefix string, fn func(Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(f.root, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	type entry struct {
		key string
		de  fs.DirEntry
	}
	list := make([]entry, 0, len(ents))
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			continue
		}
		k := rel + de.Name()
		if de.IsDir() {
			k += "/"
		}
		list = append(list, entry{k, de})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].key < list[j].key })
	for _, e := range list {
		if e.de.IsDir() {
			if strings.HasPrefix(e.key, prefix) || strings.HasPrefix(prefix, e.key) {
				if err := f.walk(ctx, e.key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(e.key, prefix) || !e.de.Type().IsRegular() {
			continue
		}
		st, err := e.de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(Info{Name: e.key, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the object. Empty directories are left in place: removing
// them would race with a concurrent Save creating a file in them.
func (f *File) Remove(ctx context.Context, name string) error {
	p, err := f.path(name)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, fileErr(err))
	}
	if st.IsDir() {
		return fmt.Errorf("remove %s: %w", name, ErrNotFound)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove %s: %w", name, fileErr(err))
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// Check reports whether the root is still a usable directory.
func (f *File) Check(ctx context.Context) error {
	st, err := os.Stat(f.root)
	if err != nil {
		return fmt.Errorf("%s: %w: check the path and that the disk is mounted", f.Location(), err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: not a directory", f.Location())
	}
	return nil
}

// Close does nothing; a File holds no resources between calls.
func (f *File) Close() error { return nil }

// fileErr maps "no such file" (also when a parent is a file) to ErrNotFound.
func fileErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
