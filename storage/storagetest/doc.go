// Package storagetest holds the conformance suite every storage.Backend must
// pass (Run) and the helpers that point tests at the MinIO servers `make
// test` starts (MinIO, MinIOLock).
package storagetest
