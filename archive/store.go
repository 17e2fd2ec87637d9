package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// Store layout on disk (see docs/FORMAT.md "Store directory"):
//
//	<dir>/config        JSON: format version, creation time, key fingerprint, keys digest
//	<dir>/public-keys   PublicKeys.Marshal (0600: the chunk key is secret)
//	<dir>/key-envelope  the passphrase-wrapped key envelope (0600)
//	<dir>/objects/      packs/, index/, points/: the objects offload copies
//	<dir>/state.db      bbolt: the dedup index and other local state
//	<dir>/lock          the single-writer lock
const (
	storeConfigFile   = "config"
	storePubFile      = "public-keys"
	storeEnvelopeFile = "key-envelope"
	storeObjectsDir   = "objects"
	storeDBFile       = "state.db"
)

// bbolt buckets owned by the store. Other code keeps its own buckets in
// DB() under other names.
var (
	bucketBlobs     = []byte("archive.blobs")     // type|id -> location
	bucketPacks     = []byte("archive.packs")     // pack id -> packRecord
	bucketPackBlobs = []byte("archive.packblobs") // pack id -> type|id ... (for RemovePack)
)

// storeConfig is <dir>/config.
type storeConfig struct {
	Format         int       `json:"format"`
	Created        time.Time `json:"created"`
	KeyFingerprint string    `json:"key_fingerprint"`
	// KeysDigest is PublicKeys.Digest of public-keys, recorded at
	// creation (absent in stores made before it existed).
	KeysDigest string `json:"keys_digest,omitempty"`
}

// blobKey is the dedup index key: blob type, then blob ID.
type blobKey [33]byte

func makeBlobKey(t BlobType, id ID) blobKey {
	var k blobKey
	k[0] = byte(t)
	copy(k[1:], id[:])
	return k
}

// location is where a blob lives: pack ID, offset, stored length and raw
// length (44 bytes in bbolt).
type location struct {
	Pack   ID
	Offset uint32
	Length uint32
	RawLen uint32
}

func (l location) encode() []byte {
	b := make([]byte, 0, 44)
	b = append(b, l.Pack[:]...)
	b = binary.BigEndian.AppendUint32(b, l.Offset)
	b = binary.BigEndian.AppendUint32(b, l.Length)
	return binary.BigEndian.AppendUint32(b, l.RawLen)
}

func decodeLocation(b []byte) (location, error) {
	var l location
	if len(b) != 44 {
		return l, fmt.Errorf("dedup index entry of %d bytes, want 44", len(b))
	}
	copy(l.Pack[:], b)
	l.Offset = binary.BigEndian.Uint32(b[32:])
	l.Length = binary.BigEndian.Uint32(b[36:])
	l.RawLen = binary.BigEndian.Uint32(b[40:])
	return l, nil
}

// packRecord is the store's record of a committed pack.
type packRecord struct {
	Size      int64
	Index     ID
	IndexSize int64
	Blobs     uint32
	RawBytes  int64
	Created   int64 // unix seconds
}

func (p packRecord) encode() []byte {
	b := make([]byte, 0, 68)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Size))
	b = append(b, p.Index[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.IndexSize))
	b = binary.BigEndian.AppendUint32(b, p.Blobs)
	b = binary.BigEndian.AppendUint64(b, uint64(p.RawBytes))
	return binary.BigEndian.AppendUint64(b, uint64(p.Created))
}

func decodePackRecord(b []byte) (packRecord, error) {
	var p packRecord
	if len(b) != 68 {
		return p, fmt.Errorf("pack record of %d bytes, want 68", len(b))
	}
	p.Size = int64(binary.BigEndian.Uint64(b))
	copy(p.Index[:], b[8:40])
	p.IndexSize = int64(binary.BigEndian.Uint64(b[40:]))
	p.Blobs = binary.BigEndian.Uint32(b[48:])
	p.RawBytes = int64(binary.BigEndian.Uint64(b[52:]))
	p.Created = int64(binary.BigEndian.Uint64(b[60:]))
	return p, nil
}

// Store is the disk tier: a directory of young recovery points. It writes
// with the public keys only. One process at a time holds a Store (see
// OpenStore); within it, AddBlob, Has and Flush are safe for concurrent use.
type Store struct {
	dir      string
	pub      PublicKeys
	env      []byte
	objects  storage.Backend
	db       *bbolt.DB
	lock     *storeLock
	packSize int

	mu       sync.Mutex
	idle     *sync.Cond // signalled when inflight drops
	cur      *packBuilder
	pending  map[blobKey]struct{} // added, not yet committed to bbolt
	inflight int                  // packs being written
	err      error                // first pack write failure (sticky)
	closed   bool

	bgCtx    context.Context // for background pack writes; cancelled by Close
	bgCancel context.CancelFunc

	// packs the dedup index names are checked against the objects folder
	// once each (see packPresent); lost lists, in order, those found
	// missing, whose index entries were dropped.
	packMu  sync.Mutex
	present map[ID]bool
	lost    []ID
}

// InitStore creates a store in dir (absent or empty) for the given keys.
// The envelope is the passphrase-wrapped key set (WrapKeys); it is kept in
// the store so a restore from disk needs only the passphrase.
func InitStore(ctx context.Context, dir string, pub PublicKeys, envelope []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fp, err := EnvelopeFingerprint(envelope)
	if err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if fp != pub.Fingerprint {
		return fmt.Errorf("init store %s: envelope is for key %s, public keys are %s", dir, fp, pub.Fingerprint)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("init store %s: directory is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, storeObjectsDir), 0o700); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if err := storage.WriteNewFileAtomic(filepath.Join(dir, storePubFile), pub.Marshal(), 0o600); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if err := storage.WriteNewFileAtomic(filepath.Join(dir, storeEnvelopeFile), envelope, 0o600); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	db, err := openStateDB(dir)
	if err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	// config last: a directory without it is not a store, so a crash
	// during init leaves nothing that OpenStore would accept.
	cfg, _ := json.MarshalIndent(storeConfig{Format: CurrentFormat, Created: time.Now().UTC(),
		KeyFingerprint: pub.Fingerprint, KeysDigest: pub.Digest()}, "", "  ")
	if err := storage.WriteNewFileAtomic(filepath.Join(dir, storeConfigFile), append(cfg, '\n'), 0o600); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	return nil
}

func openStateDB(dir string) (*bbolt.DB, error) {
	db, err := bbolt.Open(filepath.Join(dir, storeDBFile), 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state db: %w", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketBlobs, bucketPacks, bucketPackBlobs, bucketVaultPacks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db: %w", err)
	}
	return db, nil
}

// OpenStore opens the store in dir for writing. It takes the store lock: a
// second writer (another process, or a second OpenStore in this one) gets
// an error wrapping ErrLocked that names the holder (host, PID, start
// time); a lock left by a dead process on this host is taken over. Stores
// of an unknown format version are refused (ErrUnsupportedFormat).
func OpenStore(ctx context.Context, dir string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cfg, err := checkStoreConfig(dir)
	if err != nil {
		return nil, err
	}
	lock, err := acquireLock(dir)
	if err != nil {
		return nil, err
	}
	s, err := openLocked(ctx, dir, cfg, lock)
	if err != nil {
		lock.release()
		return nil, err
	}
	if err := s.removeTemps(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// tempRemover is the file backend's cleanup of killed saves.
type tempRemover interface {
	RemoveTemps(ctx context.Context) (int, int64, error)
}

// removeTemps deletes what saves killed mid-way (a backup killed while
// writing a pack) left in objects/: up to a pack each, never reused. Only
// with the lock held, which guarantees no other process is saving here.
func (s *Store) removeTemps(ctx context.Context) error {
	r, ok := storage.Innermost(s.objects).(tempRemover)
	if !ok {
		return nil
	}
	if _, _, err := r.RemoveTemps(ctx); err != nil {
		return fmt.Errorf("open store %s: %w", s.dir, err)
	}
	return nil
}

func openLocked(ctx context.Context, dir string, cfg storeConfig, lock *storeLock) (*Store, error) {
	// Authenticated before use: everything written is sealed to these keys.
	pub, err := readPublicKeys(dir, cfg)
	if err != nil {
		return nil, err
	}
	env, objects, err := openStoreFiles(ctx, dir)
	if err != nil {
		return nil, err
	}
	db, err := openStateDB(dir)
	if err != nil {
		objects.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{
		dir: dir, pub: pub, env: env, objects: objects, db: db, lock: lock,
		packSize: DefaultPackSize, pending: map[blobKey]struct{}{}, present: map[ID]bool{},
	}
	s.idle = sync.NewCond(&s.mu)
	s.bgCtx, s.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	return s, nil
}

// Close releases the store. Blobs added since the last Flush and not yet
// in a written pack are dropped: call Flush first to keep them.
func (s *Store) Close() error {
	s.mu.Lock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cur = nil
	s.mu.Unlock()
	s.bgCancel()
	err := s.db.Close()
	if cerr := s.objects.Close(); err == nil {
		err = cerr
	}
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return nil
}

// Dir returns the store's directory (absolute).
func (s *Store) Dir() string { return s.dir }

// PublicKeys returns the keys the store writes with.
func (s *Store) PublicKeys() PublicKeys { return s.pub }

// Envelope returns the store's copy of the key envelope (WrapKeys output).
func (s *Store) Envelope() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.env)
}

// StaleLock returns the holder of a stale lock that OpenStore took over,
// or nil; worth a warning.
func (s *Store) StaleLock() *LockInfo { return s.lock.Stale }

// Objects returns the file backend over <dir>/objects holding packs/,
// index/ and points/. Offload copies these names as they are into a vault.
func (s *Store) Objects() storage.Backend { return s.objects }

// DB returns the store's local state database (bbolt). The store's own
// buckets are named "archive.*"; other code may keep its own buckets here.
// Do not close it.
func (s *Store) DB() *bbolt.DB { return s.db }

// SetPackSize sets the size at which packs are closed (DefaultPackSize
// unless changed); small values are for tests.
func (s *Store) SetPackSize(n int) {
	s.mu.Lock()
	s.packSize = n
	s.mu.Unlock()
}

// ChunkID returns the ID of a blob: keyed BLAKE3-256 of data under the
// chunk key, so the holder of the stored objects cannot test guesses of
// content.
func (s *Store) ChunkID(data []byte) ID { return chunkID(&s.pub.ChunkKey, data) }

// lookup returns the committed location of a blob.
func (s *Store) lookup(k blobKey) (location, bool, error) {
	var loc location
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketBlobs).Get(k[:])
		if v == nil {
			return nil
		}
		var err error
		loc, err = decodeLocation(v)
		found = err == nil
		return err
	})
	return loc, found, err
}

// lookupLive is lookup for deduplication: a blob counts as stored only
// when its pack is still in the objects folder. A pack found missing is
// dropped from the dedup index (see packPresent), so the blob is stored
// again rather than referenced in a pack nobody can read.
func (s *Store) lookupLive(ctx context.Context, k blobKey) (location, bool, error) {
	loc, ok, err := s.lookup(k)
	if err != nil || !ok {
		return loc, ok, err
	}
	ok, err = s.packPresent(ctx, loc.Pack)
	return loc, ok, err
}

// packPresent reports whether a pack the dedup index names is in the
// objects folder with the size recorded for it. Each pack is checked once
// (a stat) until ResetPackChecks; packs this Store wrote count as present.
// A pack that is missing or of another size is forgotten by the dedup
// index and remembered in LostPacks. Only this process writes the store
// (the lock), and a pack leaves the folder only after RemovePack has
// forgotten it or retired it to the vault, so a recorded pack that is
// absent was lost, not moved. A retired pack is present in the vault
// tier (vaulted.go) and is not looked for here.
func (s *Store) packPresent(ctx context.Context, pack ID) (bool, error) {
	s.packMu.Lock()
	ok, known := s.present[pack]
	s.packMu.Unlock()
	if known {
		return ok, nil
	}
	var rec packRecord
	var recorded, vaultOnly bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketPacks).Get(pack[:])
		if v == nil {
			var err error
			_, vaultOnly, err = vaultRecord(tx, pack)
			return err
		}
		var err error
		rec, err = decodePackRecord(v)
		recorded = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("check pack %s: %w", pack, err)
	}
	var info storage.Info
	if !vaultOnly {
		info, err = s.objects.Stat(ctx, PackName(pack))
	}
	switch {
	case vaultOnly:
		ok = true // retired to the vault: see vaulted.go
	case err == nil && recorded && info.Size == rec.Size:
		ok = true
	case err == nil || errors.Is(err, storage.ErrNotFound):
		if err := s.forgetLostPack(pack); err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("check pack %s: %w", pack, err)
	}
	s.packMu.Lock()
	defer s.packMu.Unlock()
	if _, known := s.present[pack]; !known {
		s.present[pack] = ok
		if !ok {
			s.lost = append(s.lost, pack)
		}
	}
	return ok, nil
}

// forgetLostPack drops a lost pack from the dedup index: its blobs' entries,
// its blob list and its record. Its index object stays, for verify to
// name.
func (s *Store) forgetLostPack(pack ID) error {
	err := s.db.Update(func(tx *bbolt.Tx) error { return forgetPack(tx, pack) })
	if err != nil {
		return fmt.Errorf("forget lost pack %s: %w", pack, err)
	}
	return nil
}

// forgetPack deletes a pack's record and the dedup entries that point
// into it.
func forgetPack(tx *bbolt.Tx, pack ID) error {
	blobs := tx.Bucket(bucketBlobs)
	keys := tx.Bucket(bucketPackBlobs).Get(pack[:])
	for i := 0; i+33 <= len(keys); i += 33 {
		k := keys[i : i+33]
		if v := blobs.Get(k); v != nil {
			if loc, err := decodeLocation(v); err == nil && loc.Pack == pack {
				if err := blobs.Delete(k); err != nil {
					return err
				}
			}
		}
	}
	if err := tx.Bucket(bucketPackBlobs).Delete(pack[:]); err != nil {
		return err
	}
	return tx.Bucket(bucketPacks).Delete(pack[:])
}

// knownLost reports whether packPresent found pack missing.
func (s *Store) knownLost(pack ID) bool {
	s.packMu.Lock()
	defer s.packMu.Unlock()
	ok, known := s.present[pack]
	return known && !ok
}

// ResetPackChecks makes the store check every pack again the next time the
// dedup index names it. Backup calls it at its start, so a Store held open
// across many backups (the daemon) notices a pack lost in between.
func (s *Store) ResetPackChecks() {
	s.packMu.Lock()
	defer s.packMu.Unlock()
	clear(s.present)
}

// LostPacks returns the packs this Store found missing from its objects
// folder (or of the wrong size) and dropped from the dedup index, in the
// order found.
func (s *Store) LostPacks() []ID {
	s.packMu.Lock()
	defer s.packMu.Unlock()
	return slices.Clone(s.lost)
}

// HasBlob reports whether a blob of type t and ID id is stored or pending
// (added and due to be written by the next Flush). A blob whose pack has
// gone missing is not stored (see packPresent).
func (s *Store) HasBlob(ctx context.Context, t BlobType, id ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	k := makeBlobKey(t, id)
	s.mu.Lock()
	_, ok := s.pending[k]
	s.mu.Unlock()
	if ok {
		return true, nil
	}
	_, ok, err := s.lookupLive(ctx, k)
	if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", id, err)
	}
	return ok, nil
}

// Has reports whether a data blob with this ID is stored or pending. It is
// what a backup asks before reusing a chunk ID from its file cache.
func (s *Store) Has(ctx context.Context, id ID) (bool, error) {
	return s.HasBlob(ctx, BlobData, id)
}

// AddBlob stores one blob unless a blob of the same type and ID is already
// stored or pending. It returns the blob's ID and the bytes it adds to the
// store (0 for a duplicate). The blob is compressed with zstd (kept as is
// when that saves under 1/32), sealed with the open pack's data key (AEAD
// binding format version, type and ID), and appended to the open pack.
// Full packs are checked and written in the background, one at a time.
// Safe for concurrent use: run a few goroutines to spread compression over
// cores. Blobs are durable only after Flush, which also reports a failed
// background write.
func (s *Store) AddBlob(ctx context.Context, t BlobType, data []byte) (ID, int64, error) {
	if !t.valid() {
		return ID{}, 0, fmt.Errorf("add blob: unknown blob type %d", t)
	}
	if len(data) > MaxBlobSize {
		return ID{}, 0, fmt.Errorf("add blob: %d bytes is over the %d-byte limit", len(data), MaxBlobSize)
	}
	if err := ctx.Err(); err != nil {
		return ID{}, 0, err
	}
	id := s.ChunkID(data)
	k := makeBlobKey(t, id)

	// Dedup. Order matters: a blob leaves pending only after its bbolt
	// commit, so pending-then-bbolt never misses one.
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return id, 0, err
	}
	_, dup := s.pending[k]
	s.mu.Unlock()
	if dup {
		return id, 0, nil
	}
	if _, ok, err := s.lookupLive(ctx, k); err != nil {
		return id, 0, fmt.Errorf("add blob %s: %w", id, err)
	} else if ok {
		return id, 0, nil
	}
	s.mu.Lock()
	if _, dup := s.pending[k]; dup {
		s.mu.Unlock()
		return id, 0, nil
	}
	s.pending[k] = struct{}{}
	s.mu.Unlock()

	buf := compressBufs.Get().(*[]byte)
	plain := compressBlob(*buf, data)
	defer func() {
		*buf = plain[:0]
		compressBufs.Put(buf)
	}()

	s.mu.Lock()
	if err := s.usable(); err != nil {
		delete(s.pending, k)
		s.mu.Unlock()
		return id, 0, err
	}
	if s.cur == nil {
		p, err := newPackBuilder(s.pub.Public, s.packSize)
		if err != nil {
			delete(s.pending, k)
			s.mu.Unlock()
			return id, 0, fmt.Errorf("add blob %s: %w", id, err)
		}
		s.cur = p
	}
	if err := s.cur.add(t, id, len(data), plain); err != nil {
		delete(s.pending, k)
		s.mu.Unlock()
		return id, 0, err
	}
	stored := int64(len(plain) + sealOverhead + entryLen)
	if len(s.cur.buf) >= s.packSize {
		full := s.cur
		s.cur = nil
		// Write full packs in the background so the callers go on
		// compressing; beyond maxBackgroundPacks in flight a caller waits
		// (back-pressure, and memory stays at a few packs). A failure is
		// sticky: the next AddBlob or Flush returns it.
		for s.inflight >= maxBackgroundPacks {
			s.idle.Wait()
		}
		s.inflight++
		go s.commitPack(s.bgCtx, full) //nolint:errcheck // sticky in s.err
	}
	s.mu.Unlock()
	return id, stored, nil
}

// maxBackgroundPacks is how many full packs may be being written while
// AddBlob goes on filling the next one.
const maxBackgroundPacks = 1

var compressBufs = sync.Pool{New: func() any { b := make([]byte, 0, ChunkMax+ChunkMax/8); return &b }}

// usable reports the sticky error or a closed store; s.mu is held.
func (s *Store) usable() error {
	if s.closed {
		return fmt.Errorf("store %s is closed", s.dir)
	}
	if s.err != nil {
		return fmt.Errorf("store %s: an earlier pack write failed: %w", s.dir, s.err)
	}
	return nil
}

// commitPack finishes, checks and writes one pack and its index object,
// then records its blobs in the dedup index. The caller has counted it in
// s.inflight.
func (s *Store) commitPack(ctx context.Context, p *packBuilder) error {
	err := s.writePack(ctx, p)
	p.release()
	s.mu.Lock()
	for _, e := range p.entries {
		delete(s.pending, makeBlobKey(e.Type, e.ID))
	}
	if err != nil && s.err == nil {
		s.err = err
	}
	s.inflight--
	s.idle.Broadcast()
	s.mu.Unlock()
	return err
}

func (s *Store) writePack(ctx context.Context, p *packBuilder) error {
	pack, err := p.finish()
	if err != nil {
		return err
	}
	// Decode what we are about to store, with the data key we still
	// hold: a fault in the compressor or in memory stops here.
	if err := checkPack(pack, &p.dataKey, &s.pub.ChunkKey, p.entries); err != nil {
		return fmt.Errorf("pack failed its check before writing: %w", err)
	}
	packID := objectHash(pack)
	if err := saveObject(ctx, s.objects, PackName(packID), pack); err != nil {
		return err
	}
	idx, err := sealIndex(s.pub.Public, packID, int64(len(pack)), p.entries)
	if err != nil {
		return err
	}
	idxID := objectHash(idx)
	if err := saveObject(ctx, s.objects, IndexName(idxID), idx); err != nil {
		return err
	}
	rec := packRecord{Size: int64(len(pack)), Index: idxID, IndexSize: int64(len(idx)),
		Blobs: uint32(len(p.entries)), RawBytes: p.rawSize, Created: time.Now().Unix()}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		keys := make([]byte, 0, len(p.entries)*33)
		for _, e := range p.entries {
			k := makeBlobKey(e.Type, e.ID)
			keys = append(keys, k[:]...)
			if v := blobs.Get(k[:]); v != nil {
				if loc, err := decodeLocation(v); err != nil || !s.knownLost(loc.Pack) {
					continue // already stored elsewhere; keep the first copy
				}
			}
			loc := location{Pack: packID, Offset: e.Offset, Length: e.Length, RawLen: e.RawLen}
			if err := blobs.Put(k[:], loc.encode()); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketPackBlobs).Put(packID[:], keys); err != nil {
			return err
		}
		return tx.Bucket(bucketPacks).Put(packID[:], rec.encode())
	})
	if err != nil {
		return fmt.Errorf("record pack %s: %w", packID, err)
	}
	s.packMu.Lock()
	s.present[packID] = true
	s.packMu.Unlock()
	crashPoint(crashBackupPack)
	return nil
}

// saveObject writes a content-named object; an existing object of the
// same name has the same bytes (the name is their hash), so ErrExists is
// success.
func saveObject(ctx context.Context, b storage.Backend, name string, data []byte) error {
	err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

// Flush writes the open pack (if any) and waits for packs being written by
// other goroutines. After Flush returns nil every blob added before it is
// durable: its pack and index object are stored and synced and the dedup
// index records it. A failure of any earlier pack write is returned here.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	p := s.cur
	s.cur = nil
	if p != nil {
		s.inflight++
	}
	s.mu.Unlock()
	if p != nil {
		if err := s.commitPack(ctx, p); err != nil {
			return fmt.Errorf("flush store %s: %w", s.dir, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	if s.err != nil {
		return fmt.Errorf("flush store %s: %w", s.dir, s.err)
	}
	return nil
}

// Refs collects the blobs a recovery point references, reduced to the set
// of packs holding them. Safe for concurrent use.
type Refs struct {
	s          *Store
	mu         sync.Mutex
	packs      map[ID]struct{}
	unresolved map[blobKey]struct{} // pending when added; resolved by SavePoint
}

// refsSweepAt is how many unresolved blobs Refs holds before it looks them
// up again: most have been committed by then, so the set stays at about the
// blobs of the packs still being written instead of growing with every new
// chunk of a large backup.
const refsSweepAt = 4096

// NewRefs returns an empty reference set for the next SavePoint.
func (s *Store) NewRefs() *Refs {
	return &Refs{s: s, packs: map[ID]struct{}{}, unresolved: map[blobKey]struct{}{}}
}

// Add records that the point references blob (t, id): every tree blob and
// every data chunk of every file, whether AddBlob stored it just now or it
// was already there.
func (r *Refs) Add(ctx context.Context, t BlobType, id ID) error {
	return r.AddAll(ctx, t, []ID{id})
}

// AddAll is Add for many IDs in one lookup transaction.
func (r *Refs) AddAll(ctx context.Context, t BlobType, ids []ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		for _, id := range ids {
			k := makeBlobKey(t, id)
			if v := b.Get(k[:]); v != nil {
				loc, err := decodeLocation(v)
				if err != nil {
					return err
				}
				if !r.s.knownLost(loc.Pack) {
					r.packs[loc.Pack] = struct{}{}
					continue
				}
			}
			r.unresolved[k] = struct{}{}
		}
		if len(r.unresolved) < refsSweepAt {
			return nil
		}
		for k := range r.unresolved {
			if v := b.Get(k[:]); v != nil {
				loc, err := decodeLocation(v)
				if err != nil {
					return err
				}
				if !r.s.knownLost(loc.Pack) {
					r.packs[loc.Pack] = struct{}{}
					delete(r.unresolved, k)
				}
			}
		}
		return nil
	})
}

// resolve turns the set into PackRefs; every blob must be committed and
// every pack present (a point must never list a pack the store lost).
func (r *Refs) resolve(ctx context.Context) ([]PackRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PackRef
	err := r.s.db.View(func(tx *bbolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		var missing []string
		for k := range r.unresolved {
			v := blobs.Get(k[:])
			if v == nil {
				if len(missing) < 3 {
					missing = append(missing, fmt.Sprintf("%s blob %x", BlobType(k[0]), k[1:]))
				}
				continue
			}
			loc, err := decodeLocation(v)
			if err != nil {
				return err
			}
			r.packs[loc.Pack] = struct{}{}
			delete(r.unresolved, k)
		}
		if len(r.unresolved) > 0 {
			return fmt.Errorf("%d referenced blobs are not in the store (e.g. %v)", len(r.unresolved), missing)
		}
		packs := tx.Bucket(bucketPacks)
		for id := range r.packs {
			var rec packRecord
			var err error
			if v := packs.Get(id[:]); v != nil {
				rec, err = decodePackRecord(v)
			} else {
				var held bool
				if rec, held, err = vaultRecord(tx, id); err == nil && !held {
					return fmt.Errorf("referenced pack %s is no longer in the store", id)
				}
			}
			if err != nil {
				return err
			}
			out = append(out, PackRef{Pack: id, Size: rec.Size, Index: rec.Index, IndexSize: rec.IndexSize})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ref := range out {
		ok, err := r.s.packPresent(ctx, ref.Pack)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("referenced pack %s is missing from the store", ref.Pack)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Pack[:], out[j].Pack[:]) < 0 })
	return out, nil
}

// SavePoint flushes the store and writes a point object for h. h.Refs must
// list every blob the point references; SavePoint refuses the point if one
// of them is not stored, and records the packs holding them in h.Packs (in
// the clear, for offload and keyless verify). KeyFingerprint and Format are
// set here. The returned ID is the SHA-256 of the stored point object.
func (s *Store) SavePoint(ctx context.Context, h PointHeader) (ID, error) {
	if h.Refs == nil {
		return ID{}, errors.New("save point: Refs is nil; a point must list the blobs it references")
	}
	if h.Source == "" || h.Time.IsZero() {
		return ID{}, errors.New("save point: source and time are required")
	}
	if err := s.Flush(ctx); err != nil {
		return ID{}, fmt.Errorf("save point: %w", err)
	}
	packs, err := h.Refs.resolve(ctx)
	if err != nil {
		return ID{}, fmt.Errorf("save point: %w", err)
	}
	h.Packs = packs
	h.KeyFingerprint = s.pub.Fingerprint
	h.Format = CurrentFormat
	obj, err := sealPoint(s.pub.Public, h)
	if err != nil {
		return ID{}, fmt.Errorf("save point: %w", err)
	}
	id := objectHash(obj)
	if err := saveObject(ctx, s.objects, PointName(id), obj); err != nil {
		return ID{}, fmt.Errorf("save point: %w", err)
	}
	return id, nil
}

// ListPoints returns the clear headers of the store's points (no key
// needed), sorted by time. See the package-level ListPoints for errors.
func (s *Store) ListPoints(ctx context.Context) ([]PointHeader, error) {
	return ListPoints(ctx, s.objects)
}

// RemovePoint deletes a point object. The packs it used stay until
// RemovePack; see UnusedPacks.
func (s *Store) RemovePoint(ctx context.Context, id ID) error {
	if err := s.objects.Remove(ctx, PointName(id)); err != nil {
		return fmt.Errorf("remove point %s: %w", id, err)
	}
	return nil
}

// Packs returns every pack the store has committed.
func (s *Store) Packs(ctx context.Context) ([]PackRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []PackRef
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPacks).ForEach(func(k, v []byte) error {
			rec, err := decodePackRecord(v)
			if err != nil {
				return err
			}
			out = append(out, PackRef{Pack: ID(k), Size: rec.Size, Index: rec.Index, IndexSize: rec.IndexSize})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list packs of store %s: %w", s.dir, err)
	}
	return out, nil
}

// UnusedPacks returns the committed packs that no point in the store
// references. It refuses to answer when any point cannot be read (a
// damaged point must not get its packs deleted). Call it only when no
// backup is running on this Store: a backup's packs are unreferenced until
// its SavePoint.
func (s *Store) UnusedPacks(ctx context.Context) ([]PackRef, error) {
	points, err := s.ListPoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("unused packs: %w", err)
	}
	used := map[ID]bool{}
	for _, p := range points {
		for _, r := range p.Packs {
			used[r.Pack] = true
		}
	}
	all, err := s.Packs(ctx)
	if err != nil {
		return nil, err
	}
	var out []PackRef
	for _, r := range all {
		if !used[r.Pack] {
			out = append(out, r)
		}
	}
	return out, nil
}

// RemovePack forgets a pack in the dedup index, then deletes its index
// object and the pack. That order means a crash in between leaves only an
// unreferenced pack, never a dedup entry or an index object for a missing
// pack.
//
// A pack the vault holds (MarkInVault) is retired instead: its blobs stay
// in the dedup index, pointing into the vault (vaulted.go).
func (s *Store) RemovePack(ctx context.Context, pack ID) error {
	if retired, err := s.retirePack(ctx, pack); err != nil || retired {
		if err != nil {
			return fmt.Errorf("retire pack %s to the vault: %w", pack, err)
		}
		return nil
	}
	var rec packRecord
	err := s.db.Update(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketPacks).Get(pack[:])
		if v == nil {
			return fmt.Errorf("pack %s is not in the store", pack)
		}
		var err error
		if rec, err = decodePackRecord(v); err != nil {
			return err
		}
		return forgetPack(tx, pack)
	})
	if err != nil {
		return fmt.Errorf("remove pack %s: %w", pack, err)
	}
	s.packMu.Lock()
	delete(s.present, pack)
	s.packMu.Unlock()
	for _, name := range []string{IndexName(rec.Index), PackName(pack)} {
		if err := s.objects.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove pack %s: %w", pack, err)
		}
	}
	return nil
}

// RemoveOrphans deletes pack and index objects in the store's objects that
// the dedup index does not know: leftovers of a run that crashed between
// writing a pack and recording it (their blobs were stored again later).
// It holds the store's write lock throughout and refuses while packs are
// being written, so it never races a pack on its way to being recorded.
// It returns the names removed.
func (s *Store) RemoveOrphans(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	if s.inflight > 0 || s.cur != nil {
		return nil, fmt.Errorf("remove orphans in store %s: blobs are being added; Flush first", s.dir)
	}
	known := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPacks).ForEach(func(k, v []byte) error {
			rec, err := decodePackRecord(v)
			if err != nil {
				return err
			}
			known[PackName(ID(k))] = true
			known[IndexName(rec.Index)] = true
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("remove orphans in store %s: %w", s.dir, err)
	}
	var orphans []string
	for _, prefix := range []string{IndexPrefix, PacksPrefix} {
		err := s.objects.List(ctx, prefix, func(i storage.Info) error {
			if !known[i.Name] {
				orphans = append(orphans, i.Name)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("remove orphans in store %s: %w", s.dir, err)
		}
	}
	for i, name := range orphans {
		if err := s.objects.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return orphans[:i], fmt.Errorf("remove orphans in store %s: %w", s.dir, err)
		}
	}
	return orphans, nil
}

// checkStoreConfig reads <dir>/config and refuses a directory that is not
// a store or holds a format this build cannot read.
func checkStoreConfig(dir string) (storeConfig, error) {
	var cfg storeConfig
	raw, err := os.ReadFile(filepath.Join(dir, storeConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cfg, fmt.Errorf("open store %s: not a tapeless store (no %s file)", dir, storeConfigFile)
		}
		return cfg, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("open store %s: config: %w", dir, err)
	}
	if cfg.Format < MinFormat || cfg.Format > MaxFormat {
		return cfg, fmt.Errorf("open store %s: %w %d (this build reads %d to %d)", dir, ErrUnsupportedFormat, cfg.Format, MinFormat, MaxFormat)
	}
	return cfg, nil
}

// openStoreFiles reads the key envelope and opens the objects backend,
// what both a writer and a read-only view need.
func openStoreFiles(ctx context.Context, dir string) ([]byte, storage.Backend, error) {
	env, err := os.ReadFile(filepath.Join(dir, storeEnvelopeFile))
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// <dir>/objects is the part of the store that offload copies.
	objects, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, storeObjectsDir)), storage.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return env, objects, nil
}

// StoreView is a store opened for reading only. It takes no lock, so
// listing, restoring and verifying work while a backup is writing: objects
// are write-once and appear atomically.
type StoreView struct {
	Dir      string
	Objects  storage.Backend
	Envelope []byte // the passphrase-wrapped keys
	// KeyFingerprint is the key the store was created for (its config).
	KeyFingerprint string

	config storeConfig
}

// OpenStoreView opens the store in dir for reading; Close it when done.
func OpenStoreView(ctx context.Context, dir string) (*StoreView, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cfg, err := checkStoreConfig(dir)
	if err != nil {
		return nil, err
	}
	env, objects, err := openStoreFiles(ctx, dir)
	if err != nil {
		return nil, err
	}
	return &StoreView{Dir: dir, Objects: objects, Envelope: env, KeyFingerprint: cfg.KeyFingerprint, config: cfg}, nil
}

// Close releases the view.
func (v *StoreView) Close() error { return v.Objects.Close() }
