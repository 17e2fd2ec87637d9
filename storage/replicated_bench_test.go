package storage_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// BenchmarkReplicatedSave compares a confirmed save on one copy (LRS)
// with a GRS save on two (write, confirm, write, confirm), on file
// backends and on the two MinIO servers, for 16 MiB objects read from a
// seekable source as the offload reads local packs.
func BenchmarkReplicatedSave(b *testing.B) {
	const size = 16 << 20
	data := storagetest.Bytes(1, size)
	for _, c := range []struct {
		name string
		open func(b *testing.B) storage.Backend
	}{
		{"file-lrs", func(b *testing.B) storage.Backend { return benchFile(b) }},
		{"file-grs", func(b *testing.B) storage.Backend { return storage.Replicated(benchFile(b), benchFile(b)) }},
		{"minio-lrs", func(b *testing.B) storage.Backend { return benchMinIO(b, "primary") }},
		{"minio-grs", func(b *testing.B) storage.Backend {
			return storage.Replicated(benchMinIO(b, "primary"), benchMinIO(b, "secondary"))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			be := c.open(b)
			ctx := context.Background()
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				// A distinct object each time: the first bytes carry i.
				binary.BigEndian.PutUint64(data, uint64(i))
				i++
				var err error
				if grs, ok := be.(*storage.ReplicatedBackend); ok {
					err = grs.Save(ctx, contentName(data), bytes.NewReader(data), size)
				} else {
					_, err = storage.SaveConfirmed(ctx, be, contentName(data), bytes.NewReader(data), size)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchFile(b *testing.B) storage.Backend {
	f, err := storage.NewFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func benchMinIO(b *testing.B, which string) storage.Backend {
	u, o := storagetest.MinIO(b, which)
	be, err := storage.Open(context.Background(), u, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}
