package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Format versions of the repository layout and of every object in it. An
// object carries the version it was written with (byte 5 of its prefix); a
// reader accepts MinFormat..MaxFormat and refuses anything else with
// ErrUnsupportedFormat. docs/FORMAT.md describes every version byte by byte.
const (
	MinFormat     = 1
	MaxFormat     = 1
	CurrentFormat = 1 // written by new stores and objects
)

// ErrUnsupportedFormat is wrapped by every error about an object or store
// whose format version this build cannot read.
var ErrUnsupportedFormat = errors.New("unsupported format version")

// objectMagic starts every tapeless object; the byte after it names the
// kind of object and the byte after that its format version.
const objectMagic = "TPLS"

// Object kinds: byte 4 of every object.
const (
	kindPack       byte = 'P'
	kindIndex      byte = 'I'
	kindPoint      byte = 'T'
	kindEnvelope   byte = 'K'
	kindPublicKeys byte = 'U'
)

// prefixLen is the length of the common object prefix: magic, kind, version.
const prefixLen = len(objectMagic) + 2

func kindName(k byte) string {
	switch k {
	case kindPack:
		return "pack"
	case kindIndex:
		return "index object"
	case kindPoint:
		return "point object"
	case kindEnvelope:
		return "key envelope"
	case kindPublicKeys:
		return "public keys"
	}
	return fmt.Sprintf("object kind %q", k)
}

// objectPrefix returns the 6-byte prefix of an object of kind k written in
// format version v.
func objectPrefix(k byte, v int) []byte {
	return append([]byte(objectMagic), k, byte(v))
}

// checkPrefix validates the prefix of b as an object of kind k and returns
// its format version. Errors say what was expected; unknown versions wrap
// ErrUnsupportedFormat.
func checkPrefix(b []byte, k byte) (int, error) {
	if len(b) < prefixLen {
		return 0, fmt.Errorf("%s is truncated: %d bytes, shorter than its %d-byte prefix", kindName(k), len(b), prefixLen)
	}
	if string(b[:len(objectMagic)]) != objectMagic {
		return 0, fmt.Errorf("not a tapeless %s: bad magic %q", kindName(k), b[:len(objectMagic)])
	}
	if b[len(objectMagic)] != k {
		return 0, fmt.Errorf("not a tapeless %s: it is a %s", kindName(k), kindName(b[len(objectMagic)]))
	}
	v := int(b[len(objectMagic)+1])
	if v < MinFormat || v > MaxFormat {
		return v, fmt.Errorf("%s: %w %d (this build reads %d to %d)", kindName(k), ErrUnsupportedFormat, v, MinFormat, MaxFormat)
	}
	return v, nil
}

// ID names a blob (the keyed BLAKE3 of its plaintext, see Store.ChunkID) or
// a stored object (the SHA-256 of its stored bytes).
type ID [32]byte

// String returns the ID as 64 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler (hex).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex).
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("parse id %q: want %d hex digits, got %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse id %q: %w", s, err)
	}
	return id, nil
}

// BlobType tells what a blob holds; it is bound into the blob's AEAD so a
// data blob can never be read as a tree blob or the other way round.
type BlobType uint8

// Blob types. The numeric values are part of the format.
const (
	BlobData BlobType = 1 // file content chunk
	BlobTree BlobType = 2 // manifest (tree) blob: JSON lines, see manifest.go
)

// String names the blob type.
func (t BlobType) String() string {
	switch t {
	case BlobData:
		return "data"
	case BlobTree:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

func (t BlobType) valid() bool { return t == BlobData || t == BlobTree }
