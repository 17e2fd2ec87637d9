package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage/storagetest"
)

// recoveryBlock returns the sh block of docs/RECOVERY.md.
func recoveryBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "RECOVERY.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, s, ok := strings.Cut(string(b), "```sh\n")
	if !ok {
		t.Fatal("docs/RECOVERY.md has no sh block")
	}
	s, _, _ = strings.Cut(s, "```")
	return s
}

// TestRecoveryRunbook: a server backs up and offloads everything to a GRS
// vault on the two MinIO servers, then is lost (store, staging and config
// deleted). docs/RECOVERY.md's commands, run as printed on a "new machine"
// (a fresh HOME), restore its points byte for byte both ways, and after the
// take-over the new machine backs up and offloads as the lost server.
func TestRecoveryRunbook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tapeless and runs a recovery against MinIO")
	}
	purl, po := storagetest.MinIO(t, "primary")
	surl, _ := storagetest.MinIO(t, "secondary")
	bin := buildTapeless(t)
	old := t.TempDir()
	lostPass := filepath.Join(t.TempDir(), "lost.pass")
	if err := os.WriteFile(lostPass, []byte("the lost server's own passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+po.AccessKey, "AWS_SECRET_ACCESS_KEY="+po.SecretKey,
		envPassphraseFile+"=")
	tl := func(home string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "HOME="+home, "TAPELESS_CONFIG="+filepath.Join(home, "config.yaml"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tapeless %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// The server that will be lost.
	src := filepath.Join(old, "src")
	writeTree(t, src, map[string]string{"etc/app.conf": "port=1", "data/report.txt": strings.Repeat("quarterly ", 20000)})
	tl(old, "vault", "create", "dr", "--url", purl, "--secondary-url", surl)
	tl(old, "vault", "credentials", "dr", "--url", purl, "-o", filepath.Join(old, "dr.VaultCredentials"))
	tl(old, "register", "--credentials", filepath.Join(old, "dr.VaultCredentials"), "--passphrase-file", lostPass,
		"--server", "web1", "--store", filepath.Join(old, "store"), "--staging", filepath.Join(old, "staging"))
	tl(old, "backup", src, "--name", "app")
	tl(old, "offload", "--keep-within", "0s", "--keep-last", "0")
	for _, p := range []string{"store", "staging", "config.yaml", "dr.VaultCredentials"} {
		if err := os.RemoveAll(filepath.Join(old, p)); err != nil {
			t.Fatal(err)
		}
	}

	// The new machine runs the runbook as printed.
	home, work := t.TempDir(), t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", recoveryBlock(t))
	cmd.Env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+home,
		"VAULT=dr", "VAULT_URL="+purl, "LOST=web1", "LOST_PASS="+lostPass, "WORK="+work)
	out, err := cmd.CombinedOutput()
	t.Logf("runbook output:\n%s", out)
	if err != nil {
		t.Fatalf("docs/RECOVERY.md failed as printed: %v", err)
	}
	compareDirs(t, src, filepath.Join(work, "restored-by-rescue"))
	compareDirs(t, src, filepath.Join(work, "restored"))
	for _, want := range []string{"web1 (this server)", "taken over", "web1 (replaced)", "rescue"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("runbook output lacks %q", want)
		}
	}

	// After the take-over the new machine is web1: its backups and
	// offloads continue, and its new point restores byte for byte.
	lost := filepath.Join(work, "lost.yaml")
	writeTree(t, src, map[string]string{"etc/app.conf": "port=2"})
	tl(home, "--config", lost, "backup", src, "--name", "app")
	tl(home, "--config", lost, "offload", "--keep-within", "0s", "--keep-last", "0")
	var pts pointsJSON
	if err := json.Unmarshal([]byte(tl(home, "--config", lost, "--json", "points")), &pts); err != nil {
		t.Fatal(err)
	}
	if len(pts.Points) != 2 || pts.Points[0].Server != "web1" || pts.Points[1].Tier != "vault" {
		t.Errorf("points after the take-over = %+v, want both of web1's points, in the vault", pts.Points)
	}
	target := filepath.Join(t.TempDir(), "new")
	tl(home, "--config", lost, "restore", "latest", "--target", target, "--passphrase-file", lostPass)
	compareDirs(t, src, target)
}
