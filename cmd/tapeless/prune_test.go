package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// setVaultPolicy rewrites the long-term policy in the CLI's config.
func (c *olCLI) setVaultPolicy(daily int) {
	c.t.Helper()
	path := filepath.Join(c.dir, "config.yaml")
	cfg, err := loadConfig(path)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Retention.Vault = vaultRetention{Daily: daily}
	if err := saveConfig(path, cfg); err != nil {
		c.t.Fatal(err)
	}
}

// pruneScenario offloads two points of the same day and prunes with one
// daily point: the older one expires.
func pruneScenario(t *testing.T, c *olCLI, wantDry string) (old, kept archive.ID, res archive.PruneResult) {
	t.Helper()
	old, _ = c.backup(700)
	kept, _ = c.backup(701)
	c.mustRun("offload", "--keep-within", "0s", "--keep-last", "0")
	c.setVaultPolicy(1)
	dry := c.mustRun("prune", "--dry-run")
	if !strings.Contains(dry, "expire") || !strings.Contains(dry, wantDry) {
		t.Errorf("prune --dry-run:\n%s", dry)
	}
	out := c.mustRun("prune", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, out)
	}
	return old, kept, res
}

func TestPruneCLIFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := t.TempDir()
	c := newOlCLI(t, buildTapeless(t), "file://"+filepath.Join(root, "p"), "file://"+filepath.Join(root, "s"), storage.Options{})
	old, kept, res := pruneScenario(t, c, "Would remove 1 expired points")
	if len(res.Expired) != 1 || res.Expired[0] != old || len(res.Waiting) != 0 {
		t.Fatalf("prune expired %v, waiting %v; want %s and nothing waiting", res.Expired, res.Waiting, old)
	}
	for _, b := range c.copies {
		pts := completePoints(t, b)
		if pts[old] || !pts[kept] {
			t.Errorf("%s after prune: old point present %v, kept point complete %v", b.Location(), pts[old], pts[kept])
		}
		st, err := archive.Verify(context.Background(), b, nil, false, 0, func(p archive.VerifyProblem) { t.Errorf("verify: %v", p) })
		if err != nil || st.Unreferenced != 0 {
			t.Errorf("verify %s after prune: %d unreferenced packs, %v", b.Location(), st.Unreferenced, err)
		}
	}
	var pl pointsJSON
	if err := json.Unmarshal([]byte(c.mustRun("points", "--json")), &pl); err != nil {
		t.Fatal(err)
	}
	pts := pl.Points
	if len(pts) != 1 || pts[0].ID != kept.String() {
		t.Errorf("points after prune: %+v, want only %s", pts, kept)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(c.mustRun("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.LocalPoints != 0 || st.Archived != 1 || st.Expired != 1 || st.Uploading != 0 || st.LastOffload == nil {
		t.Errorf("status after offload and prune: %+v; want 0 local, 1 archived, 1 expired", st)
	}
	if text := c.mustRun("status"); !strings.Contains(text, "1 points archived") || !strings.Contains(text, "no replication pending") {
		t.Errorf("status:\n%s", text)
	}
	// The repack estimate reads the kept point with the passphrase.
	text := c.mustRun("vault", "repack-estimate", "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	if !strings.Contains(text, "Repack estimate:") || !strings.Contains(text, "this server's 1 points") || !strings.Contains(text, "does not repack") {
		t.Errorf("vault repack-estimate:\n%s", text)
	}
	var est repackJSON
	out := c.mustRun("vault", "repack-estimate", "--json", "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	if err := json.Unmarshal([]byte(out), &est); err != nil || est.Points != 1 || est.Packs == 0 {
		t.Errorf("vault repack-estimate --json: %v\n%s", err, out)
	}
	if r := c.run(nil, "vault", "repack-estimate"); r.code != exitError {
		t.Errorf("vault repack-estimate without a passphrase exited %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	// While another process holds the store, status still answers.
	s, err := archive.OpenStore(context.Background(), filepath.Join(c.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if text := c.mustRun("status"); !strings.Contains(text, "Offloaded:    unknown") || !strings.Contains(text, "0 local points") {
		t.Errorf("status with the store busy:\n%s", text)
	}
}

// TestPruneCLIObjectLockMinIO: on a vault created with --immutable-days,
// prune reports the expired point as waiting and deletes nothing.
func TestPruneCLIObjectLockMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	pu, o := storagetest.MinIOLock(t, "primary")
	su, _ := storagetest.MinIOLock(t, "secondary")
	bin := buildTapeless(t)
	c := &olCLI{t: t, bin: bin, dir: t.TempDir(), vault: "locked",
		env: []string{"AWS_ACCESS_KEY_ID=" + o.AccessKey, "AWS_SECRET_ACCESS_KEY=" + o.SecretKey}}
	creds := filepath.Join(c.dir, "locked.VaultCredentials")
	c.mustRun("vault", "create", c.vault, "--url", pu, "--secondary-url", su, "--immutable-days", "1")
	c.mustRun("vault", "credentials", c.vault, "--url", pu, "-o", creds)
	c.mustRun("register", "--credentials", creds, "--generate-passphrase", filepath.Join(c.dir, "passphrase"),
		"--store", filepath.Join(c.dir, "store"), "--staging", filepath.Join(c.dir, "staging"))
	for i, u := range []string{pu, su} {
		b, err := storage.Open(context.Background(), u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		c.copies[i] = storage.Prefixed(b, "vaults/"+c.vault)
	}
	// The dry run already knows the point would have to wait.
	old, kept, res := pruneScenario(t, c, "Would remove 0 expired points")
	if len(res.Expired) != 0 || len(res.Waiting) == 0 || res.Waiting[0].Name != archive.PointName(old) {
		t.Fatalf("prune on an object-lock vault: expired %v, waiting %+v; want nothing expired and %s waiting", res.Expired, res.Waiting, old)
	}
	text := c.mustRun("prune")
	if !strings.Contains(text, "under object lock") || !strings.Contains(text, "waiting  "+archive.PointName(old)) {
		t.Errorf("prune output does not report the waiting point:\n%s", text)
	}
	for _, b := range c.copies {
		pts := completePoints(t, b)
		if !pts[old] || !pts[kept] {
			t.Errorf("%s: a locked point was deleted (old %v, kept %v)", b.Location(), pts[old], pts[kept])
		}
	}
}

// TestPruneCrashSafetyFile kills prune with SIGKILL after it journaled its
// decisions, after a point object is removed and between object
// removals: no copy ever shows a point that lacks an object, and a plain
// rerun leaves exactly the kept points and nothing unreferenced.
func TestPruneCrashSafetyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := t.TempDir()
	c := newOlCLI(t, buildTapeless(t), "file://"+filepath.Join(root, "p"), "file://"+filepath.Join(root, "s"), storage.Options{})
	c.setVaultPolicy(1) // one point per day: every older point of today expires
	for i, spec := range []string{"prune-journal:1", "prune-point-removed:1", "prune-point-removed:2",
		"prune-object-removed:1", "prune-object-removed:3", "prune-object-removed:6"} {
		var newest archive.ID
		for k := range 3 {
			newest, _ = c.backup(uint64(900 + 10*i + k))
		}
		c.mustRun("offload", "--keep-within", "0s", "--keep-last", "0")
		r := c.run([]string{archive.CrashPointEnv + "=" + spec}, "prune")
		if !r.killed {
			t.Errorf("%s: prune was not killed (exit %d)\n%s%s", spec, r.code, r.stdout, r.stderr)
		}
		for _, b := range c.copies {
			completePoints(t, b) // fails on a visible point with a missing object
		}
		if r := c.run(nil, "prune"); r.code != 0 {
			t.Fatalf("%s: rerun of prune exited %d\n%s%s", spec, r.code, r.stdout, r.stderr)
		}
		for _, b := range c.copies {
			pts := completePoints(t, b)
			if len(pts) != 1 || !pts[newest] {
				t.Errorf("%s: %s holds %v after the rerun, want only the newest point %s", spec, b.Location(), pts, newest)
			}
			st, err := archive.Verify(context.Background(), b, nil, false, 0, func(p archive.VerifyProblem) { t.Errorf("%s: verify: %v", spec, p) })
			if err != nil || st.Unreferenced != 0 {
				t.Errorf("%s: %s has %d unreferenced packs after the rerun (%v)", spec, b.Location(), st.Unreferenced, err)
			}
		}
	}
}
