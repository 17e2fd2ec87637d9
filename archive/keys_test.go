package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// cheapKDF keeps envelope tests fast; production parameters are checked by
// TestDefaultKDFCost.
var cheapKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func mustKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateKeys(t *testing.T) {
	a, b := mustKeys(t), mustKeys(t)
	if a.Public == b.Public || a.Private == b.Private || a.ChunkKey == b.ChunkKey {
		t.Fatal("two generated key sets share material")
	}
	if len(a.Fingerprint) != 32 {
		t.Errorf("fingerprint %q has %d hex digits, want 32", a.Fingerprint, len(a.Fingerprint))
	}
	if a.Fingerprint == b.Fingerprint {
		t.Error("two key sets have the same fingerprint")
	}
}

func TestValidatePassphrase(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    string
		ok   bool
	}{
		{"15 ascii", strings.Repeat("a", 15), false},
		{"16 ascii", strings.Repeat("a", 16), true},
		{"15 runes of 2 bytes", strings.Repeat("é", 15), false},
		{"16 runes of 2 bytes", strings.Repeat("é", 16), true},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePassphrase([]byte(tc.p))
			if tc.ok && err != nil {
				t.Fatalf("ValidatePassphrase(%q) = %v, want nil", tc.p, err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrPassphraseTooShort) {
					t.Fatalf("ValidatePassphrase(%q) = %v, want ErrPassphraseTooShort", tc.p, err)
				}
				if !strings.Contains(err.Error(), "at least 16 characters") {
					t.Errorf("error %q does not state the rule", err)
				}
			}
		})
	}
}

func TestGeneratePassphrase(t *testing.T) {
	a, err := GeneratePassphrase()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePassphrase()
	if a == b {
		t.Fatal("two generated passphrases are equal")
	}
	if utf8.RuneCountInString(a) < 32 {
		t.Errorf("passphrase %q is shorter than 32 characters", a)
	}
	if err := ValidatePassphrase([]byte(a)); err != nil {
		t.Errorf("generated passphrase fails the rule: %v", err)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7' || r == '-') {
			t.Errorf("passphrase %q has untypeable character %q", a, r)
		}
	}
}

func TestWrapUnwrapRoundTrip(t *testing.T) {
	defer SetKDFForTesting(cheapKDF)()
	k := mustKeys(t)
	pass := []byte("correct horse battery staple")
	env, err := WrapKeys(k, pass)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapKeys(env, pass)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *k {
		t.Fatalf("UnwrapKeys gave %+v, want %+v", got, k)
	}
	fp, err := EnvelopeFingerprint(env)
	if err != nil {
		t.Fatal(err)
	}
	if fp != k.Fingerprint {
		t.Errorf("EnvelopeFingerprint = %s, want %s", fp, k.Fingerprint)
	}
	// The chunk key must not be readable without the passphrase.
	if bytes.Contains(env, k.ChunkKey[:]) || bytes.Contains(env, k.Private[:]) {
		t.Error("envelope holds a secret in the clear")
	}
	// Two wraps of the same keys differ (fresh salt and nonce).
	env2, _ := WrapKeys(k, pass)
	if bytes.Equal(env, env2) {
		t.Error("two envelopes of the same keys are identical")
	}
}

func TestUnwrapWrongPassphrase(t *testing.T) {
	defer SetKDFForTesting(cheapKDF)()
	k := mustKeys(t)
	env, err := WrapKeys(k, []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = UnwrapKeys(env, []byte("correct horse battery stapl3"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("UnwrapKeys with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	if err.Error() != "wrong passphrase: the key envelope did not open" {
		t.Errorf("error text %q", err)
	}
}

func TestWrapRefusesShortPassphrase(t *testing.T) {
	defer SetKDFForTesting(cheapKDF)()
	k := mustKeys(t)
	if _, err := WrapKeys(k, []byte(strings.Repeat("x", 15))); !errors.Is(err, ErrPassphraseTooShort) {
		t.Fatalf("WrapKeys with 15 characters = %v, want ErrPassphraseTooShort", err)
	}
	if _, err := WrapKeys(k, []byte(strings.Repeat("x", 16))); err != nil {
		t.Fatalf("WrapKeys with 16 characters = %v", err)
	}
}

func TestUnwrapTamperedEnvelope(t *testing.T) {
	defer SetKDFForTesting(cheapKDF)()
	k := mustKeys(t)
	pass := []byte("correct horse battery staple")
	env, err := WrapKeys(k, pass)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		bad := bytes.Clone(env)
		bad[i] ^= 0x01
		got, err := UnwrapKeys(bad, pass)
		if err == nil {
			t.Fatalf("flipping byte %d: UnwrapKeys succeeded with %+v", i, got)
		}
		if i >= prefixLen && i < len(env) && !errors.Is(err, ErrCorruptEnvelope) {
			t.Fatalf("flipping byte %d: error %v, want ErrCorruptEnvelope", i, err)
		}
	}
	if _, err := UnwrapKeys(env[:len(env)-1], pass); !errors.Is(err, ErrCorruptEnvelope) {
		t.Errorf("truncated envelope: %v, want ErrCorruptEnvelope", err)
	}
	bad := bytes.Clone(env)
	bad[5] = 9
	if _, err := UnwrapKeys(bad, pass); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("version 9 envelope: %v, want ErrUnsupportedFormat", err)
	}
}

func TestEnvelopeStoresParams(t *testing.T) {
	p := KDFParams{Time: 2, MemoryKiB: 256, Threads: 2}
	defer SetKDFForTesting(p)()
	k := mustKeys(t)
	env, err := WrapKeys(k, []byte("sixteen chars ok"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EnvelopeKDF(env)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("EnvelopeKDF = %+v, want %+v", got, p)
	}
	// Opening needs no global setting: the stored parameters are used.
	restore := SetKDFForTesting(cheapKDF)
	defer restore()
	if _, err := UnwrapKeys(env, []byte("sixteen chars ok")); err != nil {
		t.Fatalf("UnwrapKeys under other test params: %v", err)
	}
}

// TestDefaultKDFCost pins the production cost: at least 64 MiB (the rule);
// the time goal (~1 s) is checked by BenchmarkUnwrapDefault, not here.
func TestDefaultKDFCost(t *testing.T) {
	if DefaultKDF.MemoryKiB < 64*1024 {
		t.Errorf("DefaultKDF.MemoryKiB = %d, want >= %d", DefaultKDF.MemoryKiB, 64*1024)
	}
	if DefaultKDF.Time < 3 || DefaultKDF.Threads < 1 {
		t.Errorf("DefaultKDF = %+v is too cheap", DefaultKDF)
	}
	restore := SetKDFForTesting(cheapKDF)
	if wrapKDF() != cheapKDF {
		t.Error("SetKDFForTesting did not take effect")
	}
	restore()
	if wrapKDF() != DefaultKDF {
		t.Errorf("after restore WrapKeys would use %+v, want DefaultKDF", wrapKDF())
	}
}

func TestPublicKeysMarshal(t *testing.T) {
	k := mustKeys(t)
	b := k.PublicKeys.Marshal()
	got, err := ParsePublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != k.PublicKeys {
		t.Fatalf("ParsePublicKeys = %+v, want %+v", got, k.PublicKeys)
	}
	if _, err := ParsePublicKeys(b[:len(b)-1]); err == nil {
		t.Error("truncated public keys parsed")
	}
	if _, err := ParsePublicKeys([]byte("garbage garbage garbage")); err == nil {
		t.Error("garbage parsed as public keys")
	}
}

// BenchmarkUnwrapDefault measures one unwrap with the production KDF
// (goal: about one second).
func BenchmarkUnwrapDefault(b *testing.B) {
	k := mustKeys(b)
	pass := []byte("benchmark passphrase")
	env, err := WrapKeysWithParams(k, pass, DefaultKDF)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := UnwrapKeys(env, pass); err != nil {
			b.Fatal(err)
		}
	}
}

// A passphrase is the same in NFC and NFD: new envelopes use its NFC form,
// and envelopes wrapped from either form's raw bytes (before NFC was
// applied) still open with either form.
func TestPassphraseUnicodeForms(t *testing.T) {
	defer SetKDFForTesting(KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})()
	nfc := "p\u00e4ssphrase caf\u00e9 na\u00efve"    // precomposed
	nfd := "pa\u0308ssphrase cafe\u0301 nai\u0308ve" // decomposed
	if nfc == nfd {
		t.Fatal("test strings are equal")
	}
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	envNew, err := WrapKeys(k, []byte(nfd))
	if err != nil {
		t.Fatal(err)
	}
	envOldNFD, err := wrapKeys(k, []byte(nfd), wrapKDF())
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string][]byte{"new envelope": envNew, "envelope of raw NFD bytes": envOldNFD} {
		for _, p := range []string{nfc, nfd} {
			got, err := UnwrapKeys(env, []byte(p))
			if err != nil || got.Private != k.Private {
				t.Errorf("%s opened with %+q: %v", name, p, err)
			}
		}
		if _, err := UnwrapKeys(env, []byte(nfc+"x")); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s opened with a wrong passphrase: %v", name, err)
		}
	}
	// Characters are counted in NFC: 15 precomposed é written decomposed
	// are still 15 characters.
	if err := ValidatePassphrase([]byte(strings.Repeat("e\u0301", 15))); !errors.Is(err, ErrPassphraseTooShort) {
		t.Errorf("15 decomposed é: %v, want too short", err)
	}
}
