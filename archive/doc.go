// Package archive owns the recovery-point format and engine: chunking, the
// dedup index, compression, encryption, keys and the passphrase, manifests,
// backup, restore, verify and the mechanics of offload. It knows nothing of
// cron or the command line.
package archive
