package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// keysScenario is a registered server (LRS file vault) with one local point.
type keysScenario struct {
	s        *session
	dir      string // work folder of registered()
	store    string
	vaultDir string // the vault's folder under the account
	passFile string
	src      string
	point    archive.ID
}

func newKeysScenario(t *testing.T) *keysScenario {
	t.Helper()
	s := newSession(t)
	const pass = "the-keys-test-passphrase"
	_, account, creds := fileVault(t, s, "keys")
	dir := t.TempDir()
	k := &keysScenario{s: s, dir: dir, store: filepath.Join(dir, "store"), vaultDir: filepath.Join(account, "vaults", "keys"),
		passFile: writeFile(t, filepath.Join(dir, "pass"), pass), src: filepath.Join(dir, "src")}
	s.ok("register", "--credentials", creds, "--passphrase-file", k.passFile, "--store", k.store, "--server", "host1")
	writeTree(t, k.src, map[string]string{"a.txt": "alpha", "b.txt": strings.Repeat("beta ", 3000)})
	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(s.ok("--json", "backup", k.src)), &sum); err != nil {
		t.Fatal(err)
	}
	k.point = sum.Point
	return k
}

// localPoints lists the points in the store (no key needed).
func (k *keysScenario) localPoints(t *testing.T) []archive.ID {
	t.Helper()
	b, err := storage.Open(context.Background(), fileURL(filepath.Join(k.store, "objects")), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pts, err := archive.ListPoints(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	var ids []archive.ID
	for _, p := range pts {
		ids = append(ids, p.ID)
	}
	return ids
}

// vaultPointObjects counts the point objects in the vault.
func (k *keysScenario) vaultPointObjects(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(k.vaultDir, "points"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

// checkUntouched fails unless the store still holds exactly its first
// point and the vault holds none.
func (k *keysScenario) checkUntouched(t *testing.T) {
	t.Helper()
	if got := k.localPoints(t); len(got) != 1 || got[0] != k.point {
		t.Errorf("local points %v after refused commands, want only %s", got, k.point)
	}
	if n := k.vaultPointObjects(t); n != 0 {
		t.Errorf("%d points reached the vault", n)
	}
}

// TestCorruptPublicKeysRefused: a damaged public-keys file (one bit of the
// public key, one bit of the chunk key, or the file of another store) must
// stop backup and offload before anything is sealed to it or deleted, and
// verify must report it, with or without the passphrase.
func TestCorruptPublicKeysRefused(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(t *testing.T, b []byte) []byte
	}{
		{"public-key-bit", func(t *testing.T, b []byte) []byte { b[6+5] ^= 0x10; return b }},
		{"chunk-key-bit", func(t *testing.T, b []byte) []byte { b[6+32+7] ^= 0x01; return b }},
		{"other-store", func(t *testing.T, b []byte) []byte {
			other, err := archive.GenerateKeys()
			if err != nil {
				t.Fatal(err)
			}
			return other.PublicKeys.Marshal()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newKeysScenario(t)
			pk := filepath.Join(k.store, "public-keys")
			b, err := os.ReadFile(pk)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pk, c.corrupt(t, b), 0o600); err != nil {
				t.Fatal(err)
			}
			const want = "public-keys"
			k.s.fails(exitError, want, "backup", k.src)
			k.s.fails(exitError, want, "offload", "--keep-within", "0s", "--keep-last", "0")
			k.checkUntouched(t)
			errOut := k.s.fails(exitError, want, "verify", "--read-data")
			if !strings.Contains(errOut, "problem:") {
				t.Errorf("keyless verify did not report the key as a problem: %s", errOut)
			}
			k.s.fails(exitError, want, "verify", "--read-data", "--passphrase-file", k.passFile)
			k.checkUntouched(t)

			// The passphrase repairs the store; then everything works again
			// and the offloaded point restores from the vault.
			k.s.fails(exitError, "passphrase", "configure", "--repair-keys")
			k.s.ok("configure", "--repair-keys", "--passphrase-file", k.passFile)
			k.s.ok("verify", "--read-data", "--passphrase-file", k.passFile)
			k.s.ok("backup", k.src)
			k.s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
			if got := k.localPoints(t); len(got) != 0 {
				t.Errorf("points %v still local after offload", got)
			}
			target := filepath.Join(t.TempDir(), "r")
			k.s.ok("restore", k.point.String(), "--target", target, "--passphrase-file", k.passFile)
			compareDirs(t, k.src, target)
		})
	}
}

// TestOffloadRefusesWithoutVaultEnvelope: points sealed to a key whose
// envelope is not in the vault could never be read back from it, so offload
// refuses and keeps the local copy.
func TestOffloadRefusesWithoutVaultEnvelope(t *testing.T) {
	k := newKeysScenario(t)
	if err := os.RemoveAll(filepath.Join(k.vaultDir, "keys")); err != nil {
		t.Fatal(err)
	}
	errOut := k.s.fails(exitError, "no key envelope", "offload", "--keep-within", "0s", "--keep-last", "0")
	if !strings.Contains(errOut, "unrecoverable") {
		t.Errorf("offload error does not say why: %s", errOut)
	}
	k.checkUntouched(t)
	k.s.ok("configure", "--repair-keys", "--passphrase-file", k.passFile)
	k.s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	target := filepath.Join(t.TempDir(), "r")
	k.s.ok("restore", k.point.String(), "--target", target, "--passphrase-file", k.passFile)
	compareDirs(t, k.src, target)
}

// TestRepairKeysReplacesDamagedStoreEnvelope: with the store's envelope
// damaged too, the vault's envelope gives the keys and replaces it.
func TestRepairKeysReplacesDamagedStoreEnvelope(t *testing.T) {
	k := newKeysScenario(t)
	for _, f := range []string{"public-keys", "key-envelope"} {
		p := filepath.Join(k.store, f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x02
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	errOut := k.s.fails(exitError, "key-envelope", "verify")
	if !strings.Contains(errOut, "public-keys") {
		t.Errorf("verify did not name public-keys: %s", errOut)
	}
	out := k.s.ok("configure", "--repair-keys", "--passphrase-file", k.passFile)
	if !strings.Contains(out, "replaced by the vault's") {
		t.Errorf("repair output: %s", out)
	}
	k.s.ok("verify", "--read-data", "--passphrase-file", k.passFile)
	k.s.ok("backup", k.src)
}

// TestConfigOfAnotherStoreRefused: a configuration whose 'store:' names
// another server's store (its key is not the registered one) is refused by
// every command that opens the store, naming both keys.
func TestConfigOfAnotherStoreRefused(t *testing.T) {
	a, b := newKeysScenario(t), newKeysScenario(t)
	cfg, err := loadConfig(a.s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = b.store
	if err := saveConfig(a.s.config, cfg); err != nil {
		t.Fatal(err)
	}
	bcfg, err := loadConfig(b.s.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"backup", a.src},
		{"offload", "--keep-within", "0s", "--keep-last", "0"},
		{"verify"},
		{"points"},
		{"restore", b.point.String(), "--target", t.TempDir(), "--passphrase-file", b.passFile},
	} {
		errOut := a.s.fails(exitError, cfg.Vault.KeyFingerprint, args...)
		if !strings.Contains(errOut, bcfg.Vault.KeyFingerprint) || !strings.Contains(errOut, "store:") {
			t.Errorf("%s: error does not name both keys and the fix: %s", args[0], errOut)
		}
	}
	b.checkUntouched(t)
}
