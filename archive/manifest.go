package archive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ManifestVersion is the version of the manifest (tree) encoding written by
// this code; see "Manifest (tree) encoding" in docs/FORMAT.md.
const ManifestVersion = 1

// manifestMagic is the value of "format" in a manifest's first line.
const manifestMagic = "tapeless-manifest"

// Node is one entry of a recovery point's tree as the manifest stores it.
type Node struct {
	Path  string // relative, "/"-separated; see CheckPath
	Type  EntryType
	Perm  uint32 // permission bits plus setuid, setgid, sticky (07777)
	UID   uint32
	GID   uint32
	User  string // informational: restore uses the numeric IDs
	Group string
	Size  int64 // logical size of a file (holes included); symlinks: 0
	Mtime int64 // ns since the Unix epoch

	Target string // symlink target, verbatim
	// LinkTo names an earlier file of the same hard-link group; such a
	// node has no content of its own.
	LinkTo string
	// Nlink is set (>1) on the first member of a hard-link group.
	Nlink  uint64
	Xattrs []Xattr

	// Extents are the data regions of a sparse file, in order; nil means
	// the whole file is data. The concatenated extents are the file's data
	// stream, which Chunks hold in order.
	Extents []Extent
	Chunks  []ID
	// SHA256 is the SHA-256 of the data stream (nil for non-files).
	SHA256 []byte
	// Changed marks a file that kept changing while it was read: its
	// content may mix old and new data.
	Changed bool
}

// dataExtents returns the node's extents with the implicit whole-file
// extent made explicit.
func (n *Node) dataExtents() []Extent {
	if n.Extents != nil {
		return n.Extents
	}
	if n.Size == 0 {
		return nil
	}
	return []Extent{{0, n.Size}}
}

// nodeJSON is the on-disk shape of a Node: one JSON object per line.
// Strings that are not valid UTF-8 (Linux names are arbitrary bytes) go in
// the *_b64 twin instead, so every name round-trips exactly.
type nodeJSON struct {
	Path      string      `json:"path,omitempty"`
	PathB64   []byte      `json:"path_b64,omitempty"`
	Type      string      `json:"type"`
	Mode      uint32      `json:"mode"`
	UID       uint32      `json:"uid"`
	GID       uint32      `json:"gid"`
	User      string      `json:"user,omitempty"`
	Group     string      `json:"group,omitempty"`
	Size      int64       `json:"size,omitempty"`
	Mtime     int64       `json:"mtime_ns"`
	Target    string      `json:"target,omitempty"`
	TargetB64 []byte      `json:"target_b64,omitempty"`
	Link      string      `json:"link,omitempty"`
	LinkB64   []byte      `json:"link_b64,omitempty"`
	Nlink     uint64      `json:"nlink,omitempty"`
	Xattrs    []xattrJSON `json:"xattrs,omitempty"`
	Extents   *[][2]int64 `json:"extents,omitempty"`
	Chunks    []string    `json:"chunks,omitempty"`
	SHA256    string      `json:"sha256,omitempty"`
	Changed   bool        `json:"changed_during_read,omitempty"`
}

type xattrJSON struct {
	Name    string `json:"name,omitempty"`
	NameB64 []byte `json:"name_b64,omitempty"`
	Value   []byte `json:"value"`
}

type manifestHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// splitUTF8 puts s in the plain field when it is valid UTF-8, else in the
// base64 one.
func splitUTF8(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return "", []byte(s)
}

func joinUTF8(s string, b []byte) string {
	if b != nil {
		return string(b)
	}
	return s
}

func parseType(s string) (EntryType, error) {
	switch s {
	case "file":
		return TypeFile, nil
	case "dir":
		return TypeDir, nil
	case "symlink":
		return TypeSymlink, nil
	}
	return 0, fmt.Errorf("unknown entry type %q", s)
}

// CheckPath reports whether p is acceptable as a path inside a point:
// relative, "/"-separated, with no empty, "." or ".." element and no NUL.
// Restore refuses anything else, whoever wrote the manifest.
func CheckPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("path %q contains NUL", p)
	}
	if p[0] == '/' {
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "":
			return fmt.Errorf("path %q has an empty element", p)
		case ".", "..":
			return fmt.Errorf("path %q has a %q element", p, el)
		}
	}
	return nil
}

// ManifestWriter encodes nodes as the manifest stream.
type ManifestWriter struct {
	w   *bufio.Writer
	buf bytes.Buffer
	enc *json.Encoder
	n   int64
}

// NewManifestWriter writes the manifest header to w and returns a writer
// for the nodes. Call Close to flush.
func NewManifestWriter(w io.Writer) (*ManifestWriter, error) {
	m := &ManifestWriter{w: bufio.NewWriterSize(w, 256<<10)}
	m.enc = json.NewEncoder(&m.buf)
	m.enc.SetEscapeHTML(false)
	if err := m.enc.Encode(manifestHeader{Format: manifestMagic, Version: ManifestVersion}); err != nil {
		return nil, fmt.Errorf("encode manifest header: %w", err)
	}
	if _, err := m.w.Write(m.buf.Bytes()); err != nil {
		return nil, fmt.Errorf("write manifest header: %w", err)
	}
	return m, nil
}

// Write appends one node. Nodes must come parents first.
func (m *ManifestWriter) Write(n *Node) error {
	if err := CheckPath(n.Path); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	j := nodeJSON{
		Type:    n.Type.String(),
		Mode:    n.Perm,
		UID:     n.UID,
		GID:     n.GID,
		User:    n.User,
		Group:   n.Group,
		Size:    n.Size,
		Mtime:   n.Mtime,
		Nlink:   n.Nlink,
		Changed: n.Changed,
	}
	j.Path, j.PathB64 = splitUTF8(n.Path)
	j.Target, j.TargetB64 = splitUTF8(n.Target)
	j.Link, j.LinkB64 = splitUTF8(n.LinkTo)
	for _, x := range n.Xattrs {
		xj := xattrJSON{Value: x.Value}
		xj.Name, xj.NameB64 = splitUTF8(x.Name)
		if xj.Value == nil {
			xj.Value = []byte{}
		}
		j.Xattrs = append(j.Xattrs, xj)
	}
	if n.Extents != nil {
		// An empty list (all hole) is kept distinct from none (all data).
		ext := make([][2]int64, 0, len(n.Extents))
		for _, e := range n.Extents {
			ext = append(ext, [2]int64{e.Offset, e.Length})
		}
		j.Extents = &ext
	}
	for _, id := range n.Chunks {
		j.Chunks = append(j.Chunks, hex.EncodeToString(id[:]))
	}
	if n.SHA256 != nil {
		j.SHA256 = hex.EncodeToString(n.SHA256)
	}
	m.buf.Reset()
	if err := m.enc.Encode(&j); err != nil {
		return fmt.Errorf("encode manifest entry %q: %w", n.Path, err)
	}
	if _, err := m.w.Write(m.buf.Bytes()); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	m.n++
	return nil
}

// Count returns the number of nodes written.
func (m *ManifestWriter) Count() int64 { return m.n }

// Close flushes buffered output; it does not close the underlying writer.
func (m *ManifestWriter) Close() error {
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// ManifestReader decodes a manifest stream node by node.
type ManifestReader struct {
	r    *bufio.Reader
	line int64
}

// NewManifestReader reads and checks the manifest header.
func NewManifestReader(r io.Reader) (*ManifestReader, error) {
	m := &ManifestReader{r: bufio.NewReaderSize(r, 256<<10)}
	b, err := m.readLine()
	if err == io.EOF {
		return nil, errors.New("manifest is empty")
	}
	if err != nil {
		return nil, err
	}
	var h manifestHeader
	if err := strictLine(b, true); err != nil {
		return nil, fmt.Errorf("manifest: bad header: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Format != manifestMagic {
		return nil, errors.New("manifest: bad header")
	}
	if h.Version != ManifestVersion {
		return nil, fmt.Errorf("unsupported manifest version %d (this tapeless reads %d)", h.Version, ManifestVersion)
	}
	return m, nil
}

func (m *ManifestReader) readLine() ([]byte, error) {
	b, err := m.r.ReadBytes('\n')
	if err == io.EOF && len(b) == 0 {
		return nil, io.EOF
	}
	if err == io.EOF {
		return nil, fmt.Errorf("manifest line %d: truncated", m.line+1)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m.line++
	return b, nil
}

// Each calls fn for every remaining node in order and returns nil after the
// last; it stops at the first error, fn's included, and checks ctx before
// each node.
func (m *ManifestReader) Each(ctx context.Context, fn func(*Node) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := m.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
}

// Next returns the next node, or io.EOF after the last. Every node is
// checked: a bad path, type, extent list or chunk ID is an error.
func (m *ManifestReader) Next() (*Node, error) {
	b, err := m.readLine()
	if err != nil {
		return nil, err
	}
	var j nodeJSON
	if err := strictLine(b, false); err != nil {
		// Name the entry as far as its path can be read, to find it.
		if json.Unmarshal(b, &j) == nil && (j.Path != "" || j.PathB64 != nil) {
			return nil, fmt.Errorf("manifest line %d (%q): %w", m.line, joinUTF8(j.Path, j.PathB64), err)
		}
		return nil, fmt.Errorf("manifest line %d: %w", m.line, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		// A value of the wrong type (a size of 2^63) leaves the other
		// fields decoded: name the entry when its path was read.
		if p := joinUTF8(j.Path, j.PathB64); p != "" {
			return nil, fmt.Errorf("manifest line %d (%q): %w", m.line, p, err)
		}
		return nil, fmt.Errorf("manifest line %d: %w", m.line, err)
	}
	n := &Node{
		Path:    joinUTF8(j.Path, j.PathB64),
		Perm:    j.Mode,
		UID:     j.UID,
		GID:     j.GID,
		User:    j.User,
		Group:   j.Group,
		Size:    j.Size,
		Mtime:   j.Mtime,
		Target:  joinUTF8(j.Target, j.TargetB64),
		LinkTo:  joinUTF8(j.Link, j.LinkB64),
		Nlink:   j.Nlink,
		Changed: j.Changed,
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("manifest line %d (%q): %s", m.line, n.Path, fmt.Sprintf(format, a...))
	}
	if err := CheckPath(n.Path); err != nil {
		return nil, fmt.Errorf("manifest line %d: %w", m.line, err)
	}
	if n.Type, err = parseType(j.Type); err != nil {
		return nil, bad("%v", err)
	}
	if n.Perm&^0o7777 != 0 {
		return nil, bad("mode %o has bits beyond 07777", n.Perm)
	}
	if n.Size < 0 {
		return nil, bad("negative size")
	}
	if n.LinkTo != "" {
		if err := CheckPath(n.LinkTo); err != nil {
			return nil, bad("hard link: %v", err)
		}
		if n.Type != TypeFile || len(j.Chunks) > 0 {
			return nil, bad("a hard link must be a file without content")
		}
	}
	if n.Type == TypeSymlink && n.Target == "" {
		return nil, bad("symlink without target")
	}
	for _, x := range j.Xattrs {
		n.Xattrs = append(n.Xattrs, Xattr{Name: joinUTF8(x.Name, x.NameB64), Value: x.Value})
	}
	if j.Extents != nil {
		n.Extents = make([]Extent, 0, len(*j.Extents))
		var end int64
		for _, e := range *j.Extents {
			if e[0] < end || e[1] <= 0 || e[0]+e[1] > n.Size || e[0]+e[1] < e[0] {
				return nil, bad("bad extent [%d,%d]", e[0], e[1])
			}
			n.Extents = append(n.Extents, Extent{e[0], e[1]})
			end = e[0] + e[1]
		}
	}
	for _, c := range j.Chunks {
		var id ID
		if len(c) != 2*len(id) {
			return nil, bad("bad chunk ID %q", c)
		}
		if _, err := hex.Decode(id[:], []byte(c)); err != nil {
			return nil, bad("bad chunk ID %q", c)
		}
		n.Chunks = append(n.Chunks, id)
	}
	if j.SHA256 != "" {
		h, err := hex.DecodeString(j.SHA256)
		if err != nil || len(h) != 32 {
			return nil, bad("bad sha256")
		}
		n.SHA256 = h
	}
	if n.Type == TypeFile && n.LinkTo == "" && n.SHA256 == nil {
		return nil, bad("file without sha256")
	}
	return n, nil
}
