// Package vault owns a vault's own records and the reference product's
// rules about them: vault names and the vault config object (replication
// setting, copies, object lock), credentials files (48 hours, only the
// newest valid), server registrations and key envelopes, the vault lock
// that prune and repair hold, and the space rules checked before work
// starts (5 % scratch space, 54,400 GB per data source).
//
// It stands on storage's Backends and knows nothing of the archive format:
// the objects it writes are JSON records under the vault's prefix, next to
// the archive's packs, index objects and points.
package vault
