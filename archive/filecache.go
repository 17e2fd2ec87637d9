package archive

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// fileCacheBucket is the bbolt bucket, in the store's database, that holds
// the file cache. The cache lets a backup skip reading files unchanged
// since the previous backup of the same source: the daemon has no
// passphrase and cannot read old manifests, so this is how it knows.
var fileCacheBucket = []byte("filecache.v1")

// cacheEntry is what the cache remembers about one file: the identity it
// had when it was read and the content it had then.
type cacheEntry struct {
	Size       int64      `json:"size"`
	Mtime      int64      `json:"mtime"`
	Ctime      int64      `json:"ctime"`
	Ino        uint64     `json:"ino"`
	HasExtents bool       `json:"sparse,omitempty"`
	Extents    [][2]int64 `json:"extents,omitempty"`
	Chunks     []ID       `json:"chunks,omitempty"`
	SHA256     []byte     `json:"sha256"`
}

// matches reports whether e still describes the file the walker saw.
// ctime catches chmod, chown and writes that restore the old mtime.
func (c *cacheEntry) matches(e *Entry) bool {
	return c.Size == e.Size && c.Mtime == e.Mtime && c.Ctime == e.Ctime && c.Ino == e.Ino
}

func (c *cacheEntry) extents() []Extent {
	if !c.HasExtents {
		return nil
	}
	out := make([]Extent, 0, len(c.Extents))
	for _, x := range c.Extents {
		out = append(out, Extent{x[0], x[1]})
	}
	return out
}

func newCacheEntry(e *Entry, n *Node) *cacheEntry {
	c := &cacheEntry{Size: e.Size, Mtime: e.Mtime, Ctime: e.Ctime, Ino: e.Ino, Chunks: n.Chunks, SHA256: n.SHA256}
	if n.Extents != nil {
		c.HasExtents = true
		c.Extents = make([][2]int64, 0, len(n.Extents))
		for _, x := range n.Extents {
			c.Extents = append(c.Extents, [2]int64{x.Offset, x.Length})
		}
	}
	return c
}

// fileCache is one backup's view of the cache for one source. Keys are
// source name, NUL, absolute path; values are the backup run (8 bytes, big
// endian) followed by the JSON cacheEntry. Entries a run did not touch are
// swept when it completes.
type fileCache struct {
	db      *bbolt.DB
	prefix  []byte
	run     uint64
	pending map[string][]byte
}

// cacheFlushEvery bounds the updates held in memory between transactions.
const cacheFlushEvery = 4096

func newFileCache(db *bbolt.DB, source string, run uint64) (*fileCache, error) {
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(fileCacheBucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("open file cache: %w", err)
	}
	return &fileCache{db: db, prefix: append([]byte(source), 0), run: run, pending: map[string][]byte{}}, nil
}

func (fc *fileCache) key(osPath string) []byte {
	return append(append([]byte(nil), fc.prefix...), osPath...)
}

// get returns the cached entry for osPath, or nil.
func (fc *fileCache) get(osPath string) *cacheEntry {
	var c *cacheEntry
	_ = fc.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(fileCacheBucket).Get(fc.key(osPath))
		if len(v) < 8 {
			return nil
		}
		var e cacheEntry
		if json.Unmarshal(v[8:], &e) == nil {
			c = &e
		}
		return nil
	})
	return c
}

// put records c for osPath in this run.
func (fc *fileCache) put(osPath string, c *cacheEntry) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode file cache entry: %w", err)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b)), fc.run)
	fc.pending[string(fc.key(osPath))] = append(v, b...)
	if len(fc.pending) >= cacheFlushEvery {
		return fc.flush()
	}
	return nil
}

// flush writes the pending updates in one transaction.
func (fc *fileCache) flush() error {
	if len(fc.pending) == 0 {
		return nil
	}
	err := fc.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(fileCacheBucket)
		for k, v := range fc.pending {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update file cache: %w", err)
	}
	clear(fc.pending)
	return nil
}

// sweep flushes and then deletes this source's entries that the run did not
// touch (files deleted, excluded, or unreadable this time).
func (fc *fileCache) sweep() error {
	if err := fc.flush(); err != nil {
		return err
	}
	err := fc.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(fileCacheBucket)
		var stale [][]byte
		c := b.Cursor()
		for k, v := c.Seek(fc.prefix); k != nil && bytes.HasPrefix(k, fc.prefix); k, v = c.Next() {
			if len(v) < 8 || binary.BigEndian.Uint64(v) != fc.run {
				stale = append(stale, append([]byte(nil), k...))
			}
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep file cache: %w", err)
	}
	return nil
}
