package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors every Backend returns (wrapped, with the object name) so
// callers can branch with errors.Is whatever the implementation.
var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("storage: object not found")
	// ErrExists means Save was asked to write a name that is already taken;
	// objects are write-once and never overwritten.
	ErrExists = errors.New("storage: object already exists")
)

// Info describes one stored object.
type Info struct {
	Name    string // full object name relative to the backend root, "/"-separated
	Size    int64
	ModTime time.Time

	// Checksum is the object's content checksum (ChecksumAlgorithm,
	// formatted by FormatChecksum) as the backend reports it, or "" when the
	// backend keeps none or the call does not fetch it (S3 fills it in
	// Stat; listings and the file backend leave it empty). Use Confirm to
	// check an object against a locally computed checksum.
	Checksum string
}

// Backend stores named, write-once objects. Names are "/"-separated relative
// paths such as "packs/ab/ab12…"; they never start with "/" or contain "..".
//
// Implementations must be safe for concurrent use.
type Backend interface {
	// Location describes where objects live, without any secret; it is
	// meant for errors, logs and status output.
	Location() string

	// Save stores exactly size bytes read from r under name. The object
	// becomes visible only when complete: a failed or cancelled Save leaves
	// nothing under name. If name already exists Save returns an error
	// wrapping ErrExists and leaves the existing object untouched.
	Save(ctx context.Context, name string, r io.Reader, size int64) error

	// Load calls fn with a reader over length bytes of the object starting
	// at offset; length < 0 means to the end. The reader is closed when fn
	// returns. A missing object yields an error wrapping ErrNotFound.
	Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error

	// Stat returns the object's Info, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix, in
	// lexical order. Returning an error from fn stops the listing and List
	// returns that error.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Remove deletes the object; removing a missing object returns an error
	// wrapping ErrNotFound.
	Remove(ctx context.Context, name string) error

	// Close releases resources held by the backend.
	Close() error
}
