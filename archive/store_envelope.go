package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tapeless/tapeless/storage"
)

// ReplaceEnvelope swaps the store's key envelope for env, which must wrap
// the same key pair: it is how a changed passphrase reaches the store
// (`tapeless configure --change-passphrase`). The new envelope is written
// atomically (storage.WriteFileAtomic), so a crash leaves either the old or
// the new envelope, never a mix; afterwards the old passphrase no longer
// opens the store's envelope.
func (s *Store) ReplaceEnvelope(env []byte) error {
	fp, err := EnvelopeFingerprint(env)
	if err != nil {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if fp != s.pub.Fingerprint {
		return fmt.Errorf("replace key envelope of store %s: envelope is for key %s, the store's is %s", s.dir, fp, s.pub.Fingerprint)
	}
	path := filepath.Join(s.dir, storeEnvelopeFile)
	// Leftovers of interrupted replaces hold envelopes too, maybe under a
	// passphrase being changed away from: remove them so that passphrase
	// opens nothing here afterwards. The store lock keeps other writers out.
	// (path+".new" is where earlier versions wrote the new envelope.)
	if err := os.Remove(path + ".new"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if err := storage.RemoveAtomicLeftovers(path); err != nil {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if err := storage.WriteFileAtomic(path, env, 0o600); err != nil {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	s.mu.Lock()
	s.env = bytes.Clone(env)
	s.mu.Unlock()
	return nil
}
