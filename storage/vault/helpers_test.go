package vault_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

func minio(t *testing.T, which string) (string, storage.Options) {
	t.Helper()
	return storagetest.MinIO(t, which)
}

func minioLock(t *testing.T, which string) (string, storage.Options) {
	t.Helper()
	return storagetest.MinIOLock(t, which)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newFile(t *testing.T) *storage.File {
	t.Helper()
	b, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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
