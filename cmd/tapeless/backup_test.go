package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapeless/tapeless/archive"
)

const cliTestPassphrase = "correct horse battery staple"

// storeEnv is a configured store for command tests.
type storeEnv struct {
	config   string // config file path
	store    string
	passFile string
}

// newStoreEnv makes a store (cheap KDF) and a config pointing at it,
// without going through register.
func newStoreEnv(t *testing.T) *storeEnv {
	t.Helper()
	t.Cleanup(archive.SetKDFForTesting(archive.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	dir := t.TempDir()
	e := &storeEnv{
		config:   filepath.Join(dir, "config.yaml"),
		store:    filepath.Join(dir, "store"),
		passFile: filepath.Join(dir, "pass"),
	}
	k, err := archive.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	env, err := archive.WrapKeys(k, []byte(cliTestPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if err := archive.InitStore(context.Background(), e.store, k.PublicKeys, env); err != nil {
		t.Fatal(err)
	}
	c := defaultConfig()
	c.Store = e.store
	c.Sources = []sourceConfig{{Name: "docs", Path: filepath.Join(dir, "docs-src"), Exclude: []string{"*.tmp"}}}
	if err := saveConfig(e.config, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.passFile, []byte(cliTestPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAPELESS_PASSPHRASE_FILE", "")
	return e
}

// run runs a command line against the env's config.
func (e *storeEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"--config", e.config}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func backupJSON(t *testing.T, e *storeEnv, args ...string) archive.BackupSummary {
	t.Helper()
	code, out, errOut := e.run(t, append([]string{"--json", "backup"}, args...)...)
	if code != exitOK {
		t.Fatalf("backup exited %d; stderr: %s", code, errOut)
	}
	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("backup --json printed %q: %v", out, err)
	}
	return sum
}

func TestBackupPointsRestoreVerify(t *testing.T) {
	e := newStoreEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"a.txt": "alpha", "sub/b.txt": strings.Repeat("beta ", 5000), "skip.tmp": "x"})
	os.Mkdir(filepath.Join(src, "empty"), 0o755)
	os.Symlink("sub/b.txt", filepath.Join(src, "link"))
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}

	sum := backupJSON(t, e, src, "--name", "web", "--exclude", "*.tmp")
	if sum.Files != 2 || sum.Symlinks != 1 || sum.Dirs != 2 || sum.Special != 1 || sum.Excluded != 1 || sum.Source != "web" {
		t.Errorf("backup summary = %+v, want 2 files, 1 symlink, 2 dirs, 1 special, 1 excluded, source web", sum)
	}
	id := sum.Point.String()

	// Text summary and a second, incremental backup.
	code, out, errOut := e.run(t, "backup", src, "--name", "web", "--exclude", "*.tmp")
	if code != exitOK || !strings.Contains(out, "0 read, 2 unchanged") || !strings.Contains(out, "1 special files") {
		t.Errorf("second backup exited %d, printed %q (stderr %q)", code, out, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("backup drew a progress bar on a non-terminal: %q", errOut)
	}

	code, out, errOut = e.run(t, "--json", "points", "--source", "web")
	var pl pointsJSON
	if code != exitOK || json.Unmarshal([]byte(out), &pl) != nil || len(pl.Points) != 2 {
		t.Fatalf("points --json exited %d, printed %q (stderr %q), want 2 points", code, out, errOut)
	}
	pts := pl.Points
	if pts[0].ID != id || pts[0].Tier != "local" || pts[0].Files != 2 || pts[0].Source != "web" || pts[1].Parent != id {
		t.Errorf("points[0] = %+v, points[1].Parent = %s; want %s, local, 2 files, parent of the second", pts[0], pts[1].Parent, id)
	}
	code, out, _ = e.run(t, "points")
	if code != exitOK || !strings.Contains(out, id[:12]) || !strings.Contains(out, "TIER") {
		t.Errorf("points printed %q", out)
	}
	if code, out, _ = e.run(t, "--json", "points", "--source", "nope"); code != exitOK || json.Unmarshal([]byte(out), &pl) != nil || pl.Points == nil || len(pl.Points) != 0 {
		t.Errorf("points --source nope = %d %q, want an empty list", code, out)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	code, _, errOut = e.run(t, "restore", id[:10], "--target", dst, "--passphrase-file", e.passFile)
	if code != exitOK {
		t.Fatalf("restore exited %d: %s", code, errOut)
	}
	for p, want := range map[string]string{"a.txt": "alpha", "sub/b.txt": strings.Repeat("beta ", 5000)} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != want {
			t.Errorf("restored %s = %.20q, %v", p, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "sub/b.txt" {
		t.Errorf("restored link = %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir not restored: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "skip.tmp")); err == nil {
		t.Error("excluded file restored")
	}

	// Again: existing files are refused, then replaced with --overwrite.
	if code, _, errOut = e.run(t, "restore", id, "--target", dst, "--passphrase-file", e.passFile); code != exitError || !strings.Contains(errOut, "--overwrite") {
		t.Errorf("restore over existing files exited %d: %s", code, errOut)
	}
	if code, _, errOut = e.run(t, "restore", id, "--target", dst, "--overwrite", "--passphrase-file", e.passFile); code != exitOK {
		t.Errorf("restore --overwrite exited %d: %s", code, errOut)
	}

	// One path, passphrase from the environment, JSON summary.
	t.Setenv("TAPELESS_PASSPHRASE_FILE", e.passFile)
	dst2 := t.TempDir()
	code, out, errOut = e.run(t, "--json", "restore", id, "sub", "--target", dst2)
	var rs archive.RestoreSummary
	if code != exitOK || json.Unmarshal([]byte(out), &rs) != nil || rs.Files != 1 || rs.Path != "sub" {
		t.Errorf("restore of sub exited %d, printed %q (stderr %q)", code, out, errOut)
	}
	if code, _, errOut = e.run(t, "restore", id, "nope", "--target", t.TempDir()); code != exitUsage {
		t.Errorf("restore of a missing path exited %d, want %d: %s", code, exitUsage, errOut)
	}

	for _, args := range [][]string{{"verify"}, {"verify", "--read-data"}, {"verify", "--read-data", "--subset", "50"}} {
		if code, out, errOut = e.run(t, args...); code != exitOK || !strings.Contains(out, "Store OK") {
			t.Errorf("%v exited %d, printed %q (stderr %q)", args, code, out, errOut)
		}
	}
	code, out, _ = e.run(t, "--json", "verify", "--read-data")
	var v struct {
		OK    bool                `json:"ok"`
		Stats archive.VerifyStats `json:"stats"`
		Trees archive.TreeStats   `json:"trees"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &v) != nil || !v.OK || v.Stats.Blobs == 0 || v.Trees.Points != 2 || v.Trees.Chunks == 0 {
		t.Errorf("verify --json --read-data with TAPELESS_PASSPHRASE_FILE exited %d: %q (want blobs decrypted)", code, out)
	}
}

func TestBackupConfiguredSourceName(t *testing.T) {
	e := newStoreEnv(t)
	c, err := loadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, c.Sources[0].Path, map[string]string{"keep.txt": "k", "drop.tmp": "d"})
	sum := backupJSON(t, e, "docs")
	if sum.Source != "docs" || sum.Files != 1 || sum.Excluded != 1 {
		t.Errorf("backup of configured source = %+v, want source docs, 1 file, 1 excluded", sum)
	}
}

func TestRestoreWrongPassphraseWritesNothing(t *testing.T) {
	e := newStoreEnv(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "data"})
	sum := backupJSON(t, e, src)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("this is not the passphrase"), 0o600)
	dst := filepath.Join(t.TempDir(), "dst")
	code, _, errOut := e.run(t, "restore", sum.Point.String(), "--target", dst, "--passphrase-file", bad)
	if code != exitError || !strings.Contains(errOut, "passphrase") {
		t.Errorf("restore with a wrong passphrase exited %d: %s", code, errOut)
	}
	if _, err := os.Lstat(dst); err == nil {
		t.Error("restore with a wrong passphrase created the target")
	}
	// No passphrase and no terminal: an error (exit 1) that says how to give one.
	if code, _, errOut = e.run(t, "restore", sum.Point.String(), "--target", dst); code != exitError || !strings.Contains(errOut, "TAPELESS_PASSPHRASE_FILE") {
		t.Errorf("restore without a passphrase exited %d: %s", code, errOut)
	}
	if code, _, errOut = e.run(t, "restore", "ffffffffff", "--target", dst, "--passphrase-file", e.passFile); code != exitError || !strings.Contains(errOut, "no such recovery point") {
		t.Errorf("restore of an unknown point exited %d: %s", code, errOut)
	}
	if code, _, _ = e.run(t, "restore", sum.Point.String(), "--passphrase-file", e.passFile); code != exitUsage {
		t.Errorf("restore without --target exited %d, want %d", code, exitUsage)
	}
}

func TestTamperedStoreFailsRestoreAndVerify(t *testing.T) {
	for _, c := range []struct{ prefix, how string }{{"packs/", "flip"}, {"packs/", "truncate"}, {"index/", "flip"}, {"points/", "flip"}} {
		prefix := c.prefix
		t.Run(strings.TrimSuffix(prefix, "/")+"-"+c.how, func(t *testing.T) {
			e := newStoreEnv(t)
			src := t.TempDir()
			writeTree(t, src, map[string]string{"f": strings.Repeat("content ", 4000)})
			sum := backupJSON(t, e, src)
			var victim string
			filepath.WalkDir(filepath.Join(e.store, "objects", prefix), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() && victim == "" {
					victim = p
				}
				return nil
			})
			if victim == "" {
				t.Fatalf("no object under %s", prefix)
			}
			b, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			if c.how == "truncate" {
				b = b[:len(b)-100]
			} else {
				b[len(b)-20] ^= 1
			}
			os.Chmod(victim, 0o600)
			if err := os.WriteFile(victim, b, 0o600); err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(victim)
			code, _, errOut := e.run(t, "restore", sum.Point.String(), "--target", t.TempDir(), "--passphrase-file", e.passFile)
			if code != exitError || !strings.Contains(errOut, name) {
				t.Errorf("restore after %s of %s exited %d: %s", c.how, prefix+name, code, errOut)
			}
			code, _, errOut = e.run(t, "verify", "--read-data")
			if code != exitError || !strings.Contains(errOut, name) {
				t.Errorf("verify --read-data after %s of %s exited %d: %s", c.how, prefix+name, code, errOut)
			}
		})
	}
}

// TestBackupUnreadableFileExit3 needs a file the backup cannot read. Root
// reads everything, so as root the backup runs in a child process as
// nobody.
func TestBackupUnreadableFileExit3(t *testing.T) {
	if os.Getenv("TAPELESS_TEST_CHILD_ARGS") != "" {
		var args []string
		json.Unmarshal([]byte(os.Getenv("TAPELESS_TEST_CHILD_ARGS")), &args)
		os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
	}
	e := newStoreEnv(t)
	src := filepath.Join(filepath.Dir(e.store), "src")
	writeTree(t, src, map[string]string{"ok": "fine", "secret": "no"})
	if err := os.Chmod(filepath.Join(src, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", e.config, "--json", "backup", src}
	var code int
	var out, errOut bytes.Buffer
	if os.Geteuid() != 0 {
		code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	} else {
		const nobody = 65534
		// The child must reach and write the store and read the config.
		// Only the test's own directories, strictly below the temp dir
		// (which must keep its sticky, world-writable mode).
		tmp := filepath.Clean(os.TempDir())
		for d := filepath.Dir(e.store); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		filepath.WalkDir(filepath.Dir(e.store), func(p string, d os.DirEntry, err error) error {
			if err == nil && filepath.Base(p) != "secret" {
				os.Lchown(p, nobody, nobody)
			}
			return nil
		})
		// The test binary sits in a private build directory: copy it out.
		bin := filepath.Join(filepath.Dir(e.store), "tapeless.test")
		exe, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, exe, 0o755); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(args)
		cmd := exec.Command(bin, "-test.run=^TestBackupUnreadableFileExit3$")
		cmd.Env = append(os.Environ(), "TAPELESS_TEST_CHILD_ARGS="+string(a), "TAPELESS_CONFIG="+e.config)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		err = cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run child as nobody: %v", err)
		}
	}
	if code != exitPartial {
		t.Fatalf("backup with an unreadable file exited %d, want %d; stderr: %s", code, exitPartial, errOut.String())
	}
	var sum archive.BackupSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("backup --json printed %q: %v", out.String(), err)
	}
	if sum.Files != 1 || sum.ErrorCount != 1 || len(sum.Errors) != 1 || !strings.HasSuffix(sum.Errors[0].Path, "secret") {
		t.Errorf("summary = %+v, want 1 file stored and the secret file reported", sum)
	}
	if !strings.Contains(errOut.String(), "1 entries skipped") {
		t.Errorf("stderr %q does not say what was skipped", errOut.String())
	}
}

// Listing, restoring and verifying open the store read-only, so they work
// while a writer (the daemon's backup) holds the store lock; a second
// backup is refused with the holder named.
func TestReadCommandsWorkWhileStoreIsLocked(t *testing.T) {
	e := newStoreEnv(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "data"})
	sum := backupJSON(t, e, src)

	s, err := archive.OpenStore(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, out, errOut := e.run(t, "points"); code != exitOK || !strings.Contains(out, sum.Point.String()[:12]) {
		t.Errorf("points while locked exited %d: %s %s", code, out, errOut)
	}
	if code, _, errOut := e.run(t, "restore", sum.Point.String(), "--target", t.TempDir(), "--passphrase-file", e.passFile); code != exitOK {
		t.Errorf("restore while locked exited %d: %s", code, errOut)
	}
	if code, _, errOut := e.run(t, "verify", "--read-data"); code != exitOK {
		t.Errorf("verify while locked exited %d: %s", code, errOut)
	}
	code, _, errOut := e.run(t, "backup", src)
	if code != exitError || !strings.Contains(errOut, "lock") {
		t.Errorf("second writer exited %d: %s", code, errOut)
	}
}

// backup of a device or FIFO as the whole source is refused and makes no
// point (it used to make an empty point and exit 0).
func TestBackupRefusesSpecialSource(t *testing.T) {
	e := newStoreEnv(t)
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"/dev/null", fifo} {
		code, out, errOut := e.run(t, "backup", src, "--name", "x")
		if code == exitOK || !strings.Contains(errOut, src) || !strings.Contains(errOut, "cannot") && !strings.Contains(errOut, "only directories") {
			t.Errorf("backup %s exited %d, stdout %q, stderr %q; want a refusal naming it", src, code, out, errOut)
		}
	}
	var pl pointsJSON
	if code, out, _ := e.run(t, "--json", "points"); code != exitOK || json.Unmarshal([]byte(out), &pl) != nil || pl.Points == nil || len(pl.Points) != 0 {
		t.Errorf("points after refused backups = %d %q, want no points", code, out)
	}
}

func TestBackupArgumentsSayWhatToGive(t *testing.T) {
	e := newStoreEnv(t)
	code, _, errOut := e.run(t, "backup")
	if code != exitUsage || !strings.Contains(errOut, "backup needs a SOURCE") || !strings.Contains(errOut, "configured: docs") {
		t.Errorf("backup without arguments = %d %q, want a usage error naming what to give and the configured sources", code, errOut)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	writeTree(t, a, map[string]string{"f": "1"})
	writeTree(t, b, map[string]string{"g": "2"})
	code, _, errOut = e.run(t, "backup", a, b)
	if code != exitUsage || !strings.Contains(errOut, "--name NAME") {
		t.Errorf("backup of two sources without --name = %d %q, want a usage error asking for --name", code, errOut)
	}
	if sum := backupJSON(t, e, a, b, "--name", "both"); sum.Source != "both" || sum.Files != 2 {
		t.Errorf("backup of two sources with --name = %+v", sum)
	}
}
