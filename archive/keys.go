package archive

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/text/unicode/norm"
)

// MinPassphraseLen is the least number of characters (Unicode code points)
// a passphrase must have; it is a rule of the reference product.
const MinPassphraseLen = 16

// Errors about passphrases and key envelopes; callers branch on them with
// errors.Is.
var (
	// ErrPassphraseTooShort means the passphrase has fewer than
	// MinPassphraseLen characters.
	ErrPassphraseTooShort = errors.New("passphrase too short: it must be at least 16 characters")
	// ErrWrongPassphrase means the key envelope is intact but the
	// passphrase does not open it.
	ErrWrongPassphrase = errors.New("wrong passphrase: the key envelope did not open")
	// ErrCorruptEnvelope means the key envelope's bytes are damaged
	// (its checksum does not match, or it is cut short).
	ErrCorruptEnvelope = errors.New("key envelope is corrupted")
)

// PublicKeys is the half of the key material that stays on the server. It is
// enough to WRITE recovery points (seal data keys to Public, compute chunk
// IDs with ChunkKey) and reveals nothing that is written.
type PublicKeys struct {
	// Fingerprint is the hex of the first 16 bytes of SHA-256(Public). It
	// names the key pair in envelopes, objects and registrations.
	Fingerprint string
	// Public is the X25519 public key data keys are sealed to.
	Public [32]byte
	// ChunkKey keys the BLAKE3 hash that names chunks, so that who holds
	// only the stored objects cannot confirm a guess of a file's content.
	ChunkKey [32]byte
}

// Keys is the full key set: PublicKeys plus the X25519 private key that is
// needed to READ (restore, verify contents, change the passphrase). It exists
// in memory only; on disk it is always wrapped in an envelope.
type Keys struct {
	PublicKeys
	Private [32]byte
}

// GenerateKeys makes a fresh random key pair and chunk key.
func GenerateKeys() (*Keys, error) {
	k := &Keys{}
	if _, err := rand.Read(k.Private[:]); err != nil {
		return nil, fmt.Errorf("generate private key: %w", err)
	}
	if _, err := rand.Read(k.ChunkKey[:]); err != nil {
		return nil, fmt.Errorf("generate chunk key: %w", err)
	}
	pub, err := curve25519.X25519(k.Private[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("derive public key: %w", err)
	}
	copy(k.Public[:], pub)
	k.Fingerprint = fingerprint(k.Public)
	return k, nil
}

func fingerprint(pub [32]byte) string {
	f := fingerprintBytes(pub)
	return hex.EncodeToString(f[:])
}

// ValidatePassphrase checks the reference product's passphrase rule: at
// least MinPassphraseLen characters, counted as Unicode code points of its
// NFC form (the form that is used, see WrapKeys).
func ValidatePassphrase(p []byte) error {
	if n := utf8.RuneCount(norm.NFC.Bytes(p)); n < MinPassphraseLen {
		return fmt.Errorf("%w (it has %d)", ErrPassphraseTooShort, n)
	}
	return nil
}

// passphraseAlphabet is base32 in lower case: typeable, unambiguous enough
// when printed, and 5 bits per character.
var passphraseEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// GeneratePassphrase returns a random passphrase of 8 groups of 5 lowercase
// base32 characters joined by hyphens (200 bits of entropy), for example
// "k3v7q-...". It is long and typeable; nothing stores it.
func GeneratePassphrase() (string, error) {
	var b [25]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate passphrase: %w", err)
	}
	s := passphraseEncoding.EncodeToString(b[:])
	groups := make([]string, 0, len(s)/5)
	for i := 0; i < len(s); i += 5 {
		groups = append(groups, s[i:i+5])
	}
	return strings.Join(groups, "-"), nil
}

// KDFParams are argon2id parameters; they are stored in each envelope so
// they can be raised later without breaking old envelopes.
type KDFParams struct {
	Time      uint32 // passes
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDF are the argon2id parameters new envelopes get: 6 passes over
// 128 MiB with 4 lanes. One unwrap in a fresh process measured 1.0-1.15 s
// on the project's 2-core machines (0.87 s when the memory is already
// mapped); RFC 9106's second profile (t=3, m=64 MiB) took only 0.34 s.
var DefaultKDF = KDFParams{Time: 6, MemoryKiB: 128 * 1024, Threads: 4}

// Bounds on parameters read from an envelope, so a damaged or hostile
// envelope cannot make unwrapping allocate without limit or spin forever.
const (
	maxKDFTime      = 1000
	maxKDFMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

var (
	testKDFMu sync.Mutex
	testKDF   *KDFParams
)

// SetKDFForTesting makes WrapKeys use p instead of DefaultKDF until the
// returned restore function is called. It exists only so tests do not spend
// a second and 128 MiB per envelope; production code must never call it.
// Envelopes written meanwhile store p, so they still open afterwards.
func SetKDFForTesting(p KDFParams) (restore func()) {
	testKDFMu.Lock()
	old := testKDF
	testKDF = &p
	testKDFMu.Unlock()
	return func() {
		testKDFMu.Lock()
		testKDF = old
		testKDFMu.Unlock()
	}
}

func wrapKDF() KDFParams {
	testKDFMu.Lock()
	defer testKDFMu.Unlock()
	if testKDF != nil {
		return *testKDF
	}
	return DefaultKDF
}

func (p KDFParams) check() error {
	if p.Time < 1 || p.Time > maxKDFTime {
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, maxKDFTime)
	}
	if p.Threads < 1 {
		return fmt.Errorf("argon2id threads must be at least 1")
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	return nil
}

// Envelope layout (format 1), see docs/FORMAT.md "Key envelope".
const (
	envKDFArgon2id = 1

	envOffKDF     = prefixLen         // 1 byte algorithm
	envOffTime    = envOffKDF + 1     // u32
	envOffMemory  = envOffTime + 4    // u32
	envOffThreads = envOffMemory + 4  // u8
	envOffSalt    = envOffThreads + 1 // 32
	envOffPublic  = envOffSalt + 32   // 32
	envOffSealed  = envOffPublic + 32 // nonce | Private | ChunkKey | tag
	envOffSum     = envOffSealed + 24 + 64 + 16
	envelopeLen   = envOffSum + sha256.Size
	envSaltLen    = 32
	envSecretsLen = 64
)

// WrapKeys seals the private half of k (Private and ChunkKey) under a key
// derived from passphrase with argon2id (DefaultKDF, or the parameters set
// by SetKDFForTesting). The envelope also carries, in the clear but
// authenticated, the KDF parameters, the salt and the public key. The
// passphrase must pass ValidatePassphrase.
func WrapKeys(k *Keys, passphrase []byte) ([]byte, error) {
	return WrapKeysWithParams(k, passphrase, wrapKDF())
}

// WrapKeysWithParams is WrapKeys with explicit argon2id parameters.
func WrapKeysWithParams(k *Keys, passphrase []byte, p KDFParams) ([]byte, error) {
	if err := ValidatePassphrase(passphrase); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("wrap keys: %w", err)
	}
	// NFC: "é" typed as one code point or as e + U+0301 (macOS file
	// names, some input methods) is the same passphrase.
	return wrapKeys(k, norm.NFC.Bytes(passphrase), p)
}

// wrapKeys seals k under the KDF of exactly these passphrase bytes.
func wrapKeys(k *Keys, passphrase []byte, p KDFParams) ([]byte, error) {
	env := make([]byte, envOffSealed, envelopeLen)
	copy(env, objectPrefix(kindEnvelope, CurrentFormat))
	env[envOffKDF] = envKDFArgon2id
	binary.BigEndian.PutUint32(env[envOffTime:], p.Time)
	binary.BigEndian.PutUint32(env[envOffMemory:], p.MemoryKiB)
	env[envOffThreads] = p.Threads
	if _, err := rand.Read(env[envOffSalt : envOffSalt+envSaltLen]); err != nil {
		return nil, fmt.Errorf("wrap keys: salt: %w", err)
	}
	copy(env[envOffPublic:], k.Public[:])
	kek := argon2.IDKey(passphrase, env[envOffSalt:envOffSalt+envSaltLen], p.Time, p.MemoryKiB, p.Threads, 32)
	secrets := make([]byte, 0, envSecretsLen)
	secrets = append(secrets, k.Private[:]...)
	secrets = append(secrets, k.ChunkKey[:]...)
	env, err := sealAEADTo(env, kek, env[:envOffSealed], secrets)
	if err != nil {
		return nil, fmt.Errorf("wrap keys: %w", err)
	}
	sum := sha256.Sum256(env)
	return append(env, sum[:]...), nil
}

// parseEnvelope checks an envelope's prefix, length, checksum and KDF id.
func parseEnvelope(env []byte) error {
	if len(env) >= prefixLen {
		if _, err := checkPrefix(env, kindEnvelope); err != nil {
			return err
		}
	}
	if len(env) != envelopeLen {
		return fmt.Errorf("%w: %d bytes, want %d", ErrCorruptEnvelope, len(env), envelopeLen)
	}
	sum := sha256.Sum256(env[:envOffSum])
	if subtle.ConstantTimeCompare(sum[:], env[envOffSum:]) != 1 {
		return fmt.Errorf("%w: checksum mismatch", ErrCorruptEnvelope)
	}
	if env[envOffKDF] != envKDFArgon2id {
		return fmt.Errorf("key envelope: %w: unknown KDF %d", ErrUnsupportedFormat, env[envOffKDF])
	}
	return nil
}

// EnvelopeKDF returns the argon2id parameters stored in an envelope.
func EnvelopeKDF(env []byte) (KDFParams, error) {
	if err := parseEnvelope(env); err != nil {
		return KDFParams{}, err
	}
	return KDFParams{
		Time:      binary.BigEndian.Uint32(env[envOffTime:]),
		MemoryKiB: binary.BigEndian.Uint32(env[envOffMemory:]),
		Threads:   env[envOffThreads],
	}, nil
}

// UnwrapKeys opens an envelope made by WrapKeys. A damaged envelope gives an
// error wrapping ErrCorruptEnvelope; an intact one that the passphrase does
// not open gives ErrWrongPassphrase. Unwrapping costs what the stored KDF
// parameters say (about a second with DefaultKDF).
func UnwrapKeys(envelope, passphrase []byte) (*Keys, error) {
	p, err := EnvelopeKDF(envelope)
	if err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptEnvelope, err)
	}
	var secrets []byte
	for _, cand := range passphraseForms(passphrase) {
		kek := argon2.IDKey(cand, envelope[envOffSalt:envOffSalt+envSaltLen], p.Time, p.MemoryKiB, p.Threads, 32)
		if secrets, err = openAEAD(kek, envelope[:envOffSealed], envelope[envOffSealed:envOffSum]); err == nil {
			break
		}
	}
	if secrets == nil {
		return nil, ErrWrongPassphrase
	}
	k := &Keys{}
	copy(k.Private[:], secrets[:32])
	copy(k.ChunkKey[:], secrets[32:64])
	copy(k.Public[:], envelope[envOffPublic:envOffPublic+32])
	pub, err := curve25519.X25519(k.Private[:], curve25519.Basepoint)
	if err != nil || subtle.ConstantTimeCompare(pub, k.Public[:]) != 1 {
		return nil, fmt.Errorf("%w: private key does not match the public key", ErrCorruptEnvelope)
	}
	k.Fingerprint = fingerprint(k.Public)
	return k, nil
}

// passphraseForms lists the byte strings a passphrase may have been
// wrapped with: its NFC form (every envelope since NFC was introduced),
// then, when they differ, the bytes as given and the NFD form (envelopes
// wrapped before, from a passphrase typed in either form). Only a
// passphrase whose forms differ costs more than one KDF run.
func passphraseForms(p []byte) [][]byte {
	forms := [][]byte{norm.NFC.Bytes(p)}
	for _, f := range [][]byte{p, norm.NFD.Bytes(p)} {
		dup := false
		for _, g := range forms {
			dup = dup || bytes.Equal(f, g)
		}
		if !dup {
			forms = append(forms, f)
		}
	}
	return forms
}

// EnvelopePublicKey returns the X25519 public key stored in the clear in an
// envelope (no passphrase needed). The chunk key is sealed, so this is not a
// full PublicKeys.
func EnvelopePublicKey(envelope []byte) ([32]byte, error) {
	var pub [32]byte
	if err := parseEnvelope(envelope); err != nil {
		return pub, err
	}
	copy(pub[:], envelope[envOffPublic:envOffPublic+32])
	return pub, nil
}

// EnvelopeFingerprint returns the fingerprint of the key pair in an
// envelope; it needs no passphrase.
func EnvelopeFingerprint(envelope []byte) (string, error) {
	pub, err := EnvelopePublicKey(envelope)
	if err != nil {
		return "", err
	}
	return fingerprint(pub), nil
}

// publicKeysLen is the length of PublicKeys.Marshal's output.
const publicKeysLen = prefixLen + 32 + 32

// Marshal encodes the public keys (70 bytes: prefix "TPLS" 'U' version,
// X25519 public key, chunk key). The fingerprint is recomputed on parse.
// The chunk key is secret from the vault: keep this on the server (0600).
func (p PublicKeys) Marshal() []byte {
	b := make([]byte, 0, publicKeysLen)
	b = append(b, objectPrefix(kindPublicKeys, CurrentFormat)...)
	b = append(b, p.Public[:]...)
	return append(b, p.ChunkKey[:]...)
}

// ParsePublicKeys decodes Marshal's output.
func ParsePublicKeys(b []byte) (PublicKeys, error) {
	var p PublicKeys
	if _, err := checkPrefix(b, kindPublicKeys); err != nil {
		return p, fmt.Errorf("parse public keys: %w", err)
	}
	if len(b) != publicKeysLen {
		return p, fmt.Errorf("parse public keys: %d bytes, want %d", len(b), publicKeysLen)
	}
	copy(p.Public[:], b[prefixLen:])
	copy(p.ChunkKey[:], b[prefixLen+32:])
	p.Fingerprint = fingerprint(p.Public)
	return p, nil
}
