package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// TestSaveConfirmed: the LRS write. Repeating it is a success that writes
// nothing; a different object under the name is a conflict and stays.
func TestSaveConfirmed(t *testing.T) {
	backends := map[string]func(t *testing.T) storage.Backend{
		"file":  func(t *testing.T) storage.Backend { return newFile(t) },
		"minio": func(t *testing.T) storage.Backend { return openMinIO(t, "primary") },
	}
	for kind, mk := range backends {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			b := mk(t)
			// 20 MiB: S3 refuses the name before reading (multipart path),
			// so the comparison must read the source itself.
			for _, size := range []int64{0, 1000, 20 << 20} {
				data := storagetest.Bytes(uint64(size)+41, size)
				name := contentName(data)
				_, want, _ := storage.ChecksumOf(bytes.NewReader(data))
				s, err := storage.SaveConfirmed(ctx, b, name, bytes.NewReader(data), size)
				if err != nil || s.Existed || s.Size != size || s.Checksum != want {
					t.Fatalf("SaveConfirmed(%d bytes) = %+v, %v; want written with checksum %s", size, s, err, want)
				}
				s, err = storage.SaveConfirmed(ctx, b, name, onlyReader{bytes.NewReader(data)}, size)
				if err != nil || !s.Existed || s.Checksum != want {
					t.Fatalf("SaveConfirmed again = %+v, %v; want Existed", s, err)
				}
				if size == 0 {
					continue
				}
				other := storagetest.Bytes(uint64(size)+42, size)
				_, err = storage.SaveConfirmed(ctx, b, name, bytes.NewReader(other), size)
				if !errors.Is(err, storage.ErrConflict) || !errors.Is(err, storage.ErrExists) {
					t.Fatalf("SaveConfirmed with other bytes = %v, want ErrConflict and ErrExists", err)
				}
				if err := storage.ConfirmSHA256(ctx, b, name, size, sha256Of(data)); err != nil {
					t.Errorf("ConfirmSHA256 after a refused conflict = %v", err)
				}
			}
		})
	}
}

// TestSaveConfirmedReadsBack: a copy that stores or returns other bytes
// than it was given is caught by the confirmation, not trusted.
func TestSaveConfirmedReadsBack(t *testing.T) {
	ctx := context.Background()
	f := storagetest.NewFault(newFile(t))
	f.CorruptLoads(10)
	data := storagetest.Bytes(43, 5000)
	_, err := storage.SaveConfirmed(ctx, f, "packs/x", bytes.NewReader(data), int64(len(data)))
	var me *storage.MismatchError
	if !errors.As(err, &me) || !errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrConflict) {
		t.Fatalf("SaveConfirmed on a copy that reads back wrong = %v, want a MismatchError", err)
	}
	if me.What != storage.ChecksumAlgorithm {
		t.Errorf("mismatch in %q, want %s", me.What, storage.ChecksumAlgorithm)
	}
}

func TestConfirmSHA256(t *testing.T) {
	ctx := context.Background()
	b := newFile(t)
	data := storagetest.Bytes(44, 3000)
	name := contentName(data)
	storagetest.MustSave(t, b, name, data)
	sum := sha256Of(data)
	if err := storage.ConfirmSHA256(ctx, b, name, int64(len(data)), sum); err != nil {
		t.Fatalf("ConfirmSHA256 = %v", err)
	}
	bad := sum
	bad[0] ^= 1
	for what, err := range map[string]error{
		"SHA-256": storage.ConfirmSHA256(ctx, b, name, int64(len(data)), bad),
		"size":    storage.ConfirmSHA256(ctx, b, name, int64(len(data))+1, sum),
	} {
		var me *storage.MismatchError
		if !errors.As(err, &me) || me.What != what || me.Name != name || me.Location != b.Location() {
			t.Errorf("ConfirmSHA256 with a wrong %s = %v, want a MismatchError naming the object", what, err)
		}
	}
	if err := storage.ConfirmSHA256(ctx, b, "packs/missing", 1, sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ConfirmSHA256 of a missing object = %v, want ErrNotFound", err)
	}
}
