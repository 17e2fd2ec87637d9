package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync/atomic"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/tapeless/tapeless/storage"
)

// Browsing reads only a point's manifest: its tree blobs and the index
// objects that locate them. A Reader fetches each blob with a ranged read,
// so listing, finding and diffing a vault-only point costs its tree data,
// not its packs; CountingBackend measures that.

// ChangeKind says how an entry differs between two points.
type ChangeKind string

// The kinds of change DiffManifests reports.
const (
	Added    ChangeKind = "added"
	Removed  ChangeKind = "removed"
	Changed  ChangeKind = "changed"  // content, type, size, symlink or hard-link target
	Metadata ChangeKind = "metadata" // same content; mode, owner, mtime or xattrs differ
)

// Change is one entry of a diff. Old is nil for Added, New for Removed.
type Change struct {
	Kind ChangeKind
	Path string
	Old  *Node
	New  *Node
}

// DiffManifests walks two manifests side by side and calls fn for every
// path that differs, in manifest order. Both are in depth-first pre-order
// with siblings sorted (FORMAT.md), so one merge pass suffices and memory
// does not grow with the trees.
func DiffManifests(a, b *ManifestReader, fn func(Change) error) error {
	next := func(m *ManifestReader) (*Node, error) {
		n, err := m.Next()
		if err == io.EOF {
			return nil, nil
		}
		return n, err
	}
	x, err := next(a)
	if err != nil {
		return err
	}
	y, err := next(b)
	if err != nil {
		return err
	}
	for x != nil || y != nil {
		var c int
		switch {
		case x == nil:
			c = 1
		case y == nil:
			c = -1
		default:
			c = compareComponents(strings.Split(x.Path, "/"), strings.Split(y.Path, "/"))
		}
		switch {
		case c < 0:
			err = fn(Change{Kind: Removed, Path: x.Path, Old: x})
			if err == nil {
				x, err = next(a)
			}
		case c > 0:
			err = fn(Change{Kind: Added, Path: y.Path, New: y})
			if err == nil {
				y, err = next(b)
			}
		default:
			if k := compareNodes(x, y); k != "" {
				err = fn(Change{Kind: k, Path: x.Path, Old: x, New: y})
			}
			if err == nil {
				if x, err = next(a); err == nil {
					y, err = next(b)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compareNodes returns how y differs from x (same path), or "".
func compareNodes(x, y *Node) ChangeKind {
	switch {
	case x.Type != y.Type, x.Size != y.Size, x.Target != y.Target, x.LinkTo != y.LinkTo,
		!bytes.Equal(x.SHA256, y.SHA256):
		return Changed
	case x.Perm != y.Perm, x.UID != y.UID, x.GID != y.GID, x.Mtime != y.Mtime, !sameXattrs(x.Xattrs, y.Xattrs):
		return Metadata
	}
	return ""
}

func sameXattrs(a, b []Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// PathPattern matches paths inside a point, gitignore style: a pattern
// without "/" matches an entry's base name at any depth ("*.log"); one
// with "/" matches the whole path, and "**" spans directories
// ("home/*/.cache/**", "**/id_rsa").
type PathPattern struct {
	pattern string
	whole   bool
}

// ErrBadPattern wraps an invalid path pattern.
var ErrBadPattern = errors.New("invalid pattern")

// NewPathPattern checks and compiles p.
func NewPathPattern(p string) (PathPattern, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || !doublestar.ValidatePattern(p) {
		return PathPattern{}, fmt.Errorf("%w %q: use * ? [abc] {a,b} and ** (see 'tapeless find --help')", ErrBadPattern, p)
	}
	return PathPattern{pattern: p, whole: strings.Contains(p, "/")}, nil
}

// Match reports whether the point path p matches.
func (m PathPattern) Match(p string) bool {
	if !m.whole {
		p = path.Base(p)
	}
	ok, _ := doublestar.Match(m.pattern, p)
	return ok
}

// CountingBackend wraps a Backend and counts the bytes its Loads return,
// so browsing a vault point can say what it fetched.
type CountingBackend struct {
	storage.Backend
	n atomic.Int64
}

// NewCountingBackend wraps b.
func NewCountingBackend(b storage.Backend) *CountingBackend { return &CountingBackend{Backend: b} }

// Fetched returns the bytes loaded so far.
func (c *CountingBackend) Fetched() int64 { return c.n.Load() }

// Load counts the bytes fn reads.
func (c *CountingBackend) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	return c.Backend.Load(ctx, name, offset, length, func(r io.Reader) error {
		return fn(&countReader{r: r, n: &c.n})
	})
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
