package archive

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tapeless/tapeless/storage"
)

// ErrKeyMismatch means a store's public-keys file (or key envelope) is not
// the key pair the store was created for: damaged, or copied from another
// store. Writing with such keys would seal every new point to a key nobody
// holds, so OpenStore refuses.
var ErrKeyMismatch = errors.New("store key mismatch")

// Digest returns the hex SHA-256 of Public || ChunkKey. The store records
// it at creation, so that a change to either half of the public-keys file
// is noticed without the passphrase (the fingerprint covers Public only).
func (p PublicKeys) Digest() string {
	h := sha256.New()
	h.Write(p.Public[:])
	h.Write(p.ChunkKey[:])
	return hex.EncodeToString(h.Sum(nil))
}

// checkPublicKeys parses the bytes of <dir>/public-keys and authenticates
// them against the store's config: the public key must have the config's
// fingerprint, and both halves the config's keys digest when it has one
// (stores made before it existed have none).
func checkPublicKeys(cfg storeConfig, raw []byte) (PublicKeys, error) {
	pub, err := ParsePublicKeys(raw)
	if err != nil {
		return pub, fmt.Errorf("%w: the file is damaged (%v)", ErrKeyMismatch, err)
	}
	if pub.Fingerprint != cfg.KeyFingerprint {
		return pub, fmt.Errorf("%w: it holds key %s, but the store was created for key %s (see its %s file): it is damaged or comes from another store",
			ErrKeyMismatch, pub.Fingerprint, cfg.KeyFingerprint, storeConfigFile)
	}
	if cfg.KeysDigest != "" && subtle.ConstantTimeCompare([]byte(pub.Digest()), []byte(cfg.KeysDigest)) != 1 {
		return pub, fmt.Errorf("%w: its keys do not match the digest recorded in the store's %s file at creation: its chunk key is damaged",
			ErrKeyMismatch, storeConfigFile)
	}
	return pub, nil
}

// readPublicKeys reads and authenticates <dir>/public-keys.
func readPublicKeys(dir string, cfg storeConfig) (PublicKeys, error) {
	raw, err := os.ReadFile(filepath.Join(dir, storePubFile))
	if err != nil {
		return PublicKeys{}, fmt.Errorf("open store %s: %w", dir, err)
	}
	pub, err := checkPublicKeys(cfg, raw)
	if err != nil {
		return pub, fmt.Errorf("open store %s: %s: %w", dir, storePubFile, err)
	}
	return pub, nil
}

// CheckKeys checks the store's key files against its config, and against k
// (the keys the passphrase unwrapped) when k is not nil: the public-keys
// file as OpenStore does, plus, with k, that both its halves are k's (which
// also covers stores without a keys digest); and that the key envelope is
// intact and of the store's key. It returns one problem per damaged file,
// naming it (its Err wraps ErrKeyMismatch or ErrCorruptEnvelope), or none.
func (v *StoreView) CheckKeys(k *Keys) []VerifyProblem {
	var problems []VerifyProblem
	add := func(file string, err error) { problems = append(problems, VerifyProblem{Object: file, Err: err}) }
	raw, err := os.ReadFile(filepath.Join(v.Dir, storePubFile))
	if err != nil {
		add(storePubFile, err)
	} else if pub, err := checkPublicKeys(v.config, raw); err != nil {
		add(storePubFile, err)
	} else if k != nil && k.Fingerprint == v.config.KeyFingerprint {
		switch {
		case subtle.ConstantTimeCompare(pub.Public[:], k.Public[:]) != 1:
			add(storePubFile, fmt.Errorf("%w: its public key is not the one the key envelope holds", ErrKeyMismatch))
		case subtle.ConstantTimeCompare(pub.ChunkKey[:], k.ChunkKey[:]) != 1:
			add(storePubFile, fmt.Errorf("%w: its chunk key is not the one the key envelope holds: it is damaged", ErrKeyMismatch))
		}
	}
	fp, err := EnvelopeFingerprint(v.Envelope)
	switch {
	case err != nil:
		add(storeEnvelopeFile, err)
	case fp != v.config.KeyFingerprint:
		add(storeEnvelopeFile, fmt.Errorf("%w: it is for key %s, but the store was created for key %s: it comes from another store",
			ErrKeyMismatch, fp, v.config.KeyFingerprint))
	}
	return problems
}

// RebuildPublicKeys rewrites <dir>/public-keys from k, the key set the
// passphrase unwrapped from the store's (or the vault's) key envelope, and
// records its keys digest in the store's config; it is the repair for a
// damaged public-keys file, and gives a store made before the digest
// existed one. k must be the key the store was created for. It takes the
// store lock.
func RebuildPublicKeys(ctx context.Context, dir string, k *Keys) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("rebuild public keys: %w", err)
	}
	cfg, err := checkStoreConfig(dir)
	if err != nil {
		return err
	}
	if k.Fingerprint != cfg.KeyFingerprint {
		return fmt.Errorf("rebuild public keys of store %s: %w: the unlocked key is %s, the store was created for key %s",
			dir, ErrKeyMismatch, k.Fingerprint, cfg.KeyFingerprint)
	}
	lock, err := acquireLock(dir)
	if err != nil {
		return err
	}
	defer lock.release()
	// public-keys first: a crash before the config is rewritten leaves the
	// right keys and, at worst, the old digest of those same keys.
	if err := storage.WriteFileAtomic(filepath.Join(dir, storePubFile), k.PublicKeys.Marshal(), 0o600); err != nil {
		return fmt.Errorf("rebuild public keys of store %s: %w", dir, err)
	}
	cfg.KeysDigest = k.PublicKeys.Digest()
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := storage.WriteFileAtomic(filepath.Join(dir, storeConfigFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("rebuild public keys of store %s: %w", dir, err)
	}
	return nil
}
