// Package storage owns where bytes live: the Backend interface for named,
// write-once objects and its implementations (file, S3, prefixed,
// replicated — the one GRS path — and throttled). The vault's own records
// and the product's rules live in storage/vault, the conformance suite and
// the fault wrapper in storage/storagetest. It knows nothing of the archive
// format.
//
// Open turns a URL into a Backend: file:///abs/path gives a File (the
// embedded default), s3://host:port/bucket[/prefix][?insecure=1] an S3 on
// any S3-compatible server. Prefixed narrows a backend to a key prefix (a
// vault under an account URL); storagetest.Fault wraps one for tests.
//
// Every backend returns errors wrapping ErrNotFound, ErrExists,
// ErrInvalidRange, ErrInvalidName, ErrLocked or ErrUnavailable where they
// apply, and errors about a location name it by Location, which never
// holds a secret. Objects carry a CRC-64/NVME content checksum (Info,
// Confirm) so that a copy is confirmed by size and checksum, never by an
// ETag or a listing. storagetest.Run is the conformance suite they pass.
package storage
