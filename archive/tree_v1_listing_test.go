package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testdata/v1 carries what any reader needs to prove a restore of the
// fixture from testdata alone: the passphrase (testdata/v1/passphrase) and
// a listing of the tree the point was made from (testdata/v1/listing.json),
// described in testdata/v1/README.md. The listing is derived from v1Tree;
// rewrite it with
//
//	go test ./archive -run TestV1Listing -update-v1-listing
var updateV1Listing = flag.Bool("update-v1-listing", false, "rewrite testdata/v1/listing.json from the fixture's definition")

// v1ListingEntry is one entry of testdata/v1/listing.json.
type v1ListingEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"` // file, dir, symlink
	Mode   uint32 `json:"mode"` // permission bits; 0 for symlinks
	Mtime  int64  `json:"mtime_ns"`
	Size   int64  `json:"size"`             // files: logical size, holes included
	SHA256 string `json:"sha256,omitempty"` // files: of the whole content, holes as zeros
	Target string `json:"target,omitempty"` // symlinks
	// HardLinkGroup is the same non-zero number for paths that are one
	// inode.
	HardLinkGroup int `json:"hard_link_group,omitempty"`
	// Data lists a sparse file's data regions [offset, length]; the rest
	// of the file is holes. Absent: the whole file is data.
	Data [][2]int64 `json:"data,omitempty"`
}

func v1Listing() []v1ListingEntry {
	tree := v1Tree()
	group := map[string]int{}
	for _, e := range tree {
		if e.link != "" {
			group[e.link] = 1
			group[e.path] = 1
		}
	}
	var out []v1ListingEntry
	for i, e := range tree {
		le := v1ListingEntry{Path: e.path, Mode: e.mode, Mtime: v1Mtime(i), HardLinkGroup: group[e.path]}
		switch {
		case e.dir:
			le.Type = "dir"
		case e.symlink != "":
			le.Type, le.Target, le.Mode = "symlink", e.symlink, 0
		default:
			le.Type = "file"
			c := e.content
			if e.link != "" { // the link shares its target's inode
				for j, o := range tree {
					if o.path == e.link {
						c, le.Mode, le.Mtime = o.content, o.mode, v1Mtime(j)
					}
				}
			}
			sum := sha256.Sum256(c)
			le.Size, le.SHA256 = int64(len(c)), hex.EncodeToString(sum[:])
			if e.path == v1SparsePath {
				le.Data = [][2]int64{{0, 4096}, {96 << 10, 4096}}
			}
		}
		out = append(out, le)
	}
	return out
}

func TestV1ListingMatchesFixture(t *testing.T) {
	want, err := json.MarshalIndent(v1Listing(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	p := filepath.Join(v1Dir, "listing.json")
	if *updateV1Listing {
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the fixture's definition (v1Tree); rewrite it with -update-v1-listing", p)
	}
}

// TestRestoreV1FromTestdataAlone restores the fixture with nothing but
// what testdata/v1 holds — the store, the passphrase file and the listing
// — and checks every entry of the listing: type, mode, mtime, size,
// content hash, symlink target, hard-link groups and holes.
func TestRestoreV1FromTestdataAlone(t *testing.T) {
	ctx := context.Background()
	pass, err := os.ReadFile(filepath.Join(v1Dir, "passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	// FORMAT.md: the passphrase is the first line, without its line end.
	pass = []byte(strings.TrimRight(strings.SplitN(string(pass), "\n", 2)[0], "\r"))
	var listing []v1ListingEntry
	lb, err := os.ReadFile(filepath.Join(v1Dir, "listing.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(lb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&listing); err != nil {
		t.Fatal(err)
	}

	v, err := OpenStoreView(ctx, filepath.Join(v1Dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	keys, err := UnwrapKeys(v.Envelope, pass)
	if err != nil {
		t.Fatalf("the passphrase in testdata/v1/passphrase does not open the store: %v", err)
	}
	points, err := ListPoints(ctx, v.Objects)
	if err != nil || len(points) != 1 {
		t.Fatalf("points = %v, %v; want the one fixture point", points, err)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	r := NewReader(v.Objects, keys)
	defer r.Close()
	if _, err := Restore(ctx, r, points[0].ID, RestoreOptions{Target: dst}); err != nil {
		t.Fatal(err)
	}

	var restored []string
	filepath.Walk(dst, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dst {
			rel, _ := filepath.Rel(dst, p)
			restored = append(restored, rel)
		}
		return nil
	})
	var listed []string
	for _, e := range listing {
		listed = append(listed, e.Path)
	}
	sort.Strings(restored)
	sort.Strings(listed)
	if !reflect.DeepEqual(restored, listed) {
		t.Fatalf("restored paths %q, listing has %q", restored, listed)
	}

	inodes := map[int]uint64{}
	for _, e := range listing {
		p := filepath.Join(dst, e.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		typ := map[uint32]string{unix.S_IFREG: "file", unix.S_IFDIR: "dir", unix.S_IFLNK: "symlink"}[st.Mode&unix.S_IFMT]
		if typ != e.Type {
			t.Errorf("%s: type %q, listing says %q", e.Path, typ, e.Type)
			continue
		}
		if st.Mtim.Nano() != e.Mtime {
			t.Errorf("%s: mtime_ns %d, listing says %d", e.Path, st.Mtim.Nano(), e.Mtime)
		}
		if e.Type != "symlink" && st.Mode&0o7777 != e.Mode {
			t.Errorf("%s: mode %o, listing says %o", e.Path, st.Mode&0o7777, e.Mode)
		}
		switch e.Type {
		case "symlink":
			if target, _ := os.Readlink(p); target != e.Target {
				t.Errorf("%s: target %q, listing says %q", e.Path, target, e.Target)
			}
		case "file":
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if int64(len(b)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 {
				t.Errorf("%s: %d bytes with sha256 %x, listing says %d bytes %s", e.Path, len(b), sum, e.Size, e.SHA256)
			}
			if e.Data != nil {
				var data int64
				for _, d := range e.Data {
					data += d[1]
				}
				// Allocation is in filesystem blocks: allow one block per
				// region beyond the data itself.
				if alloc := st.Blocks * 512; alloc > data+int64(len(e.Data))*int64(st.Blksize) {
					t.Errorf("%s: %d bytes allocated, listing has %d bytes of data: holes were filled", e.Path, alloc, data)
				}
			}
		}
		if g := e.HardLinkGroup; g != 0 {
			if ino, ok := inodes[g]; ok && ino != st.Ino {
				t.Errorf("%s: inode %d, not the one of hard-link group %d (%d)", e.Path, st.Ino, g, ino)
			}
			inodes[g] = st.Ino
		}
	}
}
