package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
	"github.com/tapeless/tapeless/storage/vault"
)

// session runs tapeless command lines against one config file and keeps
// everything they printed, so tests can also search the output for
// secrets.
type session struct {
	t      *testing.T
	config string
	output bytes.Buffer // all stdout and stderr of every run
}

func newSession(t *testing.T) *session {
	t.Helper()
	// Cheap argon2id: the real parameters cost a second per wrap.
	t.Cleanup(archive.SetKDFForTesting(archive.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	dir := t.TempDir()
	t.Setenv("TAPELESS_CONFIG", filepath.Join(dir, "config", "config.yaml"))
	t.Setenv(envPassphraseFile, "")
	return &session{t: t, config: filepath.Join(dir, "config", "config.yaml")}
}

// run executes one command line with --config and returns the exit code,
// stdout and stderr.
func (s *session) run(args ...string) (int, string, string) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"--config", s.config}, args...)
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	s.output.Write(out.Bytes())
	s.output.Write(errOut.Bytes())
	return code, out.String(), errOut.String()
}

// ok runs a command line that must succeed and returns its stdout.
func (s *session) ok(args ...string) string {
	s.t.Helper()
	code, out, errOut := s.run(args...)
	if code != exitOK {
		s.t.Fatalf("tapeless %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command line that must exit with code and print want on
// stderr.
func (s *session) fails(code int, want string, args ...string) string {
	s.t.Helper()
	got, out, errOut := s.run(args...)
	if got != code || !strings.Contains(errOut, want) {
		s.t.Fatalf("tapeless %s: exit %d, stderr %q (stdout %q); want exit %d and %q", strings.Join(args, " "), got, errOut, out, code, want)
	}
	return errOut
}

// setClock makes the commands see time t.
func setClock(t *testing.T, at time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

func fileURL(dir string) string { return "file://" + filepath.ToSlash(dir) }

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestVaultCreateNameRulesCLI(t *testing.T) {
	s := newSession(t)
	url := fileURL(t.TempDir())
	for _, c := range []struct{ name, rule string }{
		{"a", "at least 2 characters"},
		{strings.Repeat("a", 51), "at most 50 characters"},
		{"9lives", "must start with a letter"},
		{"my_vault", "only letters, digits and hyphens"},
	} {
		s.fails(exitUsage, c.rule, "vault", "create", c.name, "--url", url, "--replication", "LRS")
	}
	s.ok("vault", "create", "ab", "--url", url, "--replication", "LRS")
	s.ok("vault", "create", "a"+strings.Repeat("-", 48)+"z", "--url", url, "--replication", "LRS")
}

func TestVaultCreateRulesCLI(t *testing.T) {
	s := newSession(t)
	dir := t.TempDir()
	url := fileURL(filepath.Join(dir, "primary"))
	s.fails(exitUsage, "--url is required", "vault", "create", "backups")
	errOut := s.fails(exitUsage, "--secondary-url URL", "vault", "create", "backups", "--url", url)
	if !strings.Contains(errOut, "--replication LRS") {
		t.Errorf("GRS refusal does not offer LRS: %s", errOut)
	}
	s.fails(exitUsage, "invalid replication", "vault", "create", "backups", "--url", url, "--replication", "ZRS")
	// A malformed URL is a usage error that shows the expected forms.
	s.fails(exitUsage, "file:///abs/path or s3://", "vault", "create", "backups", "--url", "file://relative/vault", "--replication", "LRS")
	s.fails(exitUsage, "--secondary-url", "vault", "create", "backups", "--url", url, "--secondary-url", "s3://host:9000/Bad_Bucket")
	s.fails(exitUsage, "--url", "vault", "list", "--url", "ftp://host/bucket")
	s.fails(exitError, "'tapeless vault list --url URL' shows the vaults", "vault", "credentials", "nosuch", "--url", url)
	s.fails(exitError, "a file URL cannot", "vault", "create", "backups", "--url", url, "--replication", "LRS", "--immutable-days", "7")

	out := s.ok("vault", "create", "backups", "--url", url, "--secondary-url", fileURL(filepath.Join(dir, "secondary")))
	if !strings.Contains(out, `Created vault "backups" (GRS)`) {
		t.Errorf("create output: %s", out)
	}
	for _, copyDir := range []string{"primary", "secondary"} {
		if _, err := os.Stat(filepath.Join(dir, copyDir, "vaults", "backups", "config", "00000000000000000001.json")); err != nil {
			t.Errorf("config object in the %s copy: %v", copyDir, err)
		}
	}
	s.fails(exitError, `vault "backups" already exists at `+url, "vault", "create", "backups", "--url", url, "--replication", "LRS")
	s.fails(exitError, `vault "backups" already exists at `+url, "vault", "create", "BACKUPS", "--url", url, "--replication", "LRS")

	var vl vaultListJSON
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "list", "--url", url)), &vl); err != nil {
		t.Fatal(err)
	}
	list := vl.Vaults
	if len(list) != 1 || list[0].Name != "backups" || list[0].Replication != "GRS" || list[0].SecondaryURL == "" {
		t.Errorf("vault list --json = %+v", list)
	}
	if out := s.ok("vault", "list", "--url", url); !strings.Contains(out, "backups") || !strings.Contains(out, "GRS") {
		t.Errorf("vault list: %s", out)
	}
}

func TestVaultSetReplicationCLI(t *testing.T) {
	s := newSession(t)
	dir := t.TempDir()
	url := fileURL(filepath.Join(dir, "primary"))
	s.ok("vault", "create", "repl", "--url", url, "--replication", "LRS")
	s.ok("vault", "set-replication", "repl", "GRS", "--url", url, "--secondary-url", fileURL(filepath.Join(dir, "secondary")))
	if out := s.ok("vault", "set-replication", "repl", "LRS", "--url", url); !strings.Contains(out, "now LRS") {
		t.Errorf("set-replication output: %s", out)
	}
	// An archived point freezes the setting.
	points := filepath.Join(dir, "primary", "vaults", "repl", "points")
	if err := os.MkdirAll(points, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(points, "p1"), "manifest")
	s.fails(exitError, "replication can no longer be changed", "vault", "set-replication", "repl", "GRS", "--url", url, "--secondary-url", fileURL(filepath.Join(dir, "secondary")))
}

func TestVaultCredentialsCLI(t *testing.T) {
	s := newSession(t)
	dir := t.TempDir()
	url := fileURL(filepath.Join(dir, "vault"))
	s.ok("vault", "create", "creds", "--url", url, "--replication", "LRS")
	t.Chdir(dir)
	issued := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	setClock(t, issued)
	out := s.ok("vault", "credentials", "creds", "--url", url)
	name := "creds_2026-11-26.VaultCredentials"
	if !strings.Contains(out, name) {
		t.Errorf("credentials output does not name %s: %s", name, out)
	}
	if m := fileMode(t, filepath.Join(dir, name)); m != 0o600 {
		t.Errorf("%s mode %o, want 600", name, m)
	}
	other := filepath.Join(dir, "other.VaultCredentials")
	s.ok("vault", "credentials", "creds", "--url", url, "-o", other)
	if m := fileMode(t, other); m != 0o600 {
		t.Errorf("-o file mode %o, want 600", m)
	}
	s.fails(exitError, "no vault", "vault", "credentials", "nosuch", "--url", url)
	s.fails(exitUsage, "go together", "vault", "credentials", "creds", "--url", url, "--access-key", "AK")
}

// TestVaultWalkthroughMinIO runs create (GRS over both MinIO servers) →
// credentials with keys → register → status through the CLI.
func TestVaultWalkthroughMinIO(t *testing.T) {
	purl, po := storagetest.MinIO(t, "primary")
	surl, _ := storagetest.MinIO(t, "secondary")
	s := newSession(t)
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	dir := t.TempDir()
	s.ok("vault", "create", "geo", "--url", purl, "--secondary-url", surl)
	credFile := filepath.Join(dir, "geo.VaultCredentials")
	s.ok("vault", "credentials", "geo", "--url", purl, "-o", credFile)
	// The server has no keys of its own: those in the credentials file must do.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	pass := writeFile(t, filepath.Join(dir, "pass"), "correct horse battery staple\n")
	s.ok("register", "--credentials", credFile, "--passphrase-file", pass,
		"--store", filepath.Join(dir, "store"), "--server", "minio-host")
	var st vaultStatusJSON
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Name != "geo" || st.Replication != "GRS" || len(st.Servers) != 1 || st.Servers[0].Server != "minio-host" ||
		!st.Credentials.Valid || st.SecondaryReachable == nil || !*st.SecondaryReachable {
		t.Errorf("vault status --json = %+v", st)
	}
	// A second credentials file makes the first one useless.
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	s.ok("vault", "credentials", "geo", "--url", purl, "-o", credFile+"2")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	s2 := newSession(t)
	s2.fails(exitError, vault.ErrCredentialsInvalid.Error(), "register", "--credentials", credFile,
		"--passphrase-file", pass, "--store", filepath.Join(dir, "store2"))
	s2.ok("register", "--credentials", credFile+"2", "--passphrase-file", pass, "--store", filepath.Join(dir, "store2"), "--server", "second-host")
	if out := s2.ok("vault", "status"); !strings.Contains(out, "2 registered") || !strings.Contains(out, "second-host (this server)") {
		t.Errorf("vault status: %s", out)
	}
}

func TestVaultImmutableMinIO(t *testing.T) {
	plain, po := storagetest.MinIO(t, "primary")
	locked, _ := storagetest.MinIOLock(t, "primary")
	s := newSession(t)
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	s.fails(exitError, "object lock", "vault", "create", "imm", "--url", plain, "--replication", "LRS", "--immutable-days", "1")
	s.ok("vault", "create", "imm", "--url", locked, "--replication", "LRS", "--immutable-days", "1")
	if out := s.ok("vault", "list", "--url", locked); !strings.Contains(out, "1 day") {
		t.Errorf("vault list does not show immutability: %s", out)
	}
}

// TestVaultSecondaryKeysCLI: keys for the second copy given to vault create
// and vault credentials travel through the credentials file into the
// registered server's config, and are what reaches the second copy. The
// test servers share one root user, so a wrong secondary secret stands in
// for "other keys": with it the second copy is unreachable while the
// primary still works.
func TestVaultSecondaryKeysCLI(t *testing.T) {
	purl, po := storagetest.MinIO(t, "primary")
	surl, so := storagetest.MinIO(t, "secondary")
	s := newSession(t)
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	t.Setenv(envSecondaryAccessKey, "")
	t.Setenv(envSecondarySecretKey, "")

	s.fails(exitUsage, "go together", "vault", "create", "keys", "--url", purl, "--secondary-url", surl,
		"--secondary-access-key", so.AccessKey)
	// The wrong secondary secret is refused by the second endpoint; the
	// error names its location (the primary's keys are right).
	errOut := s.fails(exitError, "rejected the access keys", "vault", "create", "keys2", "--url", purl, "--secondary-url", surl,
		"--secondary-access-key", so.AccessKey, "--secondary-secret-key", "wrong-secondary-secret")
	if !strings.Contains(errOut, storage.Redact(surl)) || strings.Contains(errOut, "wrong-secondary-secret") {
		t.Errorf("error does not name the second copy's URL, or shows the secret: %s", errOut)
	}
	// Again with the right keys, from the environment so the secret stays
	// off the command line: the half-made vault is taken over.
	t.Setenv(envSecondaryAccessKey, so.AccessKey)
	t.Setenv(envSecondarySecretKey, so.SecretKey)
	s.ok("vault", "create", "keys2", "--url", purl, "--secondary-url", surl)
	t.Setenv(envSecondaryAccessKey, "")
	t.Setenv(envSecondarySecretKey, "")

	cred := filepath.Join(dir, "keys2.VaultCredentials")
	out := s.ok("vault", "credentials", "keys2", "--url", purl, "-o", cred,
		"--secondary-access-key", so.AccessKey, "--secondary-secret-key", so.SecretKey)
	if !strings.Contains(out, "second copy "+so.AccessKey) {
		t.Errorf("credentials output does not mention the second copy's keys: %s", out)
	}
	c, err := vault.ParseCredentials(mustRead(t, cred))
	if err != nil {
		t.Fatal(err)
	}
	if c.SecondaryAccessKey != so.AccessKey || c.SecondarySecretKey != so.SecretKey {
		t.Errorf("credentials file carries secondary keys %q/%q", c.SecondaryAccessKey, c.SecondarySecretKey)
	}

	// The server has no keys of its own.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	pass := writeFile(t, filepath.Join(dir, "pass"), "correct horse battery staple\n")
	s.ok("register", "--credentials", cred, "--passphrase-file", pass, "--store", filepath.Join(dir, "store"), "--server", "k1")
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.SecondaryAccessKey != so.AccessKey || cfg.Vault.SecondarySecretKey != so.SecretKey {
		t.Errorf("config holds secondary keys %q/%q", cfg.Vault.SecondaryAccessKey, cfg.Vault.SecondarySecretKey)
	}
	var st vaultStatusJSON
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.SecondaryReachable == nil || !*st.SecondaryReachable {
		t.Errorf("second copy not reachable with the config's secondary keys: %+v", st)
	}

	// Issuing a file with a wrong secondary secret is refused: the issue
	// record is written to the second copy with those keys.
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	t.Setenv(envSecondaryAccessKey, so.AccessKey)
	t.Setenv(envSecondarySecretKey, "wrong-secondary-secret")
	errOut = s.fails(exitError, "rejected the access keys", "vault", "credentials", "keys2", "--url", purl, "-o", filepath.Join(dir, "bad.VaultCredentials"))
	if !strings.Contains(errOut, "secondary copy") {
		t.Errorf("error does not say the second copy refused the keys: %s", errOut)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	// The config's secondary keys are the ones used for the second copy:
	// spoil the secret in the config and only the primary answers.
	cfg.Vault.SecondarySecretKey = "wrong-secondary-secret"
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}
	// The status is still printed, and the exit code says it is not OK.
	st = vaultStatusJSON{}
	code, stdout, _ := s.run("--json", "vault", "status")
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || code != exitError {
		t.Fatalf("vault status with the second copy refusing its keys: exit %d (want %d), %v", code, exitError, err)
	}
	if st.SecondaryReachable == nil || *st.SecondaryReachable {
		t.Errorf("with a wrong secondary secret in the config the second copy is reachable: %+v", st)
	}
}

// TestConfigFollowsVaultReplication: the vault's config object is the one
// source of truth; a registered server's config copy of the replication
// follows a set-replication made elsewhere as soon as the server opens the
// vault, and at once when the change is made from the server itself.
func TestConfigFollowsVaultReplication(t *testing.T) {
	admin := newSession(t)
	dir := t.TempDir()
	url := fileURL(filepath.Join(dir, "primary"))
	second := fileURL(filepath.Join(dir, "secondary"))
	admin.ok("vault", "create", "follow", "--url", url, "--secondary-url", second)
	cred := filepath.Join(dir, "follow.VaultCredentials")
	admin.ok("vault", "credentials", "follow", "--url", url, "-o", cred)
	server := newSession(t)
	pass := writeFile(t, filepath.Join(dir, "pass"), "correct horse battery staple\n")
	server.ok("register", "--credentials", cred, "--passphrase-file", pass, "--store", filepath.Join(dir, "store"))

	cachedReplication := func() (string, string) {
		t.Helper()
		cfg, err := loadConfig(server.config)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Vault.Replication, cfg.Vault.SecondaryURL
	}
	if r, sec := cachedReplication(); r != "GRS" || sec == "" {
		t.Fatalf("after register the config says %s, second copy %q; want GRS with a second copy", r, sec)
	}

	admin.ok("vault", "set-replication", "follow", "LRS", "--url", url)
	if r, _ := cachedReplication(); r != "GRS" {
		t.Fatalf("the server's config changed before it opened the vault: %s", r)
	}
	if out := server.ok("vault", "status"); !strings.Contains(out, "Replication:  LRS") {
		t.Errorf("vault status after set-replication LRS: %s", out)
	}
	if r, sec := cachedReplication(); r != "LRS" || sec != "" {
		t.Errorf("after the server opened the vault its config says %s, second copy %q; want LRS and none", r, sec)
	}
	var st struct {
		Replication string `json:"replication"`
	}
	if err := json.Unmarshal([]byte(server.ok("--json", "status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Replication != "LRS" {
		t.Errorf("status --json replication = %q, want LRS", st.Replication)
	}

	// Changed from the registered server itself: its config follows at once.
	server.ok("vault", "set-replication", "follow", "GRS", "--url", url, "--secondary-url", second)
	if r, sec := cachedReplication(); r != "GRS" || sec == "" {
		t.Errorf("after set-replication GRS on the server its config says %s, second copy %q", r, sec)
	}

	// A command that loaded the config before a 'configure' and opens the
	// vault after it refreshes the vault fields without undoing the change.
	stale, err := loadConfig(server.config)
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, "staging-after")
	server.ok("configure", "--staging", staging)
	admin.ok("vault", "set-replication", "follow", "LRS", "--url", url)
	v, err := openConfiguredVault(context.Background(), stale)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	cfg, err := loadConfig(server.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Staging != staging || cfg.Vault.Replication != "LRS" {
		t.Errorf("after a stale open the config has staging %q, replication %s; want %q and LRS", cfg.Staging, cfg.Vault.Replication, staging)
	}
}
