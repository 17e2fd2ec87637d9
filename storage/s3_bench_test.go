package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// BenchmarkS3Raw measures raw save and load throughput against MinIO
// primary: 16 MiB objects, 4 in flight. Later benchmarks of offload and
// restore compare with these figures from the same run.
func BenchmarkS3Raw(b *testing.B) {
	const (
		size     = 16 << 20
		inFlight = 4
	)
	u, o := storagetest.MinIO(b, "primary")
	be, err := storage.Open(context.Background(), u, o)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	data := storagetest.Bytes(1, size)
	var seq atomic.Int64
	ctx := context.Background()

	b.Run("save", func(b *testing.B) {
		b.SetBytes(size)
		b.SetParallelism(inFlight) // × GOMAXPROCS goroutines; capped below
		sem := make(chan struct{}, inFlight)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sem <- struct{}{}
				name := fmt.Sprintf("bench/%d", seq.Add(1))
				if err := be.Save(ctx, name, bytes.NewReader(data), size); err != nil {
					b.Error(err)
				}
				<-sem
			}
		})
	})

	// Load what the save run wrote (at least inFlight objects).
	for seq.Load() < inFlight {
		name := fmt.Sprintf("bench/%d", seq.Add(1))
		if err := be.Save(ctx, name, bytes.NewReader(data), size); err != nil {
			b.Fatal(err)
		}
	}
	stored := seq.Load()
	b.Run("load", func(b *testing.B) {
		b.SetBytes(size)
		b.SetParallelism(inFlight)
		sem := make(chan struct{}, inFlight)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sem <- struct{}{}
				name := fmt.Sprintf("bench/%d", next.Add(1)%stored+1)
				err := be.Load(ctx, name, 0, -1, func(r io.Reader) error {
					_, err := io.Copy(io.Discard, r)
					return err
				})
				if err != nil {
					b.Error(err)
				}
				<-sem
			}
		})
	})
}
