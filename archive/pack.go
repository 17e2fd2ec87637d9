package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// MaxBlobSize is the largest blob AddBlob accepts (uncompressed). Data
// chunks are at most ChunkMax; tree blobs must be split below this.
const MaxBlobSize = 64 << 20

// DefaultPackSize is the size at which a pack is closed and written. Large
// packs keep the PUT count and per-object costs of cold tiers low; each
// pack being filled or written is held in memory whole, so 16 MiB (as
// restic's default) halves a backup's largest buffers against 32 MiB for
// twice the PUTs (64 a GiB), which S3 prices at a fraction of a cent.
const DefaultPackSize = 16 << 20

// maxStoredOverhead bounds what sealing and a failed compression can add
// to a blob: nonce, tag, compression byte, and zstd framing of data it
// could not shrink is never stored.
const maxStoredOverhead = sealOverhead + 1

// Compression modes: the first plaintext byte of every sealed blob.
const (
	compNone byte = 0 // stored as is
	compZstd byte = 1 // one zstd frame (RFC 8878)
)

// Pack layout, see docs/FORMAT.md "Pack".
const (
	packHeaderLen = prefixLen + keyBlockLen
	// entryLen is one trailer or index entry: type u8, id [32], offset u32,
	// length u32, raw length u32.
	entryLen = 1 + 32 + 4 + 4 + 4
	// packFooterLen: u32 length of the sealed trailer, then packEndMagic.
	packFooterLen = 4 + len(packEndMagic)
	packEndMagic  = "TPLE"
	// blobADLen: format version u8, blob type u8, chunk ID [32].
	blobADLen = 2 + 32
)

// trailerAD is appended to the pack header to form the trailer's associated
// data, so a trailer cannot be taken for a blob.
const trailerAD = "trailer"

// packEntry locates one blob inside a pack.
type packEntry struct {
	Type   BlobType
	ID     ID
	Offset uint32 // from the start of the pack
	Length uint32 // stored (sealed) length
	RawLen uint32 // plaintext length before compression
}

func (e packEntry) appendTo(b []byte) []byte {
	b = append(b, byte(e.Type))
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, e.Offset)
	b = binary.BigEndian.AppendUint32(b, e.Length)
	return binary.BigEndian.AppendUint32(b, e.RawLen)
}

func parseEntry(b []byte) packEntry {
	var e packEntry
	e.Type = BlobType(b[0])
	copy(e.ID[:], b[1:33])
	e.Offset = binary.BigEndian.Uint32(b[33:])
	e.Length = binary.BigEndian.Uint32(b[37:])
	e.RawLen = binary.BigEndian.Uint32(b[41:])
	return e
}

// encodeEntries is the plaintext of a pack trailer or index object: a u32
// count, then the entries.
func encodeEntries(es []packEntry) []byte {
	b := make([]byte, 0, 4+len(es)*entryLen)
	b = binary.BigEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		b = e.appendTo(b)
	}
	return b
}

func decodeEntries(b []byte) ([]packEntry, error) {
	if len(b) < 4 {
		return nil, errors.New("entry list shorter than its count")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(len(b)-4) != uint64(n)*entryLen {
		return nil, fmt.Errorf("entry list of %d bytes does not hold %d entries", len(b)-4, n)
	}
	es := make([]packEntry, n)
	for i := range es {
		es[i] = parseEntry(b[4+i*entryLen:])
		if !es[i].Type.valid() {
			return nil, fmt.Errorf("entry %d has unknown blob type %d", i, es[i].Type)
		}
		// Bounds keep a damaged entry from making a reader allocate
		// gigabytes; no writer produces bigger blobs.
		if es[i].RawLen > MaxBlobSize || es[i].Length > MaxBlobSize+maxStoredOverhead {
			return nil, fmt.Errorf("entry %d (blob %s) is larger than any blob: %d bytes stored, %d raw", i, es[i].ID, es[i].Length, es[i].RawLen)
		}
	}
	return es, nil
}

func blobAD(version int, t BlobType, id ID) []byte {
	ad := make([]byte, 0, blobADLen)
	ad = append(ad, byte(version), byte(t))
	return append(ad, id[:]...)
}

var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdDecOnce sync.Once
	zstdDec     *zstd.Decoder
)

// encoder returns the shared zstd encoder; EncodeAll is safe for concurrent
// use and runs each call on the caller's goroutine, which is how AddBlob
// spreads compression over cores.
func encoder() *zstd.Encoder {
	zstdEncOnce.Do(func() {
		var err error
		// SpeedFastest: measured here to compress text-like data about as
		// well as the default level (both ~4.3x) at 1.4x the speed.
		zstdEnc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder: %v", err))
		}
	})
	return zstdEnc
}

func decoder() *zstd.Decoder {
	zstdDecOnce.Do(func() {
		var err error
		zstdDec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(MaxBlobSize))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder: %v", err))
		}
	})
	return zstdDec
}

// compressBlob returns the blob plaintext as sealed: a compression byte and
// the payload. Data that zstd shrinks by less than 1/32 is stored as is
// (random data, already compressed media), which also makes reading it back
// cheaper.
func compressBlob(dst, data []byte) []byte {
	dst = append(dst[:0], compZstd)
	dst = encoder().EncodeAll(data, dst)
	if len(dst)-1 >= len(data)-len(data)/32 {
		dst = append(dst[:0], compNone)
		dst = append(dst, data...)
	}
	return dst
}

// chunkID is the keyed BLAKE3-256 of data under the chunk key.
func chunkID(key *[32]byte, data []byte) ID {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic(fmt.Sprintf("blake3: %v", err)) // only for a key that is not 32 bytes
	}
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

// openBlob authenticates, decrypts and decompresses one sealed blob and
// checks its chunk ID. version is the pack's format version.
func openBlob(dataKey *[32]byte, chunkKey *[32]byte, version int, e packEntry, sealed []byte) ([]byte, error) {
	return openBlobScratch(dataKey, chunkKey, version, e, sealed, nil, nil)
}

// openBlobScratch is openBlob decrypting into plainBuf and decompressing
// into dataBuf when they are big enough (the result may alias either), for
// callers that check many blobs and keep none.
func openBlobScratch(dataKey *[32]byte, chunkKey *[32]byte, version int, e packEntry, sealed, plainBuf, dataBuf []byte) ([]byte, error) {
	if uint32(len(sealed)) != e.Length {
		return nil, fmt.Errorf("blob %s: %w: %d bytes, index says %d", e.ID, ErrAuthentication, len(sealed), e.Length)
	}
	plain, err := openAEADTo(plainBuf[:0], dataKey[:], blobAD(version, e.Type, e.ID), sealed)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s: %w", e.Type, e.ID, err)
	}
	if len(plain) < 1 {
		return nil, fmt.Errorf("%s blob %s: empty plaintext", e.Type, e.ID)
	}
	var data []byte
	switch plain[0] {
	case compNone:
		data = plain[1:]
	case compZstd:
		if uint32(cap(dataBuf)) < e.RawLen {
			dataBuf = make([]byte, 0, e.RawLen)
		}
		data, err = decoder().DecodeAll(plain[1:], dataBuf[:0:e.RawLen])
		if err != nil {
			return nil, fmt.Errorf("%s blob %s: decompress: %w", e.Type, e.ID, err)
		}
	default:
		return nil, fmt.Errorf("%s blob %s: unknown compression %d", e.Type, e.ID, plain[0])
	}
	if uint32(len(data)) != e.RawLen {
		return nil, fmt.Errorf("%s blob %s: %d bytes after decompression, index says %d", e.Type, e.ID, len(data), e.RawLen)
	}
	if got := chunkID(chunkKey, data); got != e.ID {
		return nil, fmt.Errorf("%s blob %s: content hashes to %s", e.Type, e.ID, got)
	}
	return data, nil
}

// packBuilder assembles one pack in memory.
type packBuilder struct {
	dataKey [32]byte
	buf     []byte // header and sealed blobs so far
	entries []packEntry
	rawSize int64
}

func newPackBuilder(pub [32]byte, capacity int) (*packBuilder, error) {
	dk, err := newDataKey()
	if err != nil {
		return nil, err
	}
	prefix := objectPrefix(kindPack, CurrentFormat)
	block, err := wrapDataKey(pub, dk, prefix)
	if err != nil {
		return nil, fmt.Errorf("new pack: %w", err)
	}
	b := getPackBuf(capacity + capacity/8)
	b = append(b, prefix...)
	b = append(b, block...)
	return &packBuilder{dataKey: dk, buf: b}, nil
}

// packBufs recycles pack buffers: a pack is tens of MiB, and allocating a
// fresh one per pack makes the garbage collector hold several at once.
var packBufs sync.Pool

func getPackBuf(capacity int) []byte {
	if b, ok := packBufs.Get().(*[]byte); ok && cap(*b) >= capacity {
		return (*b)[:0]
	}
	return make([]byte, 0, capacity)
}

// release returns the pack's buffer for reuse; p must not be used after.
func (p *packBuilder) release() {
	b := p.buf[:0]
	p.buf = nil
	packBufs.Put(&b)
}

// add seals one compressed blob (compression byte first) into the pack.
func (p *packBuilder) add(t BlobType, id ID, rawLen int, plain []byte) error {
	off := len(p.buf)
	var err error
	p.buf, err = sealAEADTo(p.buf, p.dataKey[:], blobAD(CurrentFormat, t, id), plain)
	if err != nil {
		return fmt.Errorf("seal blob %s: %w", id, err)
	}
	p.entries = append(p.entries, packEntry{Type: t, ID: id, Offset: uint32(off), Length: uint32(len(p.buf) - off), RawLen: uint32(rawLen)})
	p.rawSize += int64(rawLen)
	return nil
}

// finish appends the sealed trailer and the footer and returns the pack.
func (p *packBuilder) finish() ([]byte, error) {
	ad := append(bytes.Clone(p.buf[:packHeaderLen]), trailerAD...)
	start := len(p.buf)
	var err error
	p.buf, err = sealAEADTo(p.buf, p.dataKey[:], ad, encodeEntries(p.entries))
	if err != nil {
		return nil, fmt.Errorf("seal pack trailer: %w", err)
	}
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(p.buf)-start))
	p.buf = append(p.buf, packEndMagic...)
	return p.buf, nil
}

// checkPack decodes a finished pack with the data key the writer still
// holds: every blob is decrypted, decompressed and re-hashed, and the trailer
// is checked against the entries. This runs before a pack is stored, so a
// compressor or memory fault never reaches storage.
func checkPack(pack []byte, dataKey *[32]byte, chunkKey *[32]byte, want []packEntry) error {
	version, err := checkPrefix(pack, kindPack)
	if err != nil {
		return err
	}
	es, err := openTrailer(pack, dataKey)
	if err != nil {
		return err
	}
	if len(es) != len(want) {
		return fmt.Errorf("trailer lists %d blobs, wrote %d", len(es), len(want))
	}
	plainBuf := make([]byte, 0, ChunkMax+maxStoredOverhead)
	dataBuf := make([]byte, 0, ChunkMax)
	for i, e := range es {
		if e != want[i] {
			return fmt.Errorf("trailer entry %d differs from the blob written", i)
		}
		if _, err := openBlobScratch(dataKey, chunkKey, version, e, pack[e.Offset:e.Offset+e.Length], plainBuf, dataBuf); err != nil {
			return err
		}
	}
	return nil
}

// openTrailer authenticates and decodes a pack's trailer, checking that
// every entry lies between the header and the trailer.
func openTrailer(pack []byte, dataKey *[32]byte) ([]packEntry, error) {
	if len(pack) < packHeaderLen+packFooterLen+sealOverhead {
		return nil, fmt.Errorf("pack is truncated: %d bytes", len(pack))
	}
	if string(pack[len(pack)-len(packEndMagic):]) != packEndMagic {
		return nil, fmt.Errorf("pack is truncated or damaged: no end marker")
	}
	tlen := int(binary.BigEndian.Uint32(pack[len(pack)-packFooterLen:]))
	tstart := len(pack) - packFooterLen - tlen
	if tlen < sealOverhead || tstart < packHeaderLen {
		return nil, fmt.Errorf("pack trailer length %d does not fit a %d-byte pack", tlen, len(pack))
	}
	ad := append(bytes.Clone(pack[:packHeaderLen]), trailerAD...)
	plain, err := openAEAD(dataKey[:], ad, pack[tstart:tstart+tlen])
	if err != nil {
		return nil, fmt.Errorf("pack trailer: %w", err)
	}
	es, err := decodeEntries(plain)
	if err != nil {
		return nil, fmt.Errorf("pack trailer: %w", err)
	}
	for i, e := range es {
		if int(e.Offset) < packHeaderLen || int(e.Offset)+int(e.Length) > tstart || e.Length < sealOverhead {
			return nil, fmt.Errorf("pack trailer entry %d (blob %s) points outside the blob area", i, e.ID)
		}
	}
	return es, nil
}

// packDataKey unwraps the data key from a pack header.
func packDataKey(k *Keys, header []byte) (int, [32]byte, error) {
	version, err := checkPrefix(header, kindPack)
	if err != nil {
		return 0, [32]byte{}, err
	}
	if len(header) < packHeaderLen {
		return 0, [32]byte{}, fmt.Errorf("pack is truncated: header of %d bytes", len(header))
	}
	dk, err := unwrapDataKey(k, header[prefixLen:packHeaderLen], header[:prefixLen])
	if err != nil {
		return 0, dk, fmt.Errorf("pack header: %w", err)
	}
	return version, dk, nil
}

// RawPipeline runs the in-memory part of AddBlob over chunks — chunk ID,
// compression, sealing — on workers goroutines (GOMAXPROCS when < 1), with
// no dedup, no pre-write check and no I/O, and returns the sealed bytes. It
// is the pipeline's ceiling, for benchmarks to compare whole backups with.
func RawPipeline(ctx context.Context, pub PublicKeys, chunks [][]byte, workers int) (int64, error) {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	dk, err := newDataKey()
	if err != nil {
		return 0, err
	}
	var total atomic.Int64
	next := atomic.Int64{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var plain, sealed []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= len(chunks) || ctx.Err() != nil {
					return
				}
				id := chunkID(&pub.ChunkKey, chunks[i])
				plain = compressBlob(plain, chunks[i])
				var serr error
				sealed, serr = sealAEADTo(sealed[:0], dk[:], blobAD(CurrentFormat, BlobData, id), plain)
				if serr != nil {
					errs <- serr
					return
				}
				total.Add(int64(len(sealed)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return total.Load(), ctx.Err()
}
