package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// registered makes a file vault and registers a server to it with
// passphrase pass; it returns the work folder.
func registered(t *testing.T, s *session, pass string) string {
	t.Helper()
	_, _, creds := fileVault(t, s, "conf")
	dir := t.TempDir()
	s.ok("register", "--credentials", creds, "--passphrase-file", writeFile(t, filepath.Join(dir, "pass"), pass),
		"--store", filepath.Join(dir, "store"), "--server", "host1")
	return dir
}

func TestConfigureSettings(t *testing.T) {
	s := newSession(t)
	dir := registered(t, s, "the-old-passphrase")
	s.fails(exitUsage, "nothing to change", "configure")
	s.fails(exitUsage, "work=", "configure", "--throttle", "sometimes fast")
	s.fails(exitUsage, "invalid --proxy", "configure", "--proxy", "ftp://proxy")

	staging := filepath.Join(dir, "new-staging")
	spec := "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"
	s.ok("configure", "--staging", staging, "--throttle", spec, "--proxy", "http://proxy.example:3128")
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Staging != staging || cfg.Throttle != spec || cfg.Proxy != "http://proxy.example:3128" || cfg.Vault.Name != "conf" {
		t.Errorf("config after configure: %+v", cfg)
	}
	if fi, err := os.Stat(staging); err != nil || !fi.IsDir() {
		t.Errorf("staging folder not created: %v", err)
	}
	if m := fileMode(t, s.config); m != 0o600 {
		t.Errorf("config mode %o after configure, want 600", m)
	}
	s.ok("configure", "--throttle", "", "--proxy", "")
	if cfg, _ = loadConfig(s.config); cfg.Throttle != "" || cfg.Proxy != "" || cfg.Staging != staging {
		t.Errorf("removing throttle and proxy: %+v", cfg)
	}

	s2 := newSession(t)
	s2.fails(exitError, "register", "configure", "--staging", staging)
}

func TestConfigureChangePassphrase(t *testing.T) {
	s := newSession(t)
	const oldPass, newPass = "the-old-passphrase", "the-brand-new-passphrase"
	dir := registered(t, s, oldPass)
	oldFile := filepath.Join(dir, "pass")
	newFile := writeFile(t, filepath.Join(dir, "new"), newPass+"\n")
	wrong := writeFile(t, filepath.Join(dir, "wrong"), "not-the-passphrase-at-all")
	short := writeFile(t, filepath.Join(dir, "short"), "only-15-chars!!")

	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	storeEnvBefore, err := loadStoreEnvelope(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}

	s.fails(exitError, "current passphrase is wrong", "configure", "--change-passphrase", "--passphrase-file", wrong, "--new-passphrase-file", newFile)
	s.fails(exitUsage, "at least 16 characters", "configure", "--change-passphrase", "--passphrase-file", oldFile, "--new-passphrase-file", short)
	s.fails(exitError, "a new passphrase is needed", "configure", "--change-passphrase", "--passphrase-file", oldFile)
	if env, _ := loadStoreEnvelope(context.Background(), cfg.Store); string(env) != string(storeEnvBefore) {
		t.Fatalf("refused passphrase changes changed the store envelope")
	}

	s.ok("configure", "--change-passphrase", "--passphrase-file", oldFile, "--new-passphrase-file", newFile)

	storeEnv, err := loadStoreEnvelope(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	v := mustOpenVault(t, cfg)
	vaultEnv, seq, err := v.LoadKeyEnvelope(context.Background(), cfg.Vault.KeyFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Errorf("vault envelope sequence %d, want 2", seq)
	}
	for where, env := range map[string][]byte{"store": storeEnv, "vault": vaultEnv} {
		if _, err := archive.UnwrapKeys(env, []byte(oldPass)); !errors.Is(err, archive.ErrWrongPassphrase) {
			t.Errorf("%s envelope: old passphrase gives %v, want ErrWrongPassphrase", where, err)
		}
		k, err := archive.UnwrapKeys(env, []byte(newPass))
		if err != nil || k.Fingerprint != cfg.Vault.KeyFingerprint {
			t.Errorf("%s envelope: new passphrase gives %v", where, err)
		}
	}
	// No older envelope is left in the vault to open with the old passphrase.
	var names []string
	if err := v.Primary().List(context.Background(), "keys/", func(i storage.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Errorf("vault key envelopes after the change: %v, want only the newest", names)
	}
	// The old passphrase file no longer works for a second change.
	s.fails(exitError, "current passphrase is wrong", "configure", "--change-passphrase", "--passphrase-file", oldFile, "--new-passphrase-file", newFile)
}

// TestSecretsNeverWritten walks create → credentials → register → configure
// (settings and passphrase) with a known passphrase and S3 secret key, then
// searches every file tapeless wrote and everything it printed: the
// passphrases appear nowhere, and the secret key only in the credentials
// file and the config, both mode 0600.
func TestSecretsNeverWritten(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		// A file vault ignores keys, so the second copy can be given keys of
		// its own here (MinIO's two test servers share one).
		t.Setenv(envSecondaryAccessKey, "AKIASECONDARYKEY")
		t.Setenv(envSecondarySecretKey, "secondary-secret-key-Lm4tR9")
		secretsWalkthrough(t, fileURL(filepath.Join(dir, "primary")), fileURL(filepath.Join(dir, "secondary")),
			"AKIAFILEVAULTKEY", "file-vault-secret-key-Zq8wP3", []string{filepath.Join(dir, "primary"), filepath.Join(dir, "secondary")})
	})
	t.Run("minio", func(t *testing.T) {
		purl, po := storagetest.MinIO(t, "primary")
		surl, _ := storagetest.MinIO(t, "secondary")
		t.Setenv(envSecondaryAccessKey, "")
		t.Setenv(envSecondarySecretKey, "")
		secretsWalkthrough(t, purl, surl, po.AccessKey, po.SecretKey, nil)
	})
}

func secretsWalkthrough(t *testing.T, purl, surl, accessKey, secretKey string, vaultDirs []string) {
	const pass1, pass2 = "first-Passphrase-7d1f9c2e", "second-Passphrase-0b4a6e8d"
	s := newSession(t)
	work := t.TempDir()
	t.Chdir(work)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	s.ok("vault", "create", "secrets", "--url", purl, "--secondary-url", surl)
	s.ok("vault", "credentials", "secrets", "--url", purl, "--access-key", accessKey, "--secret-key", secretKey, "-o", "creds.VaultCredentials")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	secrets := t.TempDir() // passphrase files live outside the searched folders
	p1 := writeFile(t, filepath.Join(secrets, "p1"), pass1)
	p2 := writeFile(t, filepath.Join(secrets, "p2"), pass2)
	s.ok("register", "--credentials", "creds.VaultCredentials", "--passphrase-file", p1,
		"--store", filepath.Join(work, "store"), "--staging", filepath.Join(work, "staging"), "--server", "host1",
		"--throttle", "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited")
	s.ok("configure", "--proxy", "http://127.0.0.1:1")
	s.ok("configure", "--proxy", "", "--staging", filepath.Join(work, "staging2"))
	s.ok("configure", "--change-passphrase", "--passphrase-file", p1, "--new-passphrase-file", p2)
	s.ok("--json", "vault", "status")
	s.ok("vault", "status")

	allowed := map[string]bool{ // may hold the S3 secret, must be 0600
		filepath.Join(work, "creds.VaultCredentials"): true,
		s.config: true,
	}
	for p := range allowed {
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, m)
		}
	}
	if secretKey == "" {
		t.Fatal("no secret key to search for")
	}
	// The second copy's own secret, when the caller set one, is held to the
	// same rule.
	searchFor := []string{secretKey}
	if sec := os.Getenv(envSecondarySecretKey); sec != "" {
		searchFor = append(searchFor, sec)
	}
	// The search below must be able to see the secrets where they are allowed.
	for _, x := range searchFor {
		if !strings.Contains(string(mustRead(t, filepath.Join(work, "creds.VaultCredentials"))), x) ||
			!strings.Contains(string(mustRead(t, s.config)), x) {
			t.Fatalf("the credentials file and the config should hold the access keys (%d-character secret missing)", len(x))
		}
	}
	roots := append([]string{work, filepath.Dir(s.config)}, vaultDirs...)
	searched := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			searched++
			for _, p := range []string{pass1, pass2} {
				if strings.Contains(string(b), p) {
					t.Errorf("%s holds a passphrase", path)
				}
			}
			for _, x := range searchFor {
				if strings.Contains(string(b), x) && !allowed[path] {
					t.Errorf("%s holds an S3 secret key", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if searched < 5 {
		t.Errorf("searched only %d files; the walk-through wrote more", searched)
	}
	// The vault itself (any backend): every object of both copies.
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.SecretKey != secretKey {
		t.Errorf("config does not hold the access keys from the credentials file")
	}
	v := mustOpenVault(t, cfg)
	for _, c := range v.Copies() {
		n := 0
		err := c.List(context.Background(), "", func(i storage.Info) error {
			n++
			return c.Load(context.Background(), i.Name, 0, -1, func(r io.Reader) error {
				b, err := io.ReadAll(r)
				for _, x := range append([]string{pass1, pass2}, searchFor...) {
					if strings.Contains(string(b), x) {
						t.Errorf("vault object %s/%s holds a secret", c.Location(), i.Name)
					}
				}
				return err
			})
		})
		// config, credentials issue record, registration record, key envelope
		if err != nil || n < 4 {
			t.Errorf("%s: searched %d objects: %v", c.Location(), n, err)
		}
	}
	out := s.output.String()
	for _, x := range append([]string{pass1, pass2}, searchFor...) {
		if strings.Contains(out, x) {
			t.Errorf("tapeless printed a secret (%d chars)", len(x))
		}
	}
}

// TestChangePassphraseImmutableVault: on an object-lock vault the old
// envelope cannot be removed; the change still succeeds and says so.
func TestChangePassphraseImmutableVault(t *testing.T) {
	url, o := storagetest.MinIOLock(t, "primary")
	s := newSession(t)
	t.Setenv("AWS_ACCESS_KEY_ID", o.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", o.SecretKey)
	dir := t.TempDir()
	s.ok("vault", "create", "locked", "--url", url, "--replication", "LRS", "--immutable-days", "1")
	creds := filepath.Join(dir, "c.VaultCredentials")
	s.ok("vault", "credentials", "locked", "--url", url, "-o", creds)
	oldFile := writeFile(t, filepath.Join(dir, "old"), "old-passphrase-for-lock")
	newFile := writeFile(t, filepath.Join(dir, "new"), "new-passphrase-for-lock")
	s.ok("register", "--credentials", creds, "--passphrase-file", oldFile, "--store", filepath.Join(dir, "store"))
	code, _, errOut := s.run("configure", "--change-passphrase", "--passphrase-file", oldFile, "--new-passphrase-file", newFile)
	if code != exitOK || !strings.Contains(errOut, "could not be removed") || !strings.Contains(errOut, "old passphrase still opens") {
		t.Fatalf("change on a locked vault: exit %d, stderr %q", code, errOut)
	}
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	env, seq, err := mustOpenVault(t, cfg).LoadKeyEnvelope(context.Background(), cfg.Vault.KeyFingerprint)
	if err != nil || seq != 2 {
		t.Fatalf("newest vault envelope %d: %v", seq, err)
	}
	if _, err := archive.UnwrapKeys(env, []byte("new-passphrase-for-lock")); err != nil {
		t.Errorf("newest envelope does not open with the new passphrase: %v", err)
	}
	storeEnv, err := loadStoreEnvelope(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.UnwrapKeys(storeEnv, []byte("old-passphrase-for-lock")); !errors.Is(err, archive.ErrWrongPassphrase) {
		t.Errorf("store envelope still opens with the old passphrase: %v", err)
	}
}

// loadStoreEnvelope returns the key envelope kept in the store.
func loadStoreEnvelope(ctx context.Context, dir string) ([]byte, error) {
	s, err := archive.OpenStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Envelope(), nil
}
