package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

var (
	// ErrCorrupt means an object's bytes do not match what its name or its
	// recorded size and checksum say. A Load callback that authenticates
	// what it reads (the archive's decryption) wraps it in its error so that
	// Replicated falls back to the other copy.
	ErrCorrupt = errors.New("storage: object content does not match")

	// ErrConflict means a copy already holds a different object under the
	// name being written. Objects are never overwritten, so it needs an
	// operator. Errors wrapping it also wrap ErrExists (the name is taken)
	// and the *MismatchError saying how the objects differ, which wraps
	// ErrCorrupt: which of the two is damaged, only the name can tell.
	ErrConflict = errors.New("storage: a different object exists under this name")
)

// MismatchError says how a stored object differs from what was expected.
// It wraps ErrCorrupt.
type MismatchError struct {
	Location string // the backend's Location
	Name     string // the object
	What     string // "size", ChecksumAlgorithm or "SHA-256"
	Got      string
	Want     string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("object %s at %s: %s is %s, want %s", e.Name, e.Location, e.What, e.Got, e.Want)
}

// Unwrap returns ErrCorrupt.
func (e *MismatchError) Unwrap() error { return ErrCorrupt }

// ConfirmSHA256 confirms the object name in b by reading every byte of it
// back and comparing its length with size and its SHA-256 with sum. Unlike
// Confirm it never trusts a checksum the backend reports: it is what a
// scrub or a suspicious caller uses, and costs a full download. tapeless
// names stored objects by this very hash, so sum usually comes from the
// name. A mismatch is a *MismatchError (ErrCorrupt).
func ConfirmSHA256(ctx context.Context, b Backend, name string, size int64, sum [32]byte) error {
	err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		if n != size {
			return &MismatchError{Location: b.Location(), Name: name, What: "size", Got: fmt.Sprint(n), Want: fmt.Sprint(size)}
		}
		if got := h.Sum(nil); [32]byte(got) != sum {
			return &MismatchError{Location: b.Location(), Name: name, What: "SHA-256", Got: hex.EncodeToString(got), Want: hex.EncodeToString(sum[:])}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("confirm %s at %s by reading it back: %w", name, b.Location(), err)
	}
	return nil
}

// checkCopy is Confirm without context added to its errors: a different
// object yields a *MismatchError, a copy that could not be read any other
// error. It trusts a checksum the backend reports (S3
// computed it from the bytes it received and keeps it with the object)
// and otherwise reads the object back.
func checkCopy(ctx context.Context, b Backend, name string, size int64, checksum string) error {
	info, err := b.Stat(ctx, name)
	if err != nil {
		return err
	}
	if info.Size != size {
		return &MismatchError{Location: b.Location(), Name: name, What: "size", Got: fmt.Sprint(info.Size), Want: fmt.Sprint(size)}
	}
	got := info.Checksum
	if got == "" {
		err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
			n, sum, err := ChecksumOf(r)
			if err != nil {
				return err
			}
			if n != size {
				return &MismatchError{Location: b.Location(), Name: name, What: "size read back", Got: fmt.Sprint(n), Want: fmt.Sprint(size)}
			}
			got = sum
			return nil
		})
		if err != nil {
			return err
		}
	}
	if got != checksum {
		return &MismatchError{Location: b.Location(), Name: name, What: ChecksumAlgorithm, Got: got, Want: checksum}
	}
	return nil
}

// Saved reports what SaveConfirmed did.
type Saved struct {
	Size     int64
	Checksum string // of the bytes, as FormatChecksum gives it
	// Existed is true when the identical object was already there (an
	// earlier run wrote it) and nothing was written.
	Existed bool
}

// SaveConfirmed writes size bytes from r to name in b and confirms the
// stored object by size and checksum read back from b (see Confirm). It is
// Save made safe to repeat after a crash: when name already holds an
// object with the same size and checksum it returns Existed and no error;
// when it holds a different object it returns an error wrapping
// ErrConflict and ErrExists and changes nothing. Objects are never
// overwritten.
func SaveConfirmed(ctx context.Context, b Backend, name string, r io.Reader, size int64) (Saved, error) {
	return saveCopy(ctx, b, name, r, size, "", nil)
}

// saveCopy is SaveConfirmed. When want is not empty the bytes of r must
// have that checksum, and when sha is not nil that SHA-256: the reader
// fails on its last byte otherwise, so a mismatch leaves nothing behind.
func saveCopy(ctx context.Context, b Backend, name string, r io.Reader, size int64, want string, sha *[32]byte) (Saved, error) {
	vr := newVerifyingReader(r, size, want, sha, b.Location(), name)
	err := b.Save(ctx, name, vr, size)
	switch {
	case err == nil:
		if vr.n != size {
			// Every backend reads exactly size bytes or fails.
			return Saved{}, fmt.Errorf("save %s at %s: backend read %d of %d bytes", name, b.Location(), vr.n, size)
		}
	case errors.Is(err, ErrExists):
		if want == "" {
			// Learn the checksum of what we were asked to store: read the
			// rest the backend did not (it may refuse before reading).
			if _, err := io.Copy(io.Discard, vr); err != nil {
				return Saved{}, fmt.Errorf("save %s at %s: read source to compare with the existing object: %w", name, b.Location(), err)
			}
			if vr.n != size {
				return Saved{}, fmt.Errorf("save %s at %s: source ended after %d of %d bytes: %w", name, b.Location(), vr.n, size, io.ErrUnexpectedEOF)
			}
		}
		sum := want
		if sum == "" {
			sum = vr.checksum()
		}
		if err := checkCopy(ctx, b, name, size, sum); err != nil {
			if errors.Is(err, ErrCorrupt) {
				return Saved{}, fmt.Errorf("save %s at %s: refusing to overwrite a different object (%w; %w): %w", name, b.Location(), ErrConflict, ErrExists, err)
			}
			return Saved{}, fmt.Errorf("save %s at %s: it exists; compare with it: %w", name, b.Location(), err)
		}
		return Saved{Size: size, Checksum: sum, Existed: true}, nil
	default:
		return Saved{}, err
	}
	sum := vr.checksum()
	if err := checkCopy(ctx, b, name, size, sum); err != nil {
		return Saved{}, fmt.Errorf("save %s at %s: written but not confirmed: %w", name, b.Location(), err)
	}
	return Saved{Size: size, Checksum: sum}, nil
}

// verifyingReader counts and checksums what passes through it and, when
// told what to expect, fails the read that delivers the last byte if the
// content does not match. Failing that read (rather than at EOF) matters:
// backends read exactly size bytes and may never ask for EOF, and a Save
// whose reader fails leaves nothing behind.
type verifyingReader struct {
	r         io.Reader
	size, n   int64
	crc       hash.Hash
	want      string
	sha       hash.Hash
	wantSHA   *[32]byte
	loc, name string
	err       error
}

func newVerifyingReader(r io.Reader, size int64, want string, sha *[32]byte, loc, name string) *verifyingReader {
	v := &verifyingReader{r: r, size: size, crc: NewChecksum(), want: want, wantSHA: sha, loc: loc, name: name}
	if sha != nil {
		v.sha = sha256.New()
	}
	return v
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if rest := v.size - v.n; int64(len(p)) > rest {
		// Never hand out more than size bytes: a longer source is a
		// mismatch caught below, not extra data.
		if rest == 0 {
			return 0, io.EOF
		}
		p = p[:rest]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.crc.Write(p[:n])
	if v.sha != nil {
		v.sha.Write(p[:n])
	}
	if v.n == v.size {
		if verr := v.verify(); verr != nil {
			v.err = verr
			return n, verr
		}
	}
	if err == io.EOF && v.n < v.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (v *verifyingReader) checksum() string { return FormatChecksum(v.crc.Sum(nil)) }

func (v *verifyingReader) verify() error {
	if v.want != "" {
		if got := v.checksum(); got != v.want {
			return &MismatchError{Location: v.loc, Name: v.name, What: ChecksumAlgorithm + " of the source", Got: got, Want: v.want}
		}
	}
	if v.wantSHA != nil {
		if got := v.sha.Sum(nil); [32]byte(got) != *v.wantSHA {
			return &MismatchError{Location: v.loc, Name: v.name, What: "SHA-256 of the source", Got: hex.EncodeToString(got), Want: hex.EncodeToString(v.wantSHA[:])}
		}
	}
	return nil
}
