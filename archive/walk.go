package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// EntryType is the kind of a file system entry that a recovery point holds.
type EntryType uint8

// Entry types. Devices, sockets and FIFOs are never stored: the walker skips
// and counts them.
const (
	TypeFile EntryType = iota + 1
	TypeDir
	TypeSymlink
)

// String returns the name used for the type in manifests.
func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return "type" + strconv.Itoa(int(t))
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one file, directory or symlink found by Walk, with everything a
// recovery point records about it plus the identity fields (Dev, Ino, Ctime)
// the file cache needs to recognise it next time.
type Entry struct {
	// Path is the name inside the recovery point: relative, "/"-separated,
	// never empty, "." or containing "..".
	Path string
	// OSPath is where the entry lives on this machine.
	OSPath string
	// Source is the source argument the entry was found under.
	Source string

	Type  EntryType
	Perm  uint32 // permission bits plus setuid, setgid and sticky (07777)
	UID   uint32
	GID   uint32
	User  string // empty when the ID has no name here
	Group string

	Size   int64
	Blocks int64 // 512-byte blocks allocated, to spot sparse files cheaply
	Mtime  int64 // ns since the Unix epoch
	Ctime  int64 // ns since the Unix epoch
	Dev    uint64
	Ino    uint64
	Nlink  uint64

	Target string  // symlink target, verbatim
	Xattrs []Xattr // sorted by name

	// LinkTo is set on the second and later paths of a hard-link group: the
	// Path of the first member, whose content stands for all of them.
	LinkTo string
}

// Sparse reports whether the file allocates fewer blocks than its size,
// which is when its hole map is worth asking for.
func (e *Entry) Sparse() bool {
	return e.Type == TypeFile && e.Blocks*512 < e.Size
}

// WalkOptions configures Walk.
type WalkOptions struct {
	// Exclude holds gitignore-style patterns (see exclude.go): one without
	// a "/" matches a name at any depth, one with a "/" the path from the
	// top of the point; "**" spans directories, a trailing "/" matches
	// directories only and "!" re-includes. Walk refuses invalid ones
	// before it starts.
	Exclude []string
	// ExcludeFiles are files of such patterns, one per line; one that
	// cannot be read stops the walk before it starts.
	ExcludeFiles []string
	// IgnoreFile, when set, is the name of a per-directory ignore file
	// (IgnoreFileName): its patterns apply below its directory, relative
	// to it, like .gitignore. One that cannot be read or holds an invalid
	// pattern is reported through OnError and its directory is walked
	// without it: more is stored, never less.
	IgnoreFile string
	// ExcludeCaches stores a directory holding a valid CACHEDIR.TAG with
	// its tag file only.
	ExcludeCaches bool
	// OneFileSystem stores the mount points met below a source but does
	// not enter them.
	OneFileSystem bool
	// OnError is told about every entry that cannot be read; the entry is
	// skipped and the walk goes on. Returning an error aborts the walk.
	OnError func(path string, err error) error
	// NoXattrs skips reading extended attributes.
	NoXattrs bool
	// SkipPaths are absolute OS paths never entered or stored (the
	// store itself when it lies inside a source); they count as excluded.
	SkipPaths []string

	// devOf replaces an entry's device number for one-file-system's
	// decision (tests fake a mount point with it).
	devOf func(*Entry) uint64
}

// WalkStats counts what the walk saw but did not yield.
type WalkStats struct {
	Special    int64 // devices, sockets and FIFOs skipped
	Excluded   int64 // all of ExcludedBy
	ExcludedBy ExcludeCounts
	Errors     int64
}

// ExcludeCounts says why entries were excluded. A directory counts once:
// what lay below it was never visited.
type ExcludeCounts struct {
	Pattern    int64 `json:"pattern"`     // --exclude, exclude files, configured patterns
	IgnoreFile int64 `json:"ignore_file"` // a per-directory ignore file
	Caches     int64 `json:"caches"`      // entries of a tagged cache directory
	OtherFS    int64 `json:"other_fs"`    // mount points not entered
	Store      int64 `json:"store"`       // the store itself
}

// ErrSpecialFile marks a device, socket or FIFO, which is skipped.
var ErrSpecialFile = errors.New("special file skipped")

// Walk visits every entry under sources in a fixed order, depth first,
// every directory's names (and the sources' top-level names) sorted
// bytewise, parents before children, and calls fn for each. A single source that is a directory
// contributes its contents at the top of the point; with several sources,
// or a single file, each source appears under its base name. fn may keep
// the *Entry.
func Walk(ctx context.Context, sources []string, o WalkOptions, fn func(*Entry) error) (WalkStats, error) {
	w := &walker{ctx: ctx, o: o, fn: fn, links: map[[2]uint64]string{}, names: newIDNames()}
	global, err := compileWalkExcludes(o)
	if err != nil {
		return w.stats, err
	}
	w.global = global.rules
	roots, err := sourceRoots(sources)
	if err != nil {
		return w.stats, err
	}
	for _, r := range roots {
		if err := w.source(r); err != nil {
			return w.stats, err
		}
	}
	return w.stats, nil
}

// sourceRoot is one source argument and the name its top takes in the point
// ("" when the source's contents sit at the top).
type sourceRoot struct {
	arg, abs, name string
}

// sourceRoots resolves the source arguments and the names they take in the
// point, refusing two sources that would collide.
func sourceRoots(sources []string) ([]sourceRoot, error) {
	if len(sources) == 0 {
		return nil, errors.New("no source given")
	}
	var roots []sourceRoot
	seen := map[string]string{}
	for _, s := range sources {
		abs, err := filepath.Abs(s)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s, err)
		}
		name := filepath.Base(abs)
		fi, err := os.Lstat(abs)
		if err != nil {
			return nil, fmt.Errorf("source %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// A source given as a symlink means what it points to (like
			// find -H); symlinks inside the tree are stored as such.
			if abs, err = filepath.EvalSymlinks(abs); err != nil {
				return nil, fmt.Errorf("source %s: %w", s, err)
			}
			if fi, err = os.Lstat(abs); err != nil {
				return nil, fmt.Errorf("source %w", err)
			}
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			// Inside a tree such entries are skipped and counted; as the
			// whole source they would make an empty point that reports
			// success.
			return nil, fmt.Errorf("source %s is a %s: only directories, regular files and symlinks to them can be backed up; give the directory that holds it", s, modeKind(fi.Mode()))
		}
		if len(sources) == 1 && fi.IsDir() {
			name = ""
		}
		if name != "" {
			if name == "/" || name == "." {
				name = "root"
			}
			if prev, dup := seen[name]; dup {
				return nil, fmt.Errorf("sources %s and %s would both be stored as %q: back them up separately", prev, s, name)
			}
			seen[name] = s
		}
		roots = append(roots, sourceRoot{arg: s, abs: abs, name: name})
	}
	// Top-level names in sorted order, like every directory's entries:
	// the manifest's order must not depend on the argument order.
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].name < roots[j].name })
	return roots, nil
}

// modeKind names a non-directory, non-regular file type for messages.
func modeKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

type walker struct {
	ctx   context.Context
	o     WalkOptions
	fn    func(*Entry) error
	stats WalkStats
	links map[[2]uint64]string // dev+inode → first path, for nlink > 1
	names *idNames

	global  []excludeRule // --exclude and exclude files: they decide last
	local   []excludeRule // ignore files of the directories being walked, top down
	rootDev uint64        // device of the current source's top
}

// compileWalkExcludes compiles o.Exclude and the patterns of
// o.ExcludeFiles, naming every invalid one.
func compileWalkExcludes(o WalkOptions) (*Excludes, error) {
	patterns := append([]string(nil), o.Exclude...)
	for _, f := range o.ExcludeFiles {
		p, err := ReadExcludeFile(f)
		if err != nil {
			return nil, err
		}
		patterns = append(patterns, p...)
	}
	return CompileExcludes(patterns)
}

func (w *walker) fail(p string, err error) error {
	w.stats.Errors++
	if w.o.OnError == nil {
		return nil
	}
	return w.o.OnError(p, err)
}

func (w *walker) source(r sourceRoot) error {
	var st unix.Stat_t
	if err := unix.Stat(r.abs, &st); err != nil {
		return fmt.Errorf("source %w", &os.PathError{Op: "stat", Path: r.abs, Err: err})
	}
	w.rootDev = uint64(st.Dev)
	if r.name == "" {
		return w.dir(r, r.abs, "")
	}
	return w.visit(r, r.abs, r.name)
}

// excludedBy says which kind of pattern, if any, excludes rel: the last
// rule that matches decides, ignore files first and then the global ones.
func (w *walker) excludedBy(rel string, isDir bool) (excluded, fromFile bool) {
	for _, rules := range [2][]excludeRule{w.local, w.global} {
		for i := range rules {
			if rules[i].match(rel, isDir) {
				excluded, fromFile = !rules[i].negate, rules[i].fromFile
			}
		}
	}
	return excluded, fromFile
}

// skipped reports whether osPath is one of o.SkipPaths.
func (w *walker) skipped(osPath string) bool {
	for _, p := range w.o.SkipPaths {
		if osPath == p {
			return true
		}
	}
	return false
}

func (w *walker) exclude(n *int64) {
	*n++
	w.stats.Excluded++
}

// visit stats one entry, yields it and descends into directories.
func (w *walker) visit(r sourceRoot, osPath, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.skipped(osPath) {
		w.exclude(&w.stats.ExcludedBy.Store)
		return nil
	}
	var st unix.Stat_t
	lerr := unix.Lstat(osPath, &st)
	isDir := lerr == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
	if ex, fromFile := w.excludedBy(rel, isDir); ex {
		if fromFile {
			w.exclude(&w.stats.ExcludedBy.IgnoreFile)
		} else {
			w.exclude(&w.stats.ExcludedBy.Pattern)
		}
		return nil
	}
	if lerr != nil {
		return w.fail(osPath, &os.PathError{Op: "lstat", Path: osPath, Err: lerr})
	}
	e, err := w.stat(&st, osPath, rel)
	if errors.Is(err, ErrSpecialFile) {
		w.stats.Special++
		return nil
	}
	if err != nil {
		return w.fail(osPath, err)
	}
	e.Source = r.arg
	if err := w.fn(e); err != nil {
		return err
	}
	if e.Type != TypeDir {
		return nil
	}
	if w.o.OneFileSystem {
		dev := e.Dev
		if w.o.devOf != nil {
			dev = w.o.devOf(e)
		}
		if leavesFileSystem(w.rootDev, dev) {
			w.exclude(&w.stats.ExcludedBy.OtherFS)
			return nil
		}
	}
	return w.dir(r, osPath, rel)
}

// dir visits the children of a directory in bytewise name order, under
// the directory's own ignore file when it has one.
func (w *walker) dir(r sourceRoot, osPath, rel string) error {
	f, err := os.Open(osPath)
	if err != nil {
		return w.fail(osPath, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return w.fail(osPath, fmt.Errorf("read directory: %w", err))
	}
	sort.Strings(names)
	if w.o.ExcludeCaches && slices.Contains(names, CacheTagName) && isCacheTag(filepath.Join(osPath, CacheTagName)) {
		// The tag file stays, so a restored cache is still known as one.
		for _, n := range names {
			if n != CacheTagName {
				w.exclude(&w.stats.ExcludedBy.Caches)
			}
		}
		names = []string{CacheTagName}
	}
	if w.o.IgnoreFile != "" && slices.Contains(names, w.o.IgnoreFile) {
		p := filepath.Join(osPath, w.o.IgnoreFile)
		rules, err := readIgnoreFile(p, rel)
		if err != nil {
			if err := w.fail(p, fmt.Errorf("ignore file not applied: %w", err)); err != nil {
				return err
			}
		}
		n := len(w.local)
		w.local = append(w.local, rules...)
		defer func() { w.local = w.local[:n] }()
	}
	for _, n := range names {
		childRel := n
		if rel != "" {
			childRel = rel + "/" + n
		}
		if err := w.visit(r, filepath.Join(osPath, n), childRel); err != nil {
			return err
		}
	}
	return nil
}

// stat builds the Entry for osPath from its lstat result st.
func (w *walker) stat(st *unix.Stat_t, osPath, rel string) (*Entry, error) {
	e := entryFromStat(st)
	if e == nil {
		return nil, ErrSpecialFile
	}
	e.Path, e.OSPath = rel, osPath
	e.User, e.Group = w.names.user(e.UID), w.names.group(e.GID)
	if e.Type == TypeSymlink {
		t, err := os.Readlink(osPath)
		if err != nil {
			return nil, err
		}
		e.Target = t
	}
	if e.Type == TypeFile && e.Nlink > 1 {
		k := [2]uint64{e.Dev, e.Ino}
		if first, ok := w.links[k]; ok {
			e.LinkTo = first
		} else {
			w.links[k] = rel
		}
	}
	if !w.o.NoXattrs && e.LinkTo == "" {
		x, err := readXattrs(osPath)
		if err != nil {
			return nil, err
		}
		e.Xattrs = x
	}
	return e, nil
}

// entryFromStat converts a stat result; nil means a special file.
func entryFromStat(st *unix.Stat_t) *Entry {
	e := &Entry{
		Perm:   uint32(st.Mode) & 0o7777,
		UID:    st.Uid,
		GID:    st.Gid,
		Size:   st.Size,
		Blocks: st.Blocks,
		Mtime:  statMtime(st),
		Ctime:  statCtime(st),
		Dev:    uint64(st.Dev),
		Ino:    st.Ino,
		Nlink:  uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
	case unix.S_IFDIR:
		e.Type = TypeDir
		e.Size = 0
	case unix.S_IFLNK:
		e.Type = TypeSymlink
	default:
		return nil
	}
	return e
}

// readXattrs lists and reads the extended attributes of a path without
// following symlinks. File systems without xattrs yield none.
func readXattrs(p string) ([]Xattr, error) {
	buf := make([]byte, 1024)
	var n int
	for {
		var err error
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if isNoXattr(err) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		break
	}
	var names []string
	for _, b := range splitNul(buf[:n]) {
		names = append(names, string(b))
	}
	sort.Strings(names)
	var out []Xattr
	for _, name := range names {
		v, err := getXattr(p, name)
		if errors.Is(err, errNoXattr) || isNoXattr(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		out = append(out, Xattr{Name: name, Value: v})
	}
	return out, nil
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), buf[:n]...), nil
	}
}

func isNoXattr(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func splitNul(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// Extent is a run of data in a sparse file: Length bytes from Offset.
type Extent struct {
	Offset, Length int64
}

// DataExtents returns the data regions of an open file of the given size
// using SEEK_DATA/SEEK_HOLE, so holes are neither read nor stored. A file
// system without hole reporting yields one extent covering the file.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	if size == 0 {
		return nil, nil
	}
	fd := int(f.Fd())
	var out []Extent
	var off int64
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{0, size}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("seek data %s: %w", f.Name(), err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole %s: %w", f.Name(), err)
		}
		if hole > size {
			hole = size
		}
		out = append(out, Extent{data, hole - data})
		off = hole
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind %s: %w", f.Name(), err)
	}
	return out, nil
}

// idNames caches uid/gid → name lookups, which read /etc/passwd each time.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newIDNames() *idNames {
	return &idNames{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (n *idNames) user(id uint32) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.users[id]; ok {
		return s
	}
	s := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		s = u.Username
	}
	n.users[id] = s
	return s
}

func (n *idNames) group(id uint32) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.groups[id]; ok {
		return s
	}
	s := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		s = g.Name
	}
	n.groups[id] = s
	return s
}
