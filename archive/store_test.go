package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

const testPassphrase = "test passphrase of enough length"

// newTestStore creates and opens a store with fresh keys and cheap KDF
// parameters; it is closed at cleanup.
func newTestStore(t *testing.T) (*Store, *Keys) {
	t.Helper()
	return newStoreForTest(t, testPassphrase)
}

// newStoreForTest creates and opens a store whose keys are wrapped under
// passphrase. KDF parameters stay cheap until the test ends, so unwrapping
// in the test is cheap too; the store is closed at cleanup.
func newStoreForTest(t testing.TB, passphrase string) (*Store, *Keys) {
	t.Helper()
	t.Cleanup(SetKDFForTesting(cheapKDF))
	k := mustKeys(t)
	env, err := WrapKeys(k, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	ctx := context.Background()
	if err := InitStore(ctx, dir, k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, k
}

// textLike returns n bytes of compressible, text-like data.
func textLike(seed uint64, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over a lazy dog while tapeless packs chunks into packs " +
		"and seals them with keys nobody on the server holds recovery point vault store offload")
	r := randomBytes(seed, n/2+16)
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[int(r[i%len(r)])%len(words)])
		if r[(i+7)%len(r)]%11 == 0 {
			b.WriteString(fmt.Sprintf(" %d\n", i))
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func mustAdd(t *testing.T, s *Store, bt BlobType, data []byte) (ID, int64) {
	t.Helper()
	id, n, err := s.AddBlob(context.Background(), bt, data)
	if err != nil {
		t.Fatalf("AddBlob: %v", err)
	}
	return id, n
}

func mustFlush(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// objectNames lists the object names under prefix.
func objectNames(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error {
		out = append(out, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// objectPath is where the file backend keeps an object of a store.
func objectPath(s *Store, name string) string {
	return filepath.Join(s.Dir(), storeObjectsDir, filepath.FromSlash(name))
}

// rewriteObject replaces an object's bytes in place (tests only: the
// backend itself never overwrites).
func rewriteObject(t *testing.T, s *Store, name string, f func([]byte) []byte) {
	t.Helper()
	p := objectPath(s, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s, k := newTestStore(t)
	s.SetPackSize(3 << 20) // several packs
	ctx := context.Background()
	blobs := map[ID][]byte{}
	types := map[ID]BlobType{}
	add := func(bt BlobType, data []byte) {
		id, _ := mustAdd(t, s, bt, data)
		blobs[id], types[id] = data, bt
	}
	for i := range 6 {
		add(BlobData, textLike(uint64(i), 700<<10))
		add(BlobData, randomBytes(uint64(100+i), 900<<10))
	}
	add(BlobData, nil)
	add(BlobData, []byte("x"))
	add(BlobTree, []byte(`{"format":"tapeless-manifest"}`))
	mustFlush(t, s)

	if got := len(objectNames(t, s.Objects(), PacksPrefix)); got < 2 {
		t.Errorf("%d packs, want several with a 3 MiB pack size", got)
	}
	for name, r := range map[string]*Reader{"NewReader": NewReader(s.Objects(), k), "Store.Reader": s.Reader(k)} {
		for id, want := range blobs {
			got, err := r.LoadBlob(ctx, types[id], id)
			if err != nil {
				t.Fatalf("%s: LoadBlob(%s): %v", name, id, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: LoadBlob(%s) returned different bytes", name, id)
			}
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
	// The same bytes as the other type are another blob.
	r := NewReader(s.Objects(), k)
	defer r.Close()
	if _, err := r.LoadBlob(ctx, BlobTree, s.ChunkID([]byte("x"))); !errors.Is(err, ErrBlobNotFound) {
		t.Errorf("loading a data blob as a tree blob: %v, want ErrBlobNotFound", err)
	}
}

func TestStoreDedup(t *testing.T) {
	s, _ := newTestStore(t)
	data := textLike(7, 1<<20)
	id1, n1 := mustAdd(t, s, BlobData, data)
	id2, n2 := mustAdd(t, s, BlobData, data) // pending duplicate
	if id1 != id2 || n1 == 0 || n2 != 0 {
		t.Fatalf("second add: id equal %v, stored %d then %d; want same id, second 0", id1 == id2, n1, n2)
	}
	mustFlush(t, s)
	if _, n3 := mustAdd(t, s, BlobData, data); n3 != 0 { // committed duplicate
		t.Errorf("add after flush stored %d bytes, want 0", n3)
	}
	mustFlush(t, s)
	if got := len(objectNames(t, s.Objects(), PacksPrefix)); got != 1 {
		t.Errorf("%d packs, want 1", got)
	}
	if ok, err := s.Has(context.Background(), id1); err != nil || !ok {
		t.Errorf("Has = %v, %v", ok, err)
	}
	if ok, _ := s.HasBlob(context.Background(), BlobTree, id1); ok {
		t.Error("HasBlob(tree) is true for a data blob")
	}
}

func TestStoreDedupAcrossReopen(t *testing.T) {
	s, _ := newTestStore(t)
	data := textLike(8, 300<<10)
	mustAdd(t, s, BlobData, data)
	mustFlush(t, s)
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, n := mustAdd(t, s2, BlobData, data); n != 0 {
		t.Errorf("add after reopen stored %d bytes, want 0", n)
	}
}

func TestStoreCompression(t *testing.T) {
	s, _ := newTestStore(t)
	text := textLike(9, 1<<20)
	_, nText := mustAdd(t, s, BlobData, text)
	if nText > int64(len(text))/2 {
		t.Errorf("text-like MiB stored as %d bytes, want under half", nText)
	}
	random := randomBytes(10, 1<<20)
	_, nRand := mustAdd(t, s, BlobData, random)
	overhead := int64(1 + sealOverhead + entryLen)
	if nRand != int64(len(random))+overhead {
		t.Errorf("random MiB stored as %d bytes, want raw size plus %d overhead", nRand, overhead)
	}
}

func TestCompressBlobSkipsIncompressible(t *testing.T) {
	random := randomBytes(11, 64<<10)
	if got := compressBlob(nil, random); got[0] != compNone || !bytes.Equal(got[1:], random) {
		t.Errorf("random data: mode %d, want stored as is", got[0])
	}
	if got := compressBlob(nil, textLike(12, 64<<10)); got[0] != compZstd {
		t.Errorf("text data: mode %d, want zstd", got[0])
	}
}

func TestStoreConcurrentAdd(t *testing.T) {
	s, k := newTestStore(t)
	s.SetPackSize(1 << 20)
	ctx := context.Background()
	var mu sync.Mutex
	want := map[ID][]byte{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 12 {
				// Every goroutine also adds blobs the others add.
				data := textLike(uint64(i%8), 200<<10+g*i)
				if i%3 == 0 {
					data = textLike(uint64(i), 100<<10)
				}
				id, _, err := s.AddBlob(ctx, BlobData, data)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[id] = data
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustFlush(t, s)
	r := s.Reader(k)
	defer r.Close()
	for id, data := range want {
		got, err := r.LoadBlob(ctx, BlobData, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("LoadBlob(%s) = %d bytes, %v", id, len(got), err)
		}
	}
	if packs, _ := s.Packs(ctx); len(packs) < 2 {
		t.Errorf("%d packs, want several with 1 MiB packs", len(packs))
	}
}

// savePoint stores the given blobs and a point referencing them.
func savePoint(t *testing.T, s *Store, source string, when time.Time, data ...[]byte) (ID, []ID) {
	t.Helper()
	ctx := context.Background()
	refs := s.NewRefs()
	var ids []ID
	for _, d := range data {
		id, _ := mustAdd(t, s, BlobData, d)
		ids = append(ids, id)
		if err := refs.Add(ctx, BlobData, id); err != nil {
			t.Fatal(err)
		}
	}
	tree, _ := mustAdd(t, s, BlobTree, []byte(fmt.Sprintf("tree of %s at %s", source, when)))
	if err := refs.Add(ctx, BlobTree, tree); err != nil {
		t.Fatal(err)
	}
	id, err := s.SavePoint(ctx, PointHeader{Source: source, Time: when, Host: "h1", Files: int64(len(data)),
		Bytes: 123, Tree: []ID{tree}, Labels: map[string]string{"name": source}, Refs: refs})
	if err != nil {
		t.Fatalf("SavePoint: %v", err)
	}
	return id, ids
}

func TestPoints(t *testing.T) {
	s, k := newTestStore(t)
	s.SetPackSize(1 << 20)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 123, time.UTC)
	idA, _ := savePoint(t, s, "home", t0, textLike(1, 900<<10), randomBytes(2, 900<<10))
	idB, _ := savePoint(t, s, "etc", t0.Add(time.Hour), textLike(1, 900<<10)) // shares a chunk

	ps, err := s.ListPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].ID != idA || ps[1].ID != idB {
		t.Fatalf("ListPoints = %+v, want A then B", ps)
	}
	a := ps[0]
	if a.Source != "home" || !a.Time.Equal(t0) || a.Host != "h1" || a.Files != 2 || a.Bytes != 123 ||
		a.KeyFingerprint != k.Fingerprint || a.Format != CurrentFormat || a.Labels["name"] != "home" {
		t.Errorf("clear header = %+v", a)
	}
	if a.Tree != nil {
		t.Error("ListPoints returned the sealed tree")
	}
	if len(a.Packs) < 2 {
		t.Errorf("point A lists %d packs, want at least 2 (1 MiB packs)", len(a.Packs))
	}
	all, _ := s.Packs(ctx)
	for _, p := range a.Packs {
		found := false
		for _, q := range all {
			found = found || q == p
		}
		if !found {
			t.Errorf("point lists pack %+v unknown to the store", p)
		}
	}

	r := NewReader(s.Objects(), k)
	defer r.Close()
	full, err := r.LoadPoint(ctx, idA)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Tree) != 1 || full.ID != idA || full.Source != "home" {
		t.Fatalf("LoadPoint = %+v", full)
	}
	if _, err := r.LoadBlob(ctx, BlobTree, full.Tree[0]); err != nil {
		t.Errorf("tree blob of the point: %v", err)
	}

	// Nothing unused while both points live; B's removal frees its tree
	// blob's pack only if nothing else uses it.
	if un, err := s.UnusedPacks(ctx); err != nil || len(un) != 0 {
		t.Errorf("UnusedPacks = %v, %v; want none", un, err)
	}
	if err := s.RemovePoint(ctx, idA); err != nil {
		t.Fatal(err)
	}
	un, err := s.UnusedPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) == 0 {
		t.Fatal("no pack became unused after removing point A")
	}
	for _, p := range un {
		if err := s.RemovePack(ctx, p.Pack); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := Verify(ctx, s.Objects(), k, true, 100, func(p VerifyProblem) { t.Errorf("problem: %v", p) }); err != nil || st.Points != 1 || st.Unreferenced != 0 {
		t.Errorf("Verify after GC = %+v, %v", st, err)
	}
	// A removed pack's blobs are no longer deduplicated against.
	if ok, _ := s.HasBlob(ctx, BlobTree, full.Tree[0]); ok {
		t.Error("blob of a removed pack still counts as stored")
	}
}

func TestSavePointRefusesMissingBlob(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	refs := s.NewRefs()
	if err := refs.Add(ctx, BlobData, s.ChunkID([]byte("never added"))); err != nil {
		t.Fatal(err)
	}
	_, err := s.SavePoint(ctx, PointHeader{Source: "x", Time: time.Now(), Refs: refs})
	if err == nil || !strings.Contains(err.Error(), "not in the store") {
		t.Fatalf("SavePoint with a missing blob = %v", err)
	}
	if _, err := s.SavePoint(ctx, PointHeader{Source: "x", Time: time.Now()}); err == nil {
		t.Fatal("SavePoint without Refs succeeded")
	}
}

func TestStoreLock(t *testing.T) {
	s, _ := newTestStore(t)
	_, err := OpenStore(context.Background(), s.Dir())
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenStore = %v, want ErrLocked", err)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("store %s is locked by host %s pid %d since ", s.Dir(), host, os.Getpid())
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatalf("OpenStore after Close: %v", err)
	}
	if s2.StaleLock() != nil {
		t.Error("a cleanly released lock was reported stale")
	}
	s2.Close()
}

func TestStoreStaleLockTakenOver(t *testing.T) {
	s, _ := newTestStore(t)
	dir := s.Dir()
	s.Close()
	// A PID that certainly died: a child we waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	host, _ := os.Hostname()
	stale := fmt.Sprintf(`{"host":%q,"pid":%d,"started":"2026-01-02T03:04:05Z"}`, host, cmd.Process.Pid)
	if err := os.WriteFile(lockPath(dir), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatalf("OpenStore over a stale lock: %v", err)
	}
	defer s2.Close()
	if sl := s2.StaleLock(); sl == nil || sl.PID != cmd.Process.Pid {
		t.Errorf("StaleLock = %+v, want the dead PID %d", sl, cmd.Process.Pid)
	}
}

func TestStoreLockFromOtherHostIsRespected(t *testing.T) {
	s, _ := newTestStore(t)
	dir := s.Dir()
	s.Close()
	other := `{"host":"elsewhere.example","pid":4242,"started":"2026-01-02T03:04:05Z"}`
	if err := os.WriteFile(lockPath(dir), []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenStore(context.Background(), dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by host elsewhere.example pid 4242 since 2026-01-02T03:04:05Z") {
		t.Fatalf("OpenStore under another host's lock = %v", err)
	}
}

func TestOpenStoreRefusesUnknownFormat(t *testing.T) {
	s, _ := newTestStore(t)
	dir := s.Dir()
	s.Close()
	p := filepath.Join(dir, storeConfigFile)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 7`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenStore(context.Background(), dir)
	if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "unsupported format version 7") {
		t.Fatalf("OpenStore of format 7 = %v", err)
	}
}

func TestObjectsOfUnknownVersionRefused(t *testing.T) {
	s, k := newTestStore(t)
	ctx := context.Background()
	id, _ := savePoint(t, s, "src", time.Now(), []byte("content"))
	obj, err := loadObject(ctx, s.Objects(), PointName(id), id)
	if err != nil {
		t.Fatal(err)
	}
	obj[5] = 2
	if _, err := openPoint(k, obj); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("point of version 2: %v, want ErrUnsupportedFormat", err)
	}
	if _, _, err := parsePoint(obj); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("point header of version 2: %v, want ErrUnsupportedFormat", err)
	}
	hdr := append(objectPrefix(kindPack, 0), make([]byte, keyBlockLen)...)
	if _, _, err := packDataKey(k, hdr); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("pack of version 0: %v, want ErrUnsupportedFormat", err)
	}
}

func TestInitStoreChecks(t *testing.T) {
	defer SetKDFForTesting(cheapKDF)()
	ctx := context.Background()
	k1, k2 := mustKeys(t), mustKeys(t)
	env1, _ := WrapKeys(k1, []byte(testPassphrase))
	dir := t.TempDir()
	if err := InitStore(ctx, filepath.Join(dir, "a"), k2.PublicKeys, env1); err == nil {
		t.Error("InitStore accepted an envelope of other keys")
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := InitStore(ctx, dir, k1.PublicKeys, env1); err == nil {
		t.Error("InitStore accepted a non-empty directory")
	}
	if _, err := OpenStore(ctx, dir); err == nil || !strings.Contains(err.Error(), "not a tapeless store") {
		t.Errorf("OpenStore of a plain directory = %v", err)
	}
	s := filepath.Join(dir, "ok")
	if err := InitStore(ctx, s, k1.PublicKeys, env1); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.PublicKeys() != k1.PublicKeys || !bytes.Equal(st.Envelope(), env1) {
		t.Error("reopened store has other keys")
	}
	got, err := UnwrapKeys(st.Envelope(), []byte(testPassphrase))
	if err != nil || *got != *k1 {
		t.Errorf("store envelope does not unwrap to the keys: %v", err)
	}
	for _, f := range []string{storePubFile, storeEnvelopeFile} {
		fi, err := os.Stat(filepath.Join(s, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
}

func TestReaderLoadsThePointsIndexesFirst(t *testing.T) {
	s, k := newTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	idA, blobsA := savePoint(t, s, "a", t0, randomBytes(40, 300<<10))
	savePoint(t, s, "b", t0.Add(time.Hour), randomBytes(41, 300<<10))
	if n := len(objectNames(t, s.Objects(), IndexPrefix)); n != 2 {
		t.Fatalf("%d index objects, want 2", n)
	}
	r := NewReader(s.Objects(), k)
	defer r.Close()
	h, err := r.LoadPoint(ctx, idA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, BlobData, blobsA[0]); err != nil {
		t.Fatal(err)
	}
	if got := len(r.loaded); got != len(h.Packs) {
		t.Errorf("reader loaded %d index objects, want only point A's %d", got, len(h.Packs))
	}
	tmp := r.tmpDir
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary index %s left after Close: %v", tmp, err)
	}
}

func TestRemoveOrphans(t *testing.T) {
	s, k := newTestStore(t)
	ctx := context.Background()
	id, blobs := savePoint(t, s, "a", time.Now(), textLike(50, 200<<10))
	// A crash after a pack and its index object were written but before
	// they were recorded leaves objects the dedup index does not know.
	p, err := newPackBuilder(k.Public, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("orphaned blob")
	if err := p.add(BlobData, chunkID(&k.ChunkKey, data), len(data), compressBlob(nil, data)); err != nil {
		t.Fatal(err)
	}
	pack, _ := p.finish()
	packID := objectHash(pack)
	idx, _ := sealIndex(k.Public, packID, int64(len(pack)), p.entries)
	for name, b := range map[string][]byte{PackName(packID): pack, IndexName(objectHash(idx)): idx} {
		if err := saveObject(ctx, s.Objects(), name, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RemoveOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("RemoveOrphans removed %v, want the orphaned pack and index object", got)
	}
	r := s.Reader(k)
	defer r.Close()
	if _, err := r.LoadBlob(ctx, BlobData, blobs[0]); err != nil {
		t.Errorf("a recorded blob is gone: %v", err)
	}
	if _, err := NewReader(s.Objects(), k).LoadPoint(ctx, id); err != nil {
		t.Errorf("the point is gone: %v", err)
	}
	// Refused while a pack is open.
	mustAdd(t, s, BlobData, []byte("open pack"))
	if _, err := s.RemoveOrphans(ctx); err == nil {
		t.Error("RemoveOrphans ran with an open pack")
	}
}

// TestHelperHoldStore is not a test: TestStoreLockAcrossProcesses runs the
// test binary with it to hold a store from another process.
func TestHelperHoldStore(t *testing.T) {
	dir := os.Getenv("TAPELESS_TEST_HOLD_STORE")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := OpenStore(context.Background(), dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer s.Close()
	fmt.Println("locked")
	time.Sleep(time.Minute) // until killed
}

func TestStoreLockAcrossProcesses(t *testing.T) {
	s, _ := newTestStore(t)
	dir := s.Dir()
	s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
	cmd.Env = append(os.Environ(), "TAPELESS_TEST_HOLD_STORE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make([]byte, 7)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, err = OpenStore(context.Background(), dir)
	host, _ := os.Hostname()
	want := fmt.Sprintf("store %s is locked by host %s pid %d since ", dir, host, cmd.Process.Pid)
	if !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("OpenStore while another process holds it = %v, want %q…", err, want)
	}
	// Killed without a chance to clean up: the lock file still names it,
	// but the kernel dropped its flock, so the lock is stale.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	s2, err := OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatalf("OpenStore after the holder was killed: %v", err)
	}
	defer s2.Close()
	if sl := s2.StaleLock(); sl == nil || sl.PID != cmd.Process.Pid {
		t.Errorf("StaleLock = %+v, want the killed PID %d", sl, cmd.Process.Pid)
	}
}

func TestPackWriteFailureSurfaces(t *testing.T) {
	s, _ := newTestStore(t)
	s.SetPackSize(256 << 10)
	fault := storagetest.NewFault(s.objects)
	s.objects = fault
	ctx := context.Background()
	fault.FailNth(storage.OpSave, 1, nil) // the first pack
	var addErr error
	var ids []ID
	for i := 0; i < 6 && addErr == nil; i++ {
		var id ID
		id, _, addErr = s.AddBlob(ctx, BlobData, randomBytes(uint64(60+i), 300<<10))
		ids = append(ids, id)
	}
	err := s.Flush(ctx)
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("Flush after a failed background pack write = %v (AddBlob: %v), want the injected error", err, addErr)
	}
	// Nothing of the failed pack counts as stored.
	if ok, _ := s.Has(ctx, ids[0]); ok {
		t.Error("a blob of the failed pack counts as stored")
	}
	if _, _, err := s.AddBlob(ctx, BlobData, []byte("more")); err == nil {
		t.Error("AddBlob after a failed write succeeded; the store must be reopened")
	}
}

// A point's reference set does not grow with the new blobs of a large
// backup: blobs committed since they were added are resolved as it goes.
func TestRefsStayBounded(t *testing.T) {
	s, _ := newTestStore(t)
	s.SetPackSize(64 << 10)
	ctx := context.Background()
	refs := s.NewRefs()
	const n = 3 * refsSweepAt
	var ids []ID
	for i := range n {
		id, _, err := s.AddBlob(ctx, BlobData, randomBytes(uint64(i), 1024))
		if err != nil {
			t.Fatal(err)
		}
		if err := refs.Add(ctx, BlobData, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// At most the blobs of the open pack and of those being written stay
	// unresolved after a sweep, plus what was added since.
	if got := len(refs.unresolved); got >= refsSweepAt {
		t.Errorf("%d of %d added blobs unresolved, want fewer than %d", got, n, refsSweepAt)
	}
	tree, _ := mustAdd(t, s, BlobTree, []byte("tree of bounded"))
	if err := refs.Add(ctx, BlobTree, tree); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pid, err := s.SavePoint(ctx, PointHeader{Source: "bounded", Time: time.Unix(1, 0), Host: "h1", Tree: []ID{tree}, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	// Every blob's pack is still in the point's pack list.
	ps, err := s.ListPoints(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != pid {
		t.Fatalf("ListPoints = %v, %v", ps, err)
	}
	want := map[ID]bool{}
	for _, id := range ids {
		loc, ok, err := s.lookup(makeBlobKey(BlobData, id))
		if err != nil || !ok {
			t.Fatalf("blob %s not in the index: %v", id, err)
		}
		want[loc.Pack] = true
	}
	got := map[ID]bool{}
	for _, p := range ps[0].Packs {
		got[p.Pack] = true
	}
	for p := range want {
		if !got[p] {
			t.Errorf("pack %s holding a referenced blob is missing from the point", p)
		}
	}
}
