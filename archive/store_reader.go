package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/tapeless/tapeless/storage"
)

// ErrBlobNotFound is wrapped when no index of the backend lists a blob.
var ErrBlobNotFound = errors.New("blob not found in any index")

// Reader reads points and blobs from any backend holding the object layout
// (a store's objects or a vault). It needs the full Keys (the private key
// unwraps data keys). Safe for concurrent use; Close it when done.
//
// Finding blobs: a Reader made by NewReader loads index objects
// (decrypting each with the private key) into a temporary bbolt file under
// os.TempDir (see SetTempDir) when a blob is not found: first those of the
// points read with LoadPoint, then, if still not found, every index object
// of the backend not loaded yet; memory stays bounded whatever the number
// of blobs. A Reader made by Store.Reader uses the store's own dedup index
// instead and never loads index objects.
type Reader struct {
	b storage.Backend
	k *Keys

	store *Store // when set, look blobs up in its dedup index

	mu        sync.Mutex
	tmpParent string // where to make tmpDir; "" = os.TempDir
	tmpDir    string
	db        *bbolt.DB
	loaded    map[string]bool  // index object names already loaded
	wanted    []string         // index objects of loaded points, to load first
	indexErrs map[string]error // index objects that failed to load
	listedAll bool             // every index object of the backend is loaded
	packKeys  map[ID]packKey
}

type packKey struct {
	version int
	key     [32]byte
}

// NewReader returns a Reader over b that opens objects with k.
func NewReader(b storage.Backend, k *Keys) *Reader {
	return &Reader{b: b, k: k, loaded: map[string]bool{}, indexErrs: map[string]error{}, packKeys: map[ID]packKey{}}
}

// Reader returns a Reader over the store's objects that finds blobs through
// the store's dedup index.
func (s *Store) Reader(k *Keys) *Reader {
	r := NewReader(s.objects, k)
	r.store = s
	return r
}

// SetTempDir sets where the temporary index is kept (default os.TempDir),
// for example the staging folder. Call it before the first LoadBlob.
func (r *Reader) SetTempDir(dir string) {
	r.mu.Lock()
	r.tmpParent = dir
	r.mu.Unlock()
}

// Close removes the Reader's temporary index, if any.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.db != nil {
		err = r.db.Close()
		r.db = nil
	}
	if r.tmpDir != "" {
		if rerr := os.RemoveAll(r.tmpDir); err == nil {
			err = rerr
		}
		r.tmpDir = ""
	}
	return err
}

// LoadPoint reads and opens a point object: the object is checked against
// its name, then authenticated with the private key (clear header
// included), and its sealed Tree filled in.
func (r *Reader) LoadPoint(ctx context.Context, id ID) (PointHeader, error) {
	name := PointName(id)
	data, err := loadObject(ctx, r.b, name, id)
	if err != nil {
		return PointHeader{}, fmt.Errorf("load point %s: %w", id, err)
	}
	h, err := openPoint(r.k, data)
	if err != nil {
		return PointHeader{}, fmt.Errorf("point object %s: %w", name, err)
	}
	h.ID = id
	r.mu.Lock()
	for _, p := range h.Packs {
		if name := IndexName(p.Index); !r.loaded[name] {
			r.wanted = append(r.wanted, name)
		}
	}
	r.mu.Unlock()
	return h, nil
}

// locate returns where blob (t, id) is stored.
func (r *Reader) locate(ctx context.Context, t BlobType, id ID) (location, error) {
	return r.find(ctx, t, id)
}

// PackOf returns the pack holding blob (t, id).
func (r *Reader) PackOf(ctx context.Context, t BlobType, id ID) (ID, error) {
	loc, err := r.find(ctx, t, id)
	return loc.Pack, err
}

// LoadBlob returns the plaintext of blob (t, id): it finds the blob's pack,
// unwraps the pack's data key with the private key, reads just the blob's
// bytes, authenticates and decrypts them (the AEAD binds format version,
// type and ID, so a swapped or retyped blob fails), decompresses, and
// checks that the content hashes to id. Errors name the pack object.
func (r *Reader) LoadBlob(ctx context.Context, t BlobType, id ID) ([]byte, error) {
	loc, err := r.find(ctx, t, id)
	if err != nil {
		return nil, err
	}
	name := PackName(loc.Pack)
	pk, err := r.packKey(ctx, loc.Pack)
	if err != nil {
		return nil, err
	}
	e := packEntry{Type: t, ID: id, Offset: loc.Offset, Length: loc.Length, RawLen: loc.RawLen}
	if sv, ok := r.b.(*StagedVault); ok {
		// Staged on its own unless a fetch staged it already: checked as
		// it arrives, so a blob that fails falls back to the other copy.
		if err := r.stageChecked(ctx, sv, loc.Pack, pk, []packEntry{e}); err != nil {
			return nil, fmt.Errorf("pack %s: read %s blob %s: %w", name, t, id, err)
		}
	}
	var sealed []byte
	err = r.b.Load(ctx, name, int64(loc.Offset), int64(loc.Length), func(rd io.Reader) error {
		sealed = make([]byte, loc.Length)
		n, err := io.ReadFull(rd, sealed)
		sealed = sealed[:n]
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil // reported below as a short blob
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: read %s blob %s: %w", name, t, id, err)
	}
	if len(sealed) != int(loc.Length) {
		return nil, fmt.Errorf("pack %s: %s blob %s: %w: pack is truncated (%d of %d bytes at offset %d)",
			name, t, id, ErrAuthentication, len(sealed), loc.Length, loc.Offset)
	}
	data, err := openBlob(&pk.key, &r.k.ChunkKey, pk.version, e, sealed)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", name, err)
	}
	return data, nil
}

// packKey returns the data key of a pack, reading its header once.
func (r *Reader) packKey(ctx context.Context, pack ID) (packKey, error) {
	r.mu.Lock()
	pk, ok := r.packKeys[pack]
	r.mu.Unlock()
	if ok {
		return pk, nil
	}
	name := PackName(pack)
	if sv, ok := r.b.(*StagedVault); ok {
		// The key block is authenticated as it arrives, so a damaged one
		// falls back to the other copy.
		err := sv.StageRange(ctx, name, 0, int64(packHeaderLen), func(rd io.Reader) error {
			header, err := io.ReadAll(rd)
			if err == nil {
				_, _, err = packDataKey(r.k, header)
			}
			return err
		})
		if err != nil {
			return pk, fmt.Errorf("pack %s: read header: %w", name, err)
		}
	}
	var header []byte
	err := r.b.Load(ctx, name, 0, int64(packHeaderLen), func(rd io.Reader) error {
		var err error
		header, err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		return pk, fmt.Errorf("pack %s: read header: %w", name, err)
	}
	v, dk, err := packDataKey(r.k, header)
	if err != nil {
		return pk, fmt.Errorf("pack %s: %w", name, err)
	}
	pk = packKey{version: v, key: dk}
	r.mu.Lock()
	r.packKeys[pack] = pk
	r.mu.Unlock()
	return pk, nil
}

// find locates a blob, loading new index objects when it is not known.
func (r *Reader) find(ctx context.Context, t BlobType, id ID) (location, error) {
	k := makeBlobKey(t, id)
	if r.store != nil {
		loc, ok, err := r.store.lookup(k)
		if err != nil {
			return loc, fmt.Errorf("%s blob %s: %w", t, id, err)
		}
		if !ok {
			return loc, fmt.Errorf("%s blob %s: %w of store %s", t, id, ErrBlobNotFound, r.store.dir)
		}
		return loc, nil
	}
	if loc, ok, err := r.lookupTemp(k); err != nil || ok {
		return loc, err
	}
	// First the index objects of the points loaded so far (a restore
	// needs no others), then, if the blob is still unknown, all of them.
	r.mu.Lock()
	wanted := r.wanted
	r.wanted = nil
	r.mu.Unlock()
	if len(wanted) > 0 {
		if err := r.loadIndexes(ctx, wanted); err != nil {
			return location{}, err
		}
		if loc, ok, err := r.lookupTemp(k); err != nil || ok {
			return loc, err
		}
	}
	// Every index object once per Reader: a restore with a lost index
	// object misses many blobs, and must not list the vault for each.
	r.mu.Lock()
	listed := r.listedAll
	r.mu.Unlock()
	if !listed {
		if err := r.loadIndexes(ctx, nil); err != nil {
			return location{}, err
		}
		r.mu.Lock()
		r.listedAll = true
		r.mu.Unlock()
	}
	loc, ok, err := r.lookupTemp(k)
	if err != nil || ok {
		return loc, err
	}
	err = fmt.Errorf("%s blob %s: %w of %s", t, id, ErrBlobNotFound, r.b.Location())
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.indexErrs) > 0 {
		names := make([]string, 0, len(r.indexErrs))
		for n := range r.indexErrs {
			names = append(names, n)
		}
		sort.Strings(names)
		errs := []error{err}
		for _, n := range names {
			errs = append(errs, fmt.Errorf("unreadable %w", r.indexErrs[n]))
		}
		err = errors.Join(errs...)
	}
	return location{}, err
}

func (r *Reader) lookupTemp(k blobKey) (location, bool, error) {
	r.mu.Lock()
	db := r.db
	r.mu.Unlock()
	if db == nil {
		return location{}, false, nil
	}
	var loc location
	var ok bool
	err := db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketBlobs).Get(k[:])
		if v == nil {
			return nil
		}
		var err error
		loc, err = decodeLocation(v)
		ok = err == nil
		return err
	})
	return loc, ok, err
}

// loadIndexes reads the index objects named (or, for nil, every index
// object of the backend) that are not loaded yet into the temporary index,
// downloading a few at a time. An index object that fails (missing,
// tampered) is remembered and named when a blob is then not found; one
// sealed to another server's keys is skipped.
func (r *Reader) loadIndexes(ctx context.Context, names []string) error {
	if names == nil {
		err := r.b.List(ctx, IndexPrefix, func(i storage.Info) error {
			names = append(names, i.Name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list index objects in %s: %w", r.b.Location(), err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openTemp(); err != nil {
		return err
	}
	var todo []string
	for _, name := range names {
		if !r.loaded[name] {
			r.loaded[name] = true
			todo = append(todo, name)
		}
	}
	type result struct {
		name string
		h    indexHeader
		es   []packEntry
		err  error
		skip bool
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(indexLoaders, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				res := result{name: name}
				id, err := idFromName(name)
				var data []byte
				if err == nil {
					data, err = loadObject(ctx, r.b, name, id)
				}
				switch {
				case err != nil:
				case len(data) >= indexOffSealed && sealedToOther(r.k, data[indexOffBlock:indexOffSealed]):
					res.skip = true // another server's key set
				default:
					res.h, res.es, err = openIndex(r.k, data)
				}
				if err != nil {
					res.err = fmt.Errorf("index object %s: %w", name, err)
				}
				results <- res
			}
		}()
	}
	go func() {
		defer close(work)
		for _, name := range todo {
			select {
			case work <- name:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var dbErr error
	for res := range results {
		if res.err != nil {
			r.indexErrs[res.name] = res.err
			continue
		}
		if res.skip || dbErr != nil {
			continue
		}
		dbErr = r.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketBlobs)
			for _, e := range res.es {
				k := makeBlobKey(e.Type, e.ID)
				if b.Get(k[:]) != nil {
					continue
				}
				loc := location{Pack: res.h.Pack, Offset: e.Offset, Length: e.Length, RawLen: e.RawLen}
				if err := b.Put(k[:], loc.encode()); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if dbErr != nil {
		return fmt.Errorf("reader index: %w", dbErr)
	}
	return ctx.Err()
}

// indexLoaders is how many index objects a Reader downloads at once.
const indexLoaders = 4

// openTemp creates the temporary index on first use; r.mu is held.
func (r *Reader) openTemp() error {
	if r.db != nil {
		return nil
	}
	dir, err := os.MkdirTemp(r.tmpParent, "tapeless-reader-")
	if err != nil {
		return fmt.Errorf("reader index: %w", err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "index.db"), 0o600, &bbolt.Options{NoSync: true, NoFreelistSync: true, NoGrowSync: true})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("reader index: %w", err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketBlobs)
		return err
	}); err != nil {
		db.Close()
		os.RemoveAll(dir)
		return fmt.Errorf("reader index: %w", err)
	}
	r.db, r.tmpDir = db, dir
	return nil
}
