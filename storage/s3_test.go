package storage_test

import (
	"context"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// openMinIO opens a fresh prefix of the plain test bucket on which.
func openMinIO(t *testing.T, which string) storage.Backend {
	t.Helper()
	u, o := storagetest.MinIO(t, which)
	b, err := storage.Open(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
