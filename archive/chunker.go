package archive

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
)

// Chunk size bounds of the content-defined chunker. They are not needed to
// read anything back, but changing them (or the gear table) makes new
// chunks miss the dedup of old ones, so they are pinned like the format.
const (
	ChunkMin = 256 << 10 // no cut before this many bytes
	ChunkAvg = 1 << 20   // normalisation point: harder to cut before, easier after
	ChunkMax = 4 << 20   // always cut here
)

// Normalised chunking (FastCDC, level 2): before ChunkAvg a cut needs 22
// zero bits, after it 18, which pulls chunk sizes towards ChunkAvg. The
// masks take the hash's TOP bits, which depend on the last 64 input bytes
// (the low bits of a shift-left gear hash only see the last few bytes).
const (
	maskHard = uint64(1<<22-1) << (64 - 22)
	maskEasy = uint64(1<<18-1) << (64 - 18)
)

// chunkerBufSize is the chunker's read buffer: two maximal chunks, so a
// refill moves at most one chunk's worth of bytes.
const chunkerBufSize = 2 * ChunkMax

// gear is the table of the gear rolling hash: entry i is the first 8 bytes
// (big endian) of SHA-256("tapeless gear v1" || byte(i)). Derived rather
// than listed so docs/FORMAT.md can state it in one line.
var gear = func() (g [256]uint64) {
	for i := range g {
		s := sha256.Sum256(append([]byte("tapeless gear v1"), byte(i)))
		g[i] = binary.BigEndian.Uint64(s[:8])
	}
	return g
}()

// Chunker splits a stream into content-defined chunks (FastCDC with a gear
// hash): an insert or delete in the stream changes only the chunks around
// it, so the rest still deduplicates. Chunks are ChunkMin..ChunkMax bytes,
// about ChunkAvg on average; only the last chunk may be shorter.
type Chunker struct {
	r          io.Reader
	buf        []byte
	start, end int // unconsumed data is buf[start:end]
	err        error
}

// NewChunker returns a Chunker reading r. It holds an 8 MiB buffer.
func NewChunker(r io.Reader) *Chunker {
	return &Chunker{r: r}
}

// Next returns the next chunk, copied into buf (grown as needed; pass the
// previous result's buffer to reuse it). At the end of the stream it
// returns nil, io.EOF; a read error of the underlying reader is returned as
// is, after the chunks read before it.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.end-c.start < ChunkMax && c.err == nil {
		c.fill()
	}
	if c.end == c.start {
		if c.err == nil || errors.Is(c.err, io.EOF) {
			return nil, io.EOF
		}
		return nil, c.err
	}
	// Cut only when the window is complete or the stream is at its end:
	// a partial window would put the boundary somewhere else.
	n := cutPoint(c.buf[c.start:c.end])
	buf = append(buf[:0], c.buf[c.start:c.start+n]...)
	c.start += n
	return buf, nil
}

// fill moves unconsumed data to the front of the buffer and reads until the
// buffer is full or the reader fails (io.EOF included).
func (c *Chunker) fill() {
	if c.buf == nil {
		c.buf = make([]byte, chunkerBufSize)
	}
	c.end = copy(c.buf, c.buf[c.start:c.end])
	c.start = 0
	for c.end < len(c.buf) && c.err == nil {
		var n int
		n, c.err = c.r.Read(c.buf[c.end:])
		c.end += n
	}
}

// cutPoint returns the length of the first chunk of data, which holds
// either at least ChunkMax bytes or the rest of the stream.
func cutPoint(data []byte) int {
	n := len(data)
	if n <= ChunkMin {
		return n
	}
	if n > ChunkMax {
		n = ChunkMax
	}
	normal := ChunkAvg
	if n < normal {
		normal = n
	}
	var h uint64
	// Ranging over subslices lets the compiler drop bounds checks: this
	// loop is the chunker's whole cost.
	for i, b := range data[ChunkMin:normal] {
		h = h<<1 + gear[b]
		if h&maskHard == 0 {
			return ChunkMin + i + 1
		}
	}
	for i, b := range data[normal:n] {
		h = h<<1 + gear[b]
		if h&maskEasy == 0 {
			return normal + i + 1
		}
	}
	return n
}
