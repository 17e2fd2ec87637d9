package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepackEstimateRemovesNothing: asking for the repack estimate never
// prunes. With a policy under which prune would expire a point, the
// estimate leaves every vault object in place, and the old
// `prune --repack-estimate` is refused before it touches anything rather
// than pruning on the side.
func TestRepackEstimateRemovesNothing(t *testing.T) {
	s := newSession(t)
	dir := registered(t, s, "repack estimate passphrase")
	pass := filepath.Join(dir, "pass")
	src := filepath.Join(dir, "src")
	for i := range 2 {
		writeTree(t, src, map[string]string{"f": strings.Repeat("x", 1000*(i+1))})
		s.ok("backup", src, "--name", "data")
	}
	s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	// One daily point: prune would expire the older of the two.
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retention.Vault = vaultRetention{Daily: 1}
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}
	vaultDir := vaultFolder(t, cfg)
	before := filesUnder(t, vaultDir)

	code, _, errOut := s.run("prune", "--repack-estimate", "--passphrase-file", pass)
	if code != exitUsage || !strings.Contains(errOut, "tapeless vault repack-estimate") {
		t.Errorf("prune --repack-estimate: exit %d, stderr %q; want exit %d naming 'tapeless vault repack-estimate'", code, errOut, exitUsage)
	}
	sameFiles(t, "prune --repack-estimate", before, filesUnder(t, vaultDir))

	text := s.ok("vault", "repack-estimate", "--passphrase-file", pass)
	if !strings.Contains(text, "Repack estimate:") || !strings.Contains(text, "this server's 2 points") || !strings.Contains(text, "Nothing was changed") {
		t.Errorf("vault repack-estimate:\n%s", text)
	}
	var est repackJSON
	if err := json.Unmarshal([]byte(s.ok("--json", "vault", "repack-estimate", "--passphrase-file", pass)), &est); err != nil || est.Points != 2 || est.Packs == 0 {
		t.Errorf("vault repack-estimate --json: %+v, %v; want 2 points and their packs", est, err)
	}
	sameFiles(t, "vault repack-estimate", before, filesUnder(t, vaultDir))
	s.fails(exitError, "passphrase", "vault", "repack-estimate")

	// prune itself still prunes.
	s.ok("prune")
	if after := filesUnder(t, vaultDir); len(after) >= len(before) {
		t.Errorf("prune removed nothing: %d vault files before, %d after", len(before), len(after))
	}
}

// vaultFolder is the folder of cfg's file:// vault.
func vaultFolder(t *testing.T, cfg *config) string {
	t.Helper()
	u := strings.TrimPrefix(cfg.Vault.URL, "file://")
	d := filepath.Join(u, "vaults", cfg.Vault.Name)
	if _, err := os.Stat(d); err != nil {
		t.Fatal(err)
	}
	return d
}

func sameFiles(t *testing.T, what string, before, after []string) {
	t.Helper()
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("%s changed the vault:\nbefore: %v\nafter:  %v", what, before, after)
	}
}
