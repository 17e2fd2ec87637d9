package storage_test

import (
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
