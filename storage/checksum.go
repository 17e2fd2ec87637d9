package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/minio/minio-go/v7"
)

// ChecksumAlgorithm names the content checksum that backends keep with each
// object: CRC-64/NVME over the whole object. It is what S3 calls a
// "full object" checksum, the only kind whose value does not depend on how an
// upload was split into parts, so a single PUT and a multipart upload of the
// same bytes report the same value and a caller can compare it with one it
// computed locally. It protects against corruption, not against an attacker:
// tapeless names objects by a cryptographic hash for that.
const ChecksumAlgorithm = "CRC64NVME"

// NewChecksum returns a hash computing ChecksumAlgorithm.
func NewChecksum() hash.Hash { return minio.ChecksumCRC64NVME.Hasher() }

// FormatChecksum encodes a sum from NewChecksum the way Info.Checksum holds
// it (standard base64, as S3 sends it in x-amz-checksum-crc64nvme).
func FormatChecksum(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

// ChecksumOf reads r to the end and returns its count of bytes and its
// formatted checksum.
func ChecksumOf(r io.Reader) (int64, string, error) {
	h := NewChecksum()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, "", err
	}
	return n, FormatChecksum(h.Sum(nil)), nil
}

// Confirm checks that the object name in b holds size bytes whose checksum
// (from FormatChecksum) is checksum. It trusts a checksum the backend reports
// in Stat (S3 computes and verifies it on upload); when the backend reports
// none (the file backend) it reads the object back and computes it. An
// object is "confirmed" only by this, never by an ETag or a listing. A
// different object is a *MismatchError (ErrCorrupt); a missing one wraps
// ErrNotFound.
func Confirm(ctx context.Context, b Backend, name string, size int64, checksum string) error {
	err := checkCopy(ctx, b, name, size, checksum)
	if err == nil || errors.Is(err, ErrCorrupt) {
		return err // a *MismatchError names the object and the copy
	}
	return fmt.Errorf("confirm %s at %s: %w", name, b.Location(), err)
}
