package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damagePublicKeys are the ways a store's public-keys file goes wrong: a
// flipped bit in either half, the file of another store, a cut-short file.
var damagePublicKeys = []struct {
	name string
	f    func(t *testing.T, b []byte) []byte
}{
	{"public-key-bit", func(t *testing.T, b []byte) []byte { b[prefixLen+3] ^= 0x04; return b }},
	{"chunk-key-bit", func(t *testing.T, b []byte) []byte { b[prefixLen+32+31] ^= 0x80; return b }},
	{"other-store", func(t *testing.T, b []byte) []byte { return mustKeys(t).PublicKeys.Marshal() }},
	{"truncated", func(t *testing.T, b []byte) []byte { return b[:len(b)-1] }},
}

func rewriteStoreFile(t *testing.T, dir, name string, f func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func storeKeyProblems(t *testing.T, dir string, k *Keys) []VerifyProblem {
	t.Helper()
	v, err := OpenStoreView(context.Background(), dir)
	if err != nil {
		t.Fatalf("OpenStoreView of a store with damaged keys: %v (restore must still work)", err)
	}
	defer v.Close()
	return v.CheckKeys(k)
}

func TestOpenStoreRefusesDamagedPublicKeys(t *testing.T) {
	ctx := context.Background()
	for _, c := range damagePublicKeys {
		t.Run(c.name, func(t *testing.T) {
			s, k := newTestStore(t)
			dir := s.Dir()
			s.Close()
			rewriteStoreFile(t, dir, storePubFile, func(b []byte) []byte { return c.f(t, b) })

			_, err := OpenStore(ctx, dir)
			if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), storePubFile) {
				t.Fatalf("OpenStore with %s = %v, want ErrKeyMismatch naming %s", c.name, err, storePubFile)
			}
			for _, key := range []*Keys{nil, k} {
				ps := storeKeyProblems(t, dir, key)
				if len(ps) == 0 || !errors.Is(ps[0], ErrKeyMismatch) {
					t.Errorf("CheckKeys(with key %v) = %v, want a key mismatch", key != nil, ps)
				}
			}

			// The passphrase rebuilds the file from the envelope.
			if err := RebuildPublicKeys(ctx, dir, k); err != nil {
				t.Fatalf("RebuildPublicKeys: %v", err)
			}
			s2, err := OpenStore(ctx, dir)
			if err != nil {
				t.Fatalf("OpenStore after rebuild: %v", err)
			}
			defer s2.Close()
			if s2.PublicKeys() != k.PublicKeys {
				t.Errorf("rebuilt public keys differ from the key pair")
			}
			if ps := storeKeyProblems(t, dir, k); len(ps) != 0 {
				t.Errorf("CheckKeys after rebuild: %v", ps)
			}
		})
	}
}

func TestRebuildPublicKeysRefusesOtherKeys(t *testing.T) {
	s, _ := newTestStore(t)
	dir := s.Dir()
	s.Close()
	err := RebuildPublicKeys(context.Background(), dir, mustKeys(t))
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("RebuildPublicKeys with another key pair = %v, want ErrKeyMismatch", err)
	}
}

// TestStoreKeysWithoutDigest: stores made before the keys digest existed
// (testdata/v1) still open; their chunk key is checked against the
// envelope when the passphrase is given, and a rebuild records the digest.
func TestStoreKeysWithoutDigest(t *testing.T) {
	ctx := context.Background()
	s, k := newTestStore(t)
	dir := s.Dir()
	s.Close()
	rewriteStoreFile(t, dir, storeConfigFile, func(b []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["keys_digest"]; !ok {
			t.Fatalf("new store config has no keys_digest: %s", b)
		}
		delete(m, "keys_digest")
		out, _ := json.Marshal(m)
		return out
	})
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatalf("OpenStore of a store without keys digest: %v", err)
	}
	s.Close()
	if ps := storeKeyProblems(t, dir, k); len(ps) != 0 {
		t.Errorf("CheckKeys of an intact old store: %v", ps)
	}

	rewriteStoreFile(t, dir, storePubFile, func(b []byte) []byte { b[prefixLen+40] ^= 1; return b })
	if ps := storeKeyProblems(t, dir, k); len(ps) == 0 || !strings.Contains(ps[0].Error(), "chunk key") {
		t.Errorf("CheckKeys with the passphrase missed a flipped chunk key: %v", ps)
	}
	if err := RebuildPublicKeys(ctx, dir, k); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, storeConfigFile)); !bytes.Contains(b, []byte(k.PublicKeys.Digest())) {
		t.Errorf("rebuild did not record the keys digest: %s", b)
	}
	rewriteStoreFile(t, dir, storePubFile, func(b []byte) []byte { b[prefixLen+40] ^= 1; return b })
	if _, err := OpenStore(ctx, dir); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("OpenStore after the digest was recorded = %v, want ErrKeyMismatch", err)
	}
}

func TestCheckKeysEnvelope(t *testing.T) {
	s, k := newTestStore(t)
	dir := s.Dir()
	s.Close()
	other, err := WrapKeys(mustKeys(t), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	rewriteStoreFile(t, dir, storeEnvelopeFile, func([]byte) []byte { return other })
	ps := storeKeyProblems(t, dir, nil)
	if len(ps) != 1 || !strings.Contains(ps[0].Error(), storeEnvelopeFile) {
		t.Errorf("CheckKeys with another store's envelope = %v", ps)
	}
	// Backup writes with the public keys, which are intact.
	s, err = OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatalf("OpenStore with a foreign envelope: %v", err)
	}
	s.Close()
	rewriteStoreFile(t, dir, storeEnvelopeFile, func(b []byte) []byte { b[10] ^= 1; return b })
	if ps := storeKeyProblems(t, dir, k); len(ps) != 1 || !errors.Is(ps[0], ErrCorruptEnvelope) {
		t.Errorf("CheckKeys with a damaged envelope = %v", ps)
	}
}

func TestV1StoreKeysCheck(t *testing.T) {
	dir := filepath.Join(v1Dir, "store")
	env, err := os.ReadFile(filepath.Join(dir, storeEnvelopeFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := UnwrapKeys(env, []byte(v1Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []*Keys{nil, k} {
		if ps := storeKeyProblems(t, dir, key); len(ps) != 0 {
			t.Errorf("CheckKeys of testdata/v1 (key %v): %v", key != nil, ps)
		}
	}
}
