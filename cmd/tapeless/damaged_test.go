package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
)

// The --json shapes are decoded into local structs: they are the contract.

// damagedEnv is a server registered to an LRS file vault with four
// points, the two oldest offloaded.
type damagedEnv struct {
	s        *session
	store    string // the store folder
	vault    string // the vault's folder (vaults/NAME)
	archived []string
	local    []string
}

func newDamagedEnv(t *testing.T) *damagedEnv {
	t.Helper()
	s := newSession(t)
	dir := registered(t, s, "damaged points passphrase")
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	u, err := storage.ParseURL(cfg.Vault.URL)
	if err != nil {
		t.Fatal(err)
	}
	e := &damagedEnv{s: s, store: filepath.Join(dir, "store"), vault: filepath.Join(u.Path, "vaults", cfg.Vault.Name)}
	src := filepath.Join(dir, "src")
	var ids []string
	for i := range 4 {
		writeTree(t, src, map[string]string{"f" + string(rune('a'+i)): strings.Repeat("point ", 100*(i+1))})
		var sum struct {
			Point string `json:"id"`
		}
		if err := json.Unmarshal([]byte(s.ok("--json", "backup", src)), &sum); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.Point)
	}
	s.ok("offload", "--keep-within", "0s", "--keep-last", "2")
	e.archived, e.local = ids[:2], ids[2:]
	return e
}

// namedJSON is a damaged point in --json output.
type namedJSON struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// truncate cuts 10 bytes off the file at path.
func truncate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
}

func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDamagedLocalPointIsSkipped: one truncated point object in the store
// no longer blocks points, status and offload: it is named, skipped, and
// the commands exit 3; offload never deletes it.
func TestDamagedLocalPointIsSkipped(t *testing.T) {
	e := newDamagedEnv(t)
	s := e.s
	bad := e.local[1]
	badPath := filepath.Join(e.store, "objects", "points", bad)
	truncate(t, badPath)

	code, out, errOut := s.run("points")
	if code != exitPartial || !strings.Contains(errOut, "points/"+bad) || !strings.Contains(out, e.local[0][:12]) ||
		!strings.Contains(out, e.archived[0][:12]) || !strings.Contains(out, bad[:12]+"  (damaged)") {
		t.Errorf("points: exit %d\nstdout:\n%s\nstderr: %s\nwant exit 3, every point listed, %s marked damaged", code, out, errOut, bad[:12])
	}
	code, out, errOut = s.run("--json", "points")
	var pl pointsJSON
	err := json.Unmarshal([]byte(out), &pl)
	rows := pl.Points
	if err != nil || code != exitPartial || len(rows) != 4 {
		t.Fatalf("points --json: exit %d, %d rows, %v; stderr %s", code, len(rows), err, errOut)
	}
	for _, r := range rows {
		if (r.ID == bad) != (r.Damaged != "") || (r.ID == bad && (r.Tier != "local" || !strings.Contains(r.Damaged, "store copy"))) {
			t.Errorf("points --json row %+v", r)
		}
	}

	code, out, errOut = s.run("--json", "status")
	var st struct {
		LocalPoints int         `json:"local_points"`
		Archived    int         `json:"archived_points"`
		Damaged     []namedJSON `json:"damaged"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitPartial {
		t.Fatalf("status --json: exit %d, %v; stderr %s", code, err, errOut)
	}
	if st.LocalPoints != 1 || len(st.Damaged) != 1 || st.Damaged[0].Name != "points/"+bad || st.Archived != 2 {
		t.Errorf("status --json: %+v; want 1 local point, 2 archived and points/%s damaged", st, bad)
	}
	code, out, _ = s.run("status")
	if code != exitPartial || !strings.Contains(out, "Damaged:") || !strings.Contains(out, bad[:12]) {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	before, err := os.ReadFile(badPath)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = s.run("--json", "offload", "--keep-within", "0s", "--keep-last", "0")
	var ol struct {
		Result *struct {
			Archived []string `json:"archived"`
		} `json:"result"`
		Damaged []namedJSON `json:"damaged"`
	}
	if err := json.Unmarshal([]byte(out), &ol); err != nil || code != exitPartial {
		t.Fatalf("offload --json: exit %d, %v\n%s\nstderr %s", code, err, out, errOut)
	}
	if ol.Result == nil || len(ol.Result.Archived) != 1 || ol.Result.Archived[0] != e.local[0] ||
		len(ol.Damaged) != 1 || ol.Damaged[0].Name != "points/"+bad {
		t.Errorf("offload --json: %+v, damaged %+v; want %s archived and points/%s damaged", ol.Result, ol.Damaged, e.local[0], bad)
	}
	if after, err := os.ReadFile(badPath); err != nil || string(after) != string(before) {
		t.Errorf("offload deleted or changed the damaged point: %v", err)
	}
}

// TestDamagedVaultPointIsSkippedByPrune: a truncated point object in the
// vault is named by points and prune (exit 3); prune removes no pack or
// index object while it is there.
func TestDamagedVaultPointIsSkippedByPrune(t *testing.T) {
	e := newDamagedEnv(t)
	s := e.s
	bad := e.archived[1]
	truncate(t, filepath.Join(e.vault, "points", bad))
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retention.Vault = vaultRetention{Daily: 1}
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := s.run("points")
	if code != exitPartial || !strings.Contains(out, bad[:12]+"  (damaged)") || !strings.Contains(errOut, "points/"+bad) {
		t.Errorf("points: exit %d\n%s\nstderr: %s", code, out, errOut)
	}
	var packs []string
	for _, f := range filesUnder(t, e.vault) {
		if strings.Contains(f, "/packs/") || strings.Contains(f, "/index/") {
			packs = append(packs, f)
		}
	}
	code, out, errOut = s.run("--json", "prune")
	var res struct {
		Damaged   []namedJSON `json:"damaged"`
		PacksKept bool        `json:"packs_kept_for_damaged"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitPartial {
		t.Fatalf("prune --json: exit %d, %v\n%s\nstderr: %s", code, err, out, errOut)
	}
	if len(res.Damaged) != 1 || res.Damaged[0].Name != "points/"+bad || res.Damaged[0].Error == "" || !res.PacksKept {
		t.Errorf("prune --json: %+v; want points/%s damaged and packs kept", res, bad)
	}
	for _, p := range packs {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("prune removed %s while a vault point was damaged", p)
		}
	}
}
