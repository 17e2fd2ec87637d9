package storage

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrUnavailable means the backend could not be reached at all (connection
	// refused, DNS failure, timeout, or a fault wrapper switched "down"). GRS
	// replication treats it as "copy pending" rather than as data loss.
	ErrUnavailable = errors.New("storage: backend unavailable")

	// ErrInvalidRange means Load was asked for an offset beyond the end of the
	// object. A length that merely runs past the end is truncated instead.
	ErrInvalidRange = errors.New("storage: offset beyond end of object")

	// ErrLocked means S3 refused to delete or overwrite an object because its
	// object-lock retention has not ended yet.
	ErrLocked = errors.New("storage: object is under retention")

	// ErrInvalidName means an object name breaks the naming rules of CheckName.
	ErrInvalidName = errors.New("storage: invalid object name")
)

// maxNameLen matches the S3 key length limit so that a name valid for one
// backend is valid for all of them.
const maxNameLen = 1024

// CheckName reports whether name is a valid object name: a non-empty,
// "/"-separated relative path without empty, "." or ".." elements, without a
// leading or trailing "/" and without NUL bytes. Every backend applies it so
// that a name accepted by the file backend is accepted by S3 and vice versa.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxNameLen))
	case strings.HasPrefix(name, "/"):
		return bad("starts with /")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	}
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "":
			return bad("has an empty path element")
		case ".", "..":
			return bad("has a . or .. element")
		}
	}
	return nil
}

// edgeError is an error translated at a backend's edge: Error() is the one
// clean line meant for the user, Unwrap keeps the original (and any
// sentinel) for errors.Is/As.
type edgeError struct {
	msg  string
	errs []error
}

func (e *edgeError) Error() string   { return e.msg }
func (e *edgeError) Unwrap() []error { return e.errs }
