// Package storagetest holds the conformance suite every storage.Backend must
// pass (Run), the helpers that point tests at the MinIO servers `make test`
// starts (MinIO, MinIOLock), and Fault, a wrapper that injects failures.
// Only tests import it.
package storagetest
