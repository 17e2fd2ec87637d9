package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/curve25519"
)

// readVectors parses the ```vectors block of docs/FORMAT.md.
func readVectors(t *testing.T) map[string][]byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```vectors\n")
	if !ok {
		t.Fatal("docs/FORMAT.md has no ```vectors block")
	}
	block, _, _ = strings.Cut(block, "```")
	v := map[string][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, val, ok := strings.Cut(line, " = ")
		b, err := hex.DecodeString(val)
		if !ok || err != nil {
			t.Fatalf("bad vector line %q", line)
		}
		v[k] = b
	}
	return v
}

// TestFormatVectors checks this code's primitives against the vectors that
// docs/FORMAT.md gives readers, so the document cannot drift.
func TestFormatVectors(t *testing.T) {
	v := readVectors(t)
	need := func(k string) []byte {
		b, ok := v[k]
		if !ok {
			t.Fatalf("vector %s missing from docs/FORMAT.md", k)
		}
		return b
	}
	var ck [32]byte
	copy(ck[:], need("blake3.key"))
	if id := chunkID(&ck, need("blake3.data")); !bytes.Equal(id[:], need("blake3.id")) {
		t.Errorf("keyed BLAKE3 = %x, FORMAT.md says %x", id, need("blake3.id"))
	}

	key, nonce := need("xchacha.key"), need("xchacha.nonce")
	if sub, err := chacha20.HChaCha20(key, nonce[:16]); err != nil || !bytes.Equal(sub, need("xchacha.hchacha20_subkey")) {
		t.Errorf("HChaCha20 = %x (%v), FORMAT.md says %x", sub, err, need("xchacha.hchacha20_subkey"))
	}
	plain, err := openAEAD(key, need("xchacha.ad"), need("xchacha.sealed"))
	if err != nil || !bytes.Equal(plain, need("xchacha.plain")) {
		t.Errorf("openAEAD of the vector = %x (%v), want %x", plain, err, need("xchacha.plain"))
	}
	// A flipped tag byte must not open.
	sealed := bytes.Clone(need("xchacha.sealed"))
	sealed[len(sealed)-1] ^= 1
	if _, err := openAEAD(key, need("xchacha.ad"), sealed); err == nil {
		t.Error("openAEAD accepted a flipped tag")
	}

	pub, err := curve25519.X25519(need("x25519.priv"), curve25519.Basepoint)
	if err != nil || !bytes.Equal(pub, need("x25519.pub")) {
		t.Errorf("X25519 public key = %x, FORMAT.md says %x", pub, need("x25519.pub"))
	}
	var pub32 [32]byte
	copy(pub32[:], pub)
	if fp := fingerprint(pub32); fp != hex.EncodeToString(need("x25519.fingerprint")) {
		t.Errorf("fingerprint = %s, FORMAT.md says %x", fp, need("x25519.fingerprint"))
	}
	s := sha256.Sum256(pub)
	if !bytes.Equal(s[:16], need("x25519.fingerprint")) {
		t.Errorf("SHA-256(Pub)[0:16] = %x", s[:16])
	}

	eph, _ := curve25519.X25519(need("keyblock.eph_priv"), curve25519.Basepoint)
	if !bytes.Equal(eph, need("keyblock.eph_pub")) {
		t.Errorf("ephemeral public key = %x, FORMAT.md says %x", eph, need("keyblock.eph_pub"))
	}
	shared, _ := curve25519.X25519(need("keyblock.eph_priv"), pub)
	if !bytes.Equal(shared, need("keyblock.shared")) {
		t.Errorf("shared secret = %x, FORMAT.md says %x", shared, need("keyblock.shared"))
	}
	if wk, err := kek(shared, eph, pub); err != nil || !bytes.Equal(wk, need("keyblock.wrap_key")) {
		t.Errorf("wrap key = %x (%v), FORMAT.md says %x", wk, err, need("keyblock.wrap_key"))
	}
	// The reader's side of the same key block derivation gives the same key.
	readerShared, _ := curve25519.X25519(need("x25519.priv"), eph)
	if !bytes.Equal(readerShared, shared) {
		t.Error("X25519(Priv, E) differs from X25519(e, Pub)")
	}

	if k := argon2.IDKey(need("argon2id.passphrase"), need("argon2id.salt"), 3, 64, 1, 32); !bytes.Equal(k, need("argon2id.kek")) {
		t.Errorf("argon2id = %x, FORMAT.md says %x", k, need("argon2id.kek"))
	}
}
