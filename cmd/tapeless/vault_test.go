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

	var list []vaultInfo
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "list", "--url", url)), &list); err != nil {
		t.Fatal(err)
	}
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
	s2.fails(exitError, storage.ErrCredentialsInvalid.Error(), "register", "--credentials", credFile,
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
