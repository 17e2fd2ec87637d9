package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// ReplaceEnvelope swaps the store's key envelope for env, which must wrap
// the same key pair: it is how a changed passphrase reaches the store
// (`tapeless configure --change-passphrase`). The new envelope is written
// to a temporary file, synced and renamed over the old one, so a crash
// leaves either the old or the new envelope, never a mix; afterwards the
// old passphrase no longer opens the store's envelope.
func (s *Store) ReplaceEnvelope(env []byte) error {
	fp, err := EnvelopeFingerprint(env)
	if err != nil {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if fp != s.pub.Fingerprint {
		return fmt.Errorf("replace key envelope of store %s: envelope is for key %s, the store's is %s", s.dir, fp, s.pub.Fingerprint)
	}
	path := filepath.Join(s.dir, storeEnvelopeFile)
	tmp := path + ".new"
	// A leftover from an interrupted replace is garbage: the rename never
	// happened.
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if err := writeFileSync(tmp, env); err != nil {
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace key envelope of store %s: %w", s.dir, err)
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.mu.Lock()
	s.env = bytes.Clone(env)
	s.mu.Unlock()
	return nil
}
