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
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"

	"github.com/tapeless/tapeless/storage"
)

// The golden sample pins format 1: objects sealed once, checked in as hex,
// that every later build must still open. Regenerate ONLY when adding a new
// format version, into a new folder (testdata/format/vN); never rewrite v1:
//
//	go test ./archive -run TestFormatGolden -update-format
var updateFormat = flag.Bool("update-format", false, "rewrite testdata/format/v1/sample.json (only for a new format version)")

const goldenPath = "../testdata/format/v1/sample.json"

type goldenBlob struct {
	Type  BlobType `json:"type"`
	ID    ID       `json:"id"`
	Plain string   `json:"plain_hex"`
}

type goldenSample struct {
	Note       string            `json:"note"`
	Passphrase string            `json:"passphrase"`
	Envelope   string            `json:"envelope_hex"`
	PublicKeys string            `json:"public_keys_hex"`
	Point      ID                `json:"point"`
	Source     string            `json:"source"`
	Time       time.Time         `json:"time"`
	Objects    map[string]string `json:"objects_hex"`
	Blobs      []goldenBlob      `json:"blobs"`
	// ChunkLengths are the chunker's cuts of randomBytes(77, 6 MiB):
	// not a read-compatibility matter, but a change breaks dedup with
	// old points, so it must be deliberate.
	ChunkLengths []int `json:"chunk_lengths"`
}

func goldenKeys() *Keys {
	k := &Keys{}
	k.Private = sha256.Sum256([]byte("tapeless golden private key v1"))
	k.ChunkKey = sha256.Sum256([]byte("tapeless golden chunk key v1"))
	pub, err := curve25519.X25519(k.Private[:], curve25519.Basepoint)
	if err != nil {
		panic(err)
	}
	copy(k.Public[:], pub)
	k.Fingerprint = fingerprint(k.Public)
	return k
}

func chunkLengths(t *testing.T) []int {
	var out []int
	for _, c := range chunkAll(t, bytes.NewReader(randomBytes(77, 6<<20))) {
		out = append(out, len(c))
	}
	return out
}

func writeGolden(t *testing.T) {
	ctx := context.Background()
	k := goldenKeys()
	g := goldenSample{
		Note:       "tapeless format 1 golden sample; see archive/format_test.go. Never regenerate.",
		Passphrase: "golden passphrase for format v1",
		Source:     "golden",
		Time:       time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC),
		Objects:    map[string]string{},
	}
	env, err := WrapKeysWithParams(k, []byte(g.Passphrase), KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	g.Envelope = hex.EncodeToString(env)
	g.PublicKeys = hex.EncodeToString(k.PublicKeys.Marshal())
	dir := filepath.Join(t.TempDir(), "store")
	if err := InitStore(ctx, dir, k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetPackSize(4 << 10)
	refs := s.NewRefs()
	var tree []ID
	for _, b := range []struct {
		t    BlobType
		data []byte
	}{
		{BlobData, textLike(1, 6<<10)},   // zstd
		{BlobData, randomBytes(2, 1500)}, // stored as is
		{BlobData, nil},                  // empty
		{BlobTree, []byte(`{"format":"tapeless-manifest","version":1}` + "\n")},
	} {
		id, _, err := s.AddBlob(ctx, b.t, b.data)
		if err != nil {
			t.Fatal(err)
		}
		if err := refs.Add(ctx, b.t, id); err != nil {
			t.Fatal(err)
		}
		if b.t == BlobTree {
			tree = append(tree, id)
		}
		g.Blobs = append(g.Blobs, goldenBlob{Type: b.t, ID: id, Plain: hex.EncodeToString(b.data)})
	}
	g.Point, err = s.SavePoint(ctx, PointHeader{Source: g.Source, Time: g.Time, Host: "golden-host", Files: 3, Bytes: 7644,
		Tree: tree, Labels: map[string]string{"name": "golden"}, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{PacksPrefix, IndexPrefix, PointsPrefix} {
		for _, name := range objectNames(t, s.Objects(), prefix) {
			data, err := loadObject(ctx, s.Objects(), name, mustIDFromName(t, name))
			if err != nil {
				t.Fatal(err)
			}
			g.Objects[name] = hex.EncodeToString(data)
		}
	}
	g.ChunkLengths = chunkLengths(t)
	out, _ := json.MarshalIndent(g, "", "  ")
	if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustIDFromName(t *testing.T, name string) ID {
	t.Helper()
	id, err := idFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFormatGolden opens the checked-in format-1 sample with today's code:
// envelope, point, index objects, packs and every blob.
func TestFormatGolden(t *testing.T) {
	if *updateFormat {
		writeGolden(t)
	}
	raw, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenSample
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	k, err := UnwrapKeys(mustHex(t, g.Envelope), []byte(g.Passphrase))
	if err != nil {
		t.Fatalf("golden envelope: %v", err)
	}
	if *k != *goldenKeys() {
		t.Fatal("golden envelope unwraps to other keys")
	}
	if pk, err := ParsePublicKeys(mustHex(t, g.PublicKeys)); err != nil || pk != k.PublicKeys {
		t.Fatalf("golden public keys: %v", err)
	}

	b, err := storage.NewFile(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range g.Objects {
		data := mustHex(t, h)
		if err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := ListPoints(ctx, b)
	if err != nil || len(ps) != 1 || ps[0].ID != g.Point || ps[0].Source != g.Source || !ps[0].Time.Equal(g.Time) {
		t.Fatalf("ListPoints of the golden sample = %+v, %v", ps, err)
	}
	r := NewReader(b, k)
	defer r.Close()
	h, err := r.LoadPoint(ctx, g.Point)
	if err != nil {
		t.Fatalf("golden point: %v", err)
	}
	if h.Format != 1 || h.Host != "golden-host" || h.Files != 3 || h.Bytes != 7644 || len(h.Tree) != 1 || h.Labels["name"] != "golden" {
		t.Errorf("golden point header = %+v", h)
	}
	for _, gb := range g.Blobs {
		got, err := r.LoadBlob(ctx, gb.Type, gb.ID)
		if err != nil {
			t.Fatalf("golden %s blob %s: %v", gb.Type, gb.ID, err)
		}
		if !bytes.Equal(got, mustHex(t, gb.Plain)) {
			t.Errorf("golden %s blob %s: plaintext differs", gb.Type, gb.ID)
		}
		if chunkID(&k.ChunkKey, got) != gb.ID {
			t.Errorf("golden blob %s: the chunk ID function changed", gb.ID)
		}
	}
	st, err := Verify(ctx, b, k, true, 100, func(p VerifyProblem) { t.Errorf("golden verify: %v", p) })
	if err != nil || st.Blobs != len(g.Blobs) {
		t.Errorf("golden Verify = %+v, %v", st, err)
	}
	if got := chunkLengths(t); !equalInts(got, g.ChunkLengths) {
		t.Errorf("chunker cuts changed: %v, golden %v (dedup with old points would break)", got, g.ChunkLengths)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
