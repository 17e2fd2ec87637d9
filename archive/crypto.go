package archive

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// Every AEAD in the format is XChaCha20-Poly1305 (24-byte random nonce,
// 16-byte tag): random nonces are safe at any volume and it needs no AES
// hardware, which matters for a format meant to be read on unknown machines.
const (
	nonceSize = chacha20poly1305.NonceSizeX
	tagSize   = chacha20poly1305.Overhead
	// sealOverhead is what sealAEAD adds to a plaintext.
	sealOverhead = nonceSize + tagSize
)

// Layout of a wrapped data key (a "key block"), see docs/FORMAT.md:
// recipient fingerprint (16) | ephemeral X25519 public key (32) |
// nonce (24) | sealed data key (32 + 16).
const (
	fingerprintLen = 16
	keyBlockLen    = fingerprintLen + 32 + nonceSize + 32 + tagSize
)

// wrapInfo is the HKDF info string of the key-wrapping KEK; changing it
// is a format change.
const wrapInfo = "tapeless v1 data key wrap"

// ErrAuthentication is wrapped by errors about objects whose bytes do not
// authenticate (tampered, corrupted, truncated, or sealed to another key).
var ErrAuthentication = errors.New("authentication failed")

// fingerprintBytes is the raw fingerprint of an X25519 public key: the first
// 16 bytes of its SHA-256.
func fingerprintBytes(pub [32]byte) [fingerprintLen]byte {
	s := sha256.Sum256(pub[:])
	var f [fingerprintLen]byte
	copy(f[:], s[:fingerprintLen])
	return f
}

// newDataKey returns a fresh random 32-byte key.
func newDataKey() ([32]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate data key: %w", err)
	}
	return k, nil
}

// kek derives the key-encryption key of a key block from the X25519 shared
// secret, binding both public keys.
func kek(shared []byte, eph, recipient []byte) ([]byte, error) {
	salt := make([]byte, 0, 64)
	salt = append(salt, eph...)
	salt = append(salt, recipient...)
	return hkdf.Key(sha256.New, shared, salt, wrapInfo, 32)
}

// wrapDataKey seals dataKey to the recipient public key with an ephemeral
// X25519 key pair (ECIES style). ad (the object's prefix) is bound as
// associated data so a key block cannot be moved to another kind of object.
func wrapDataKey(recipient [32]byte, dataKey [32]byte, ad []byte) ([]byte, error) {
	var ephPriv [32]byte
	if _, err := rand.Read(ephPriv[:]); err != nil {
		return nil, fmt.Errorf("generate ephemeral key: %w", err)
	}
	ephPub, err := curve25519.X25519(ephPriv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("derive ephemeral key: %w", err)
	}
	shared, err := curve25519.X25519(ephPriv[:], recipient[:])
	if err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	k, err := kek(shared, ephPub, recipient[:])
	if err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	fp := fingerprintBytes(recipient)
	out := make([]byte, 0, keyBlockLen)
	out = append(out, fp[:]...)
	out = append(out, ephPub...)
	sealed, err := sealAEAD(k, ad, dataKey[:])
	if err != nil {
		return nil, err
	}
	out = append(out, sealed...)
	return out, nil
}

// sealedToOther reports whether a key block is sealed to a key pair other
// than k's (another server registered to the same vault): such objects are
// not damaged, just not ours to open.
func sealedToOther(k *Keys, block []byte) bool {
	fp := fingerprintBytes(k.Public)
	return len(block) >= fingerprintLen && subtle.ConstantTimeCompare(fp[:], block[:fingerprintLen]) != 1
}

// unwrapDataKey opens a key block made by wrapDataKey with the private key.
func unwrapDataKey(k *Keys, block, ad []byte) ([32]byte, error) {
	var dk [32]byte
	if len(block) != keyBlockLen {
		return dk, fmt.Errorf("key block is %d bytes, want %d", len(block), keyBlockLen)
	}
	fp := fingerprintBytes(k.Public)
	if subtle.ConstantTimeCompare(fp[:], block[:fingerprintLen]) != 1 {
		return dk, fmt.Errorf("%w: sealed to key %s, not to this key %s", ErrAuthentication,
			hex.EncodeToString(block[:fingerprintLen]), k.Fingerprint)
	}
	eph := block[fingerprintLen : fingerprintLen+32]
	shared, err := curve25519.X25519(k.Private[:], eph)
	if err != nil {
		return dk, fmt.Errorf("%w: bad ephemeral key: %v", ErrAuthentication, err)
	}
	kk, err := kek(shared, eph, k.Public[:])
	if err != nil {
		return dk, err
	}
	plain, err := openAEAD(kk, ad, block[fingerprintLen+32:])
	if err != nil {
		return dk, fmt.Errorf("data key: %w", err)
	}
	copy(dk[:], plain)
	return dk, nil
}

// sealAEAD encrypts plain under key with a fresh random nonce and returns
// nonce | ciphertext | tag.
func sealAEAD(key []byte, ad, plain []byte) ([]byte, error) {
	return sealAEADTo(nil, key, ad, plain)
}

// sealAEADTo is sealAEAD appending to dst.
func sealAEADTo(dst, key []byte, ad, plain []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("aead: %w", err)
	}
	n := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	if _, err := rand.Read(dst[n : n+nonceSize]); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return a.Seal(dst, dst[n:n+nonceSize], plain, ad), nil
}

// openAEAD reverses sealAEAD; any mismatch wraps ErrAuthentication.
func openAEAD(key []byte, ad, sealed []byte) ([]byte, error) {
	return openAEADTo(nil, key, ad, sealed)
}

// openAEADTo is openAEAD appending the plaintext to dst.
func openAEADTo(dst, key []byte, ad, sealed []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("aead: %w", err)
	}
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("%w: sealed data truncated to %d bytes", ErrAuthentication, len(sealed))
	}
	out, err := a.Open(dst, sealed[:nonceSize], sealed[nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	return out, nil
}

// objectHash names a stored object: the SHA-256 of its stored bytes, so
// anyone can check a stored byte against its name without a key.
func objectHash(b []byte) ID {
	return ID(sha256.Sum256(b))
}
