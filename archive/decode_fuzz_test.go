package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
)

// Fuzz targets for the object decoders. Each asserts a property beyond "no
// panic": what decodes re-encodes to the same thing, and what is declared
// inside an object is checked against the object before it is used.
// scripts/fuzz.sh runs every target briefly; testdata/fuzz holds the seeds
// and any crasher found, as regression cases.

// fuzzKeys is a fixed key pair, so seeds sealed with it in one run open in
// every later run.
func fuzzKeys(tb testing.TB) *Keys {
	tb.Helper()
	k := &Keys{}
	for i := range k.Private {
		k.Private[i] = byte(i + 1)
		k.ChunkKey[i] = byte(0x80 + i)
	}
	pub, err := curve25519.X25519(k.Private[:], curve25519.Basepoint)
	if err != nil {
		tb.Fatal(err)
	}
	copy(k.Public[:], pub)
	k.Fingerprint = fingerprint(k.Public)
	return k
}

// fuzzPack builds a valid pack of blobs sealed to k.
func fuzzPack(tb testing.TB, k *Keys, blobs ...[]byte) ([]byte, []packEntry) {
	tb.Helper()
	p, err := newPackBuilder(k.Public, 1<<16)
	if err != nil {
		tb.Fatal(err)
	}
	for i, b := range blobs {
		t := BlobData
		if i%2 == 1 {
			t = BlobTree
		}
		if err := p.add(t, chunkID(&k.ChunkKey, b), len(b), compressBlob(nil, b)); err != nil {
			tb.Fatal(err)
		}
	}
	pack, err := p.finish()
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Clone(pack), p.entries
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(encodeEntries(nil))
	f.Add(encodeEntries([]packEntry{{Type: BlobData, ID: ID{1}, Offset: 90, Length: 40, RawLen: 12}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeEntries(b)
		if err != nil {
			return
		}
		// The count was checked against the length: no entry list is
		// bigger than the bytes it came from.
		if 4+len(es)*entryLen != len(b) {
			t.Fatalf("%d entries decoded from %d bytes", len(es), len(b))
		}
		for i, e := range es {
			if !e.Type.valid() || e.RawLen > MaxBlobSize || e.Length > MaxBlobSize+maxStoredOverhead {
				t.Fatalf("entry %d out of bounds: %+v", i, e)
			}
		}
		if got := encodeEntries(es); !bytes.Equal(got, b) {
			t.Fatalf("entries re-encode differently:\n got %x\nwant %x", got, b)
		}
	})
}

func FuzzPack(f *testing.F) {
	k := fuzzKeys(f)
	seed, _ := fuzzPack(f, k, []byte("hello, pack"), bytes.Repeat([]byte("tree "), 200), []byte{})
	f.Add(seed)
	f.Add(seed[:packHeaderLen])
	f.Add([]byte("TPLSP\x01"))
	f.Fuzz(func(t *testing.T, pack []byte) {
		version, dk, err := packDataKey(k, pack)
		if err != nil {
			return
		}
		es, err := openTrailer(pack, &dk)
		if err != nil {
			return
		}
		for _, e := range es {
			if int(e.Offset) < packHeaderLen || int64(e.Offset)+int64(e.Length) > int64(len(pack)-packFooterLen) {
				t.Fatalf("trailer entry %+v lies outside a %d-byte pack", e, len(pack))
			}
			data, err := openBlob(&dk, &k.ChunkKey, version, e, pack[e.Offset:e.Offset+e.Length])
			if err != nil {
				continue
			}
			if uint32(len(data)) != e.RawLen || chunkID(&k.ChunkKey, data) != e.ID {
				t.Fatalf("blob %s opened to %d bytes that do not match its entry %+v", e.ID, len(data), e)
			}
		}
	})
}

func FuzzIndex(f *testing.F) {
	k := fuzzKeys(f)
	pack, es := fuzzPack(f, k, []byte("index me"), []byte("and me"))
	seed, err := sealIndex(k.Public, objectHash(pack), int64(len(pack)), es)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:indexOffSealed])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseIndexHeader(b)
		hs, es, oerr := openIndex(k, b)
		if err != nil {
			if oerr == nil {
				t.Fatalf("openIndex accepted an object whose clear header is refused: %v", err)
			}
			return
		}
		if oerr != nil {
			return
		}
		if hs != h {
			t.Fatalf("openIndex header %+v differs from parseIndexHeader %+v", hs, h)
		}
		for _, e := range es {
			if int64(e.Offset)+int64(e.Length) > h.PackSize {
				t.Fatalf("entry %+v beyond the pack's %d bytes", e, h.PackSize)
			}
		}
	})
}

func FuzzPoint(f *testing.F) {
	k := fuzzKeys(f)
	parent := ID{9}
	for _, h := range []PointHeader{
		{Source: "docs", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Host: "h", Files: 3, Bytes: 99, Tree: []ID{{1}}, KeyFingerprint: k.Fingerprint},
		{Source: "x", Time: time.Unix(0, 0), Parent: &parent, Labels: map[string]string{"name": "n"}, Packs: []PackRef{{}}},
	} {
		b, err := sealPoint(k.Public, h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, off, err := parsePoint(b)
		if err != nil {
			return
		}
		if off+keyBlockLen+sealOverhead > len(b) {
			t.Fatalf("clear header ends at %d, past what a %d-byte object can hold", off, len(b))
		}
		if full, err := openPoint(k, b); err == nil && (full.Source != h.Source || !full.Time.Equal(h.Time) || full.Files != h.Files) {
			t.Fatalf("openPoint header %+v differs from parsePoint's %+v", full, h)
		}
		if y := h.Time.UTC().Year(); y < 0 || y > 9999 {
			return // RFC 3339 has no other years; the writer uses the clock
		}
		again, err := sealPoint(k.Public, h)
		if err != nil {
			t.Fatalf("a parsed header does not seal again: %v", err)
		}
		h2, _, err := parsePoint(again)
		if err != nil {
			t.Fatalf("a re-sealed header does not parse: %v", err)
		}
		if h2.Source != h.Source || h2.Host != h.Host || !h2.Time.Equal(h.Time) || h2.Files != h.Files ||
			h2.Bytes != h.Bytes || h2.KeyFingerprint != h.KeyFingerprint || len(h2.Packs) != len(h.Packs) ||
			len(h2.Labels) != len(h.Labels) || (h2.Parent == nil) != (h.Parent == nil) {
			t.Fatalf("header round trip changed it:\n got %+v\nwant %+v", h2, h)
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	k := fuzzKeys(f)
	restore := SetKDFForTesting(cheapKDF)
	env, err := WrapKeys(k, []byte("fuzzing passphrase, long enough"))
	restore()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add(k.PublicKeys.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := EnvelopeKDF(b); err == nil {
			if len(b) != envelopeLen {
				t.Fatalf("envelope of %d bytes accepted", len(b))
			}
			sum := sha256.Sum256(b[:envOffSum])
			if !bytes.Equal(sum[:], b[envOffSum:]) {
				t.Fatal("envelope with a bad checksum accepted")
			}
			// UnwrapKeys runs the KDF only after check, which bounds its cost.
			if p.check() == nil && (p.MemoryKiB > maxKDFMemoryKiB || p.Time > maxKDFTime) {
				t.Fatalf("KDF parameters %+v pass check", p)
			}
		}
		if p, err := ParsePublicKeys(b); err == nil {
			if got := p.Marshal(); !bytes.Equal(got, b) {
				t.Fatalf("public keys re-encode to %x, want %x", got, b)
			}
		}
	})
}

// readManifest decodes a whole manifest stream.
func readManifest(b []byte) ([]*Node, error) {
	m, err := NewManifestReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []*Node
	for {
		n, err := m.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
}

func writeManifest(tb testing.TB, nodes []*Node) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewManifestWriter(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range nodes {
		if err := w.Write(n); err != nil {
			tb.Fatalf("a node the reader accepted does not write: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzManifest(f *testing.F) {
	sum := sha256.Sum256([]byte("hello"))
	f.Add(writeManifest(f, []*Node{
		{Path: "d", Type: TypeDir, Perm: 0o755, Mtime: 1},
		{Path: "d/f", Type: TypeFile, Perm: 0o4644, Size: 5, Chunks: []ID{{1}}, SHA256: sum[:], Nlink: 2,
			Xattrs: []Xattr{{Name: "user.a", Value: []byte("v")}, {Name: "user.\xff", Value: nil}}},
		{Path: "d/g", Type: TypeFile, LinkTo: "d/f"},
		{Path: "d/s\xfe", Type: TypeSymlink, Target: "../x\xff", Perm: 0o777},
		{Path: "sparse", Type: TypeFile, Size: 100, Extents: []Extent{{10, 20}, {50, 5}}, SHA256: sum[:], Changed: true},
		{Path: "hole", Type: TypeFile, Size: 100, Extents: []Extent{}, SHA256: sum[:]},
	}))
	f.Add([]byte(`{"format":"tapeless-manifest","version":1}` + "\n"))
	f.Add([]byte(`{"format":"tapeless-manifest","version":1}` + "\n" + `{"path":"a\\b","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := readManifest(b)
		if err != nil {
			return
		}
		for _, n := range nodes {
			if err := CheckPath(n.Path); err != nil {
				t.Fatalf("decoded node with a bad path: %v", err)
			}
			if n.Size < 0 || n.Perm&^0o7777 != 0 {
				t.Fatalf("decoded node out of bounds: %+v", n)
			}
		}
		// Decode, encode, decode again: the second encoding is the
		// first, and the nodes agree field by field.
		enc := writeManifest(t, nodes)
		again, err := readManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, enc)
		}
		if len(again) != len(nodes) {
			t.Fatalf("re-encoded manifest has %d nodes, want %d", len(again), len(nodes))
		}
		for i := range nodes {
			a, b := nodes[i], again[i]
			if a.Path != b.Path || a.Type != b.Type || a.Size != b.Size || a.Perm != b.Perm || a.Target != b.Target ||
				a.LinkTo != b.LinkTo || a.Nlink != b.Nlink || len(a.Chunks) != len(b.Chunks) ||
				hex.EncodeToString(a.SHA256) != hex.EncodeToString(b.SHA256) || len(a.Extents) != len(b.Extents) ||
				(a.Extents == nil) != (b.Extents == nil) || len(a.Xattrs) != len(b.Xattrs) {
				t.Fatalf("node %d changed in a round trip:\n got %+v\nwant %+v", i, b, a)
			}
		}
		if enc2 := writeManifest(t, again); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
