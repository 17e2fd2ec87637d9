package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage/vault"
)

// fileVault creates an LRS vault in a fresh folder and issues a credentials
// file at the session clock; it returns the account URL, the vault folder
// and the credentials file.
func fileVault(t *testing.T, s *session, name string) (url, vaultDir, creds string) {
	t.Helper()
	dir := t.TempDir()
	vaultDir = filepath.Join(dir, "vault")
	url = fileURL(vaultDir)
	s.ok("vault", "create", name, "--url", url, "--replication", "LRS")
	creds = filepath.Join(dir, name+".VaultCredentials")
	s.ok("vault", "credentials", name, "--url", url, "-o", creds)
	return url, vaultDir, creds
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

func TestRegisterPassphraseLength(t *testing.T) {
	s := newSession(t)
	_, vaultDir, creds := fileVault(t, s, "len")
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	short := writeFile(t, filepath.Join(dir, "short"), strings.Repeat("x", 15)+"\n")
	s.fails(exitUsage, "at least 16 characters", "register", "--credentials", creds, "--passphrase-file", short, "--store", store)
	// Nothing was written anywhere.
	for _, p := range []string{store, filepath.Join(dir, "staging"), s.config,
		filepath.Join(vaultDir, "vaults", "len", "keys"), filepath.Join(vaultDir, "vaults", "len", "servers")} {
		if exists(p) {
			t.Errorf("a refused registration created %s", p)
		}
	}
	// 16 characters (counted as characters, not bytes) are enough.
	exact := writeFile(t, filepath.Join(dir, "exact"), strings.Repeat("é", 16)+"\n")
	s.ok("register", "--credentials", creds, "--passphrase-file", exact, "--store", store, "--server", "host1")
	for _, p := range []string{store, filepath.Join(dir, "staging"), filepath.Join(vaultDir, "vaults", "len", "keys")} {
		if !exists(p) {
			t.Errorf("registration did not create %s", p)
		}
	}
	if m := fileMode(t, s.config); m != 0o600 {
		t.Errorf("config mode %o, want 600", m)
	}
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault == nil || cfg.Vault.Name != "len" || cfg.Vault.KeyFingerprint == "" || cfg.Store != store || cfg.Server != "host1" {
		t.Errorf("config after register: %+v vault %+v", cfg, cfg.Vault)
	}
	// The registration record names server, time and key.
	v := mustOpenVault(t, cfg)
	regs, err := v.Registrations(context.Background())
	if err != nil || len(regs) != 1 || regs[0].Server != "host1" || regs[0].KeyFingerprint != cfg.Vault.KeyFingerprint || regs[0].RegisteredAt.IsZero() {
		t.Errorf("registrations %+v, %v", regs, err)
	}
	// The same config cannot register twice.
	s.fails(exitError, "already registered", "register", "--credentials", creds, "--passphrase-file", exact, "--store", filepath.Join(dir, "store2"))
}

func mustOpenVault(t *testing.T, cfg *config) *vault.Vault {
	t.Helper()
	v, err := openConfiguredVault(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func TestRegisterGeneratedPassphrase(t *testing.T) {
	s := newSession(t)
	_, _, creds := fileVault(t, s, "gen")
	dir := t.TempDir()
	passFile := filepath.Join(dir, "generated.passphrase")
	code, _, errOut := s.run("register", "--credentials", creds, "--generate-passphrase", passFile, "--store", filepath.Join(dir, "store"))
	if code != exitOK {
		t.Fatalf("register --generate-passphrase: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "cannot be recovered") || !strings.Contains(errOut, passFile) {
		t.Errorf("no loud warning about losing the passphrase: %q", errOut)
	}
	if m := fileMode(t, passFile); m != 0o600 {
		t.Errorf("generated passphrase file mode %o, want 600", m)
	}
	p, err := readPassphraseFile(passFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) < 32 || archive.ValidatePassphrase(p) != nil {
		t.Errorf("generated passphrase is %d characters, want a long one", len(p))
	}
	if strings.Contains(s.output.String(), string(p)) {
		t.Errorf("the generated passphrase was printed")
	}
	// It opens the key envelope in the vault.
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := mustOpenVault(t, cfg).LoadKeyEnvelope(context.Background(), cfg.Vault.KeyFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := archive.UnwrapKeys(env, p); err != nil || k.Fingerprint != cfg.Vault.KeyFingerprint {
		t.Errorf("generated passphrase does not open the vault envelope: %v", err)
	}

	// An existing file is never overwritten, and nothing is registered.
	s2 := newSession(t)
	_, _, creds2 := fileVault(t, s2, "gen2")
	before, _ := os.ReadFile(passFile)
	s2.fails(exitError, "does not overwrite", "register", "--credentials", creds2, "--generate-passphrase", passFile, "--store", filepath.Join(dir, "store2"))
	if after, _ := os.ReadFile(passFile); string(after) != string(before) {
		t.Errorf("existing passphrase file was changed")
	}
	if exists(filepath.Join(dir, "store2")) || exists(s2.config) {
		t.Errorf("refused registration wrote the store or config")
	}
}

func TestRegisterPassphraseSources(t *testing.T) {
	s := newSession(t)
	_, _, creds := fileVault(t, s, "src")
	dir := t.TempDir()
	// No flag, no environment, no terminal: an error (exit 1) saying how.
	s.fails(exitError, "--passphrase-file FILE, set TAPELESS_PASSPHRASE_FILE", "register", "--credentials", creds, "--store", filepath.Join(dir, "s0"))
	t.Setenv(envPassphraseFile, writeFile(t, filepath.Join(dir, "env-pass"), "passphrase-from-the-environment"))
	s.ok("register", "--credentials", creds, "--store", filepath.Join(dir, "store"))
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := mustOpenVault(t, cfg).LoadKeyEnvelope(context.Background(), cfg.Vault.KeyFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.UnwrapKeys(env, []byte("passphrase-from-the-environment")); err != nil {
		t.Errorf("TAPELESS_PASSPHRASE_FILE was not used: %v", err)
	}
	s.fails(exitUsage, "not both", "register", "--credentials", creds, "--passphrase-file", "a", "--generate-passphrase", "b")
	newSession(t).fails(exitError, "issue one with 'tapeless vault credentials", "register", "--credentials", filepath.Join(dir, "missing.VaultCredentials"), "--passphrase-file", "a")
}

func TestRegisterCredentialsErrors(t *testing.T) {
	s := newSession(t)
	issued := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	setClock(t, issued)
	url, _, creds := fileVault(t, s, "errs")
	dir := t.TempDir()
	pass := writeFile(t, filepath.Join(dir, "pass"), "sixteen-chars-ok")
	reg := func(creds string) []string {
		return []string{"register", "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(dir, "store")}
	}

	setClock(t, issued.Add(48*time.Hour+time.Second))
	errOut := s.fails(exitError, "Vault credentials file provided has expired", reg(creds)...)
	if !strings.Contains(errOut, "tapeless vault credentials errs --url "+url) {
		t.Errorf("expired error does not say how to get a new file: %s", errOut)
	}

	// One flipped byte.
	data, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x01
	flipped := writeFile(t, filepath.Join(dir, "flipped.VaultCredentials"), string(data))
	setClock(t, issued.Add(time.Hour))
	s.fails(exitError, "Invalid vault credentials provided", reg(flipped)...)

	// Two quick issues: the first is superseded.
	newer := filepath.Join(dir, "newer.VaultCredentials")
	s.ok("vault", "credentials", "errs", "--url", url, "-o", newer)
	s.fails(exitError, "Invalid vault credentials provided", reg(creds)...)

	// A file of vault A used on vault B: B's issue record does not match.
	_, _, credsB := fileVault(t, s, "errs-b")
	c, err := vault.ParseCredentials(mustRead(t, credsB))
	if err != nil {
		t.Fatal(err)
	}
	a, err := vault.ParseCredentials(mustRead(t, newer))
	if err != nil {
		t.Fatal(err)
	}
	c.Vault, c.PrimaryURL = a.Vault, a.PrimaryURL // B's serial and secret, A's vault
	forged := filepath.Join(dir, "forged.VaultCredentials")
	writeFile(t, forged, string(resealed(t, c)))
	s.fails(exitError, "Invalid vault credentials provided", reg(forged)...)

	if exists(filepath.Join(dir, "store")) || exists(s.config) {
		t.Errorf("refused registrations wrote the store or the config")
	}
	s.ok(reg(newer)...)
}

// TestRegisterLaterExpiryRefused: someone with the file and the vault's
// storage moves expires_at a year ahead and fixes the checksum. Register
// takes the window from the vault's issue record and refuses the file, and
// the vault holds no key to sign a file with.
func TestRegisterLaterExpiryRefused(t *testing.T) {
	s := newSession(t)
	issued := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	setClock(t, issued)
	_, vaultDir, creds := fileVault(t, s, "later")
	entries, err := os.ReadDir(filepath.Join(vaultDir, "vaults", "later", "credentials"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "00000000000000000001.json" {
		t.Errorf("vault credentials/ holds %v (%v), want only the issue record", entries, err)
	}
	dir := t.TempDir()
	pass := writeFile(t, filepath.Join(dir, "pass"), "sixteen-chars-ok")
	c, err := vault.ParseCredentials(mustRead(t, creds))
	if err != nil {
		t.Fatal(err)
	}
	c.ExpiresAt = c.ExpiresAt.Add(365 * 24 * time.Hour)
	forged := writeFile(t, filepath.Join(dir, "later.VaultCredentials"), string(resealed(t, c)))
	reg := []string{"register", "--credentials", forged, "--passphrase-file", pass, "--store", filepath.Join(dir, "store")}
	for _, at := range []time.Duration{time.Hour, 72 * time.Hour} {
		setClock(t, issued.Add(at))
		s.fails(exitError, "Invalid vault credentials provided", reg...)
	}
	if exists(filepath.Join(dir, "store")) || exists(s.config) {
		t.Errorf("refused registration wrote the store or the config")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resealed encodes c with a fresh checksum, as anyone could (docs/VAULT.md:
// the checksum is SHA-256 of the compact JSON without the checksum).
func resealed(t *testing.T, c *vault.Credentials) []byte {
	t.Helper()
	cp := *c
	cp.Checksum = ""
	content, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	c.Checksum = hex.EncodeToString(sum[:])
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVaultStatusCredentialValidity(t *testing.T) {
	s := newSession(t)
	issued := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	setClock(t, issued)
	_, _, creds := fileVault(t, s, "stat")
	dir := t.TempDir()
	s.ok("register", "--credentials", creds, "--passphrase-file", writeFile(t, filepath.Join(dir, "p"), "sixteen-chars-ok"),
		"--store", filepath.Join(dir, "store"), "--server", "host1")
	if out := s.ok("vault", "status"); !strings.Contains(out, "newest file valid until") || !strings.Contains(out, "host1 (this server)") {
		t.Errorf("vault status within 48 h:\n%s", out)
	}
	setClock(t, issued.Add(48*time.Hour+time.Second))
	if out := s.ok("vault", "status"); !strings.Contains(out, "newest file expired at") {
		t.Errorf("vault status after 48 h:\n%s", out)
	}
	var st vaultStatusJSON
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "status")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Credentials.Issued || st.Credentials.Valid || st.Credentials.ExpiresAt == nil ||
		!st.Credentials.ExpiresAt.Equal(issued.Add(48*time.Hour)) || st.Replication != "LRS" || st.ImmutableDays != 0 {
		t.Errorf("vault status --json after 48 h: %+v", st)
	}
}

// A second registration of the same server name to one vault (another
// config on the same host, say) is refused before anything is written:
// the vault would list two "this server" rows.
func TestRegisterSameServerTwiceRefused(t *testing.T) {
	s := newSession(t)
	_, vaultDir, creds := fileVault(t, s, "twice")
	dir := t.TempDir()
	pass := writeFile(t, filepath.Join(dir, "pass"), cliTestPassphrase+"\n")
	s.ok("register", "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(dir, "store1"), "--server", "web1")
	servers := filepath.Join(vaultDir, "vaults", "twice", "servers")
	before, _ := os.ReadDir(servers)
	other := filepath.Join(dir, "other.yaml")
	errOut := s.fails(exitError, `server "web1" is already registered to vault "twice"`,
		"register", "--config", other, "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(dir, "store2"), "--server", "WEB1")
	if !strings.Contains(errOut, "--server NAME") {
		t.Errorf("refusal does not say what to do: %s", errOut)
	}
	after, _ := os.ReadDir(servers)
	if len(after) != len(before) || exists(other) || exists(filepath.Join(dir, "store2")) {
		t.Errorf("the refused registration wrote something: %d→%d records, config %v, store %v", len(before), len(after), exists(other), exists(filepath.Join(dir, "store2")))
	}
	s.ok("register", "--config", other, "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(dir, "store2"), "--server", "web2")
	out := s.ok("vault", "status")
	if n := strings.Count(out, "(this server)"); n != 1 {
		t.Errorf("vault status shows %d 'this server' rows, want 1:\n%s", n, out)
	}
}
