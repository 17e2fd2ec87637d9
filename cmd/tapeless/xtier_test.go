package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// xtierTree writes a tree of random (incompressible) files, n files of
// about size bytes each, and returns its total size.
func xtierTree(t *testing.T, dir string, n, size int, seed uint64) int64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var total int64
	for i := range n {
		b := make([]byte, size/2+r.IntN(size))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(len(b))
	}
	return total
}

// vaultBytes is what a copy of the vault holds, in bytes.
func vaultBytes(t *testing.T, b storage.Backend) int64 {
	t.Helper()
	var n int64
	if err := b.List(context.Background(), "", func(i storage.Info) error { n += i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDedupAcrossTiersMinIO is incremental forever across both tiers: a
// tree backed up, offloaded with nothing kept locally, backed up unchanged
// and offloaded again stores, sends and grows the vault by under 1 % the
// second time, and both points restore byte-identical, the second reading
// the packs it shares with the first from the vault.
func TestDedupAcrossTiersMinIO(t *testing.T) {
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	c := newOlCLI(t, buildTapeless(t), pu, su, o)
	src := filepath.Join(c.dir, "tree")
	treeBytes := xtierTree(t, src, 60, 96<<10, 12)
	offload := []string{"offload", "--keep-within", "0s", "--keep-last", "0", "--json"}

	backup := func() archive.BackupSummary {
		t.Helper()
		var sum archive.BackupSummary
		if err := json.Unmarshal([]byte(c.mustRun("backup", src, "--name", "tree", "--json")), &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	offloaded := func() archive.OffloadResult {
		t.Helper()
		var out offloadJSON
		if err := json.Unmarshal([]byte(c.mustRun(offload...)), &out); err != nil {
			t.Fatal(err)
		}
		return *out.Result
	}

	first := backup()
	r1 := offloaded()
	if len(r1.Archived) != 1 {
		t.Fatalf("first offload archived %v, want the first point", r1.Archived)
	}
	v1 := [2]int64{vaultBytes(t, c.copies[0]), vaultBytes(t, c.copies[1])}

	second := backup()
	if lim := treeBytes / 100; second.NewStoredBytes >= lim {
		t.Errorf("the unchanged tree's second backup stored %d bytes, want under 1%% of %d (%d); summary %+v",
			second.NewStoredBytes, treeBytes, lim, second)
	}
	// The second point is local and names packs only the vault holds:
	// points says so, and a restore reads them from there.
	var pl pointsJSON
	if err := json.Unmarshal([]byte(c.mustRun("points", "--json")), &pl); err != nil {
		t.Fatal(err)
	}
	for _, p := range pl.Points {
		if p.ID == second.Point.String() && (p.Tier != "local" || p.VaultPacks == 0) {
			t.Errorf("points shows the second point as tier %q with %d vault packs, want local with its shared packs", p.Tier, p.VaultPacks)
		}
	}
	if out := c.mustRun("points"); !strings.Contains(out, "local+vault") {
		t.Errorf("the points table does not show the local point sharing packs with the vault:\n%s", out)
	}
	target2 := filepath.Join(c.dir, "restore-2")
	r := c.run(nil, "restore", second.Point.String()[:12], "--target", target2, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	if r.code != 0 {
		t.Fatalf("restore of the local point sharing packs with the vault: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	compareDirs(t, src, target2)
	if !strings.Contains(r.stderr, "packs with points in vault crash: reading them from there") {
		t.Errorf("the restore does not say it reads shared packs from the vault:\n%s", r.stderr)
	}

	r2 := offloaded()
	if len(r2.Archived) != 1 || r2.Archived[0] != second.Point {
		t.Fatalf("second offload archived %v, want %s", r2.Archived, second.Point)
	}
	if lim := treeBytes / 100; r2.BytesUploaded >= lim {
		t.Errorf("the second offload sent %d bytes, want under 1%% of %d", r2.BytesUploaded, treeBytes)
	}
	for i := range 2 {
		if grown := vaultBytes(t, c.copies[i]) - v1[i]; grown >= treeBytes/100 {
			t.Errorf("copy %d of the vault grew by %d bytes with the second offload, want under 1%% of %d", i, grown, treeBytes)
		}
	}
	t.Logf("tree %d bytes; first backup stored %d, offload sent %d (vault %d); second backup stored %d, offload sent %d (vault grew by %d)",
		treeBytes, first.NewStoredBytes, r1.BytesUploaded, v1[0], second.NewStoredBytes, r2.BytesUploaded, vaultBytes(t, c.copies[0])-v1[0])

	// Both points, now in the vault only, restore byte-identical.
	for i, id := range []archive.ID{first.Point, second.Point} {
		target := filepath.Join(c.dir, fmt.Sprintf("restore-vault-%d", i))
		c.mustRun("restore", id.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
		compareDirs(t, src, target)
	}
	// The store's own check knows what the vault holds for it.
	if r := c.run(nil, "verify", "--passphrase-file", filepath.Join(c.dir, "passphrase")); r.code != 0 {
		t.Errorf("verify of the store after cross-tier offloads: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCrossTierKillsMinIO kills offload and prune at their crash points
// while the points share packs across the tiers: each new point is the
// same tree plus one file, backed up after the earlier points left the
// store, so it names packs only the vault holds. No kill may lose a point:
// what a copy shows is complete, the catalogue never calls a point
// archived that a copy lacks, and at the end every kept point restores
// byte-identical from the vault, and the store's next backup still
// deduplicates against what the vault holds.
func TestCrossTierKillsMinIO(t *testing.T) {
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	c := newOlCLI(t, buildTapeless(t), pu, su, o)
	base := filepath.Join(c.dir, "base")
	xtierTree(t, base, 12, 64<<10, 21)
	offload := []string{"offload", "--keep-within", "0s", "--keep-last", "0"}

	var ids []archive.ID
	srcs := map[archive.ID]string{}
	point := func(i int) archive.ID {
		t.Helper()
		src := filepath.Join(c.dir, fmt.Sprintf("src-%d", i))
		if err := os.CopyFS(src, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
		xtierTree(t, filepath.Join(src, "new"), 1, 32<<10, uint64(100+i))
		var sum archive.BackupSummary
		if err := json.Unmarshal([]byte(c.mustRun("backup", src, "--name", "data", "--json")), &sum); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.Point)
		srcs[sum.Point] = src
		return sum.Point
	}
	check := func(when string) {
		t.Helper()
		prim, sec := completePoints(t, c.copies[0]), completePoints(t, c.copies[1])
		cat, err := archive.CatalogAt(context.Background(), filepath.Join(c.dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range cat {
			if e.State == archive.StateArchived && !(prim[e.Point] && sec[e.Point]) {
				t.Errorf("%s: the catalogue says %s is archived, but it is not complete on both copies", when, e.Point)
			}
		}
	}

	point(0)
	c.mustRun(offload...)
	// A backup killed after writing a pack, before its point: the next
	// backup of the same data and the offloads after it lose nothing.
	killed := filepath.Join(c.dir, "src-killed")
	if err := os.CopyFS(killed, os.DirFS(base)); err != nil {
		t.Fatal(err)
	}
	xtierTree(t, filepath.Join(killed, "new"), 1, 32<<10, 99)
	if r := c.run([]string{archive.CrashPointEnv + "=backup-pack-written:1"}, "backup", killed, "--name", "data"); !r.killed {
		t.Errorf("backup was not killed at backup-pack-written:1 (exit %d)\n%s", r.code, r.stderr)
	}
	check("after a backup kill")
	for i, spec := range []string{
		"offload-uploading:1", "offload-copy-primary:1", "offload-copy-done:2", "offload-point-primary:1",
		"offload-archived:1", "offload-local-point-removed:1", "offload-gc-pack:1",
	} {
		id := point(i + 1)
		r := c.run([]string{archive.CrashPointEnv + "=" + spec}, offload...)
		if !r.killed && spec != "offload-point-primary:1" { // reached only with replication pending
			t.Errorf("%s: offload was not killed (exit %d)\n%s", spec, r.code, r.stderr)
		}
		check("after a kill at " + spec)
		if r := c.run(nil, offload...); r.code != 0 || r.killed {
			t.Fatalf("%s: the rerun exited %d\n%s%s", spec, r.code, r.stdout, r.stderr)
		}
		check("after the rerun following " + spec)
		if prim := completePoints(t, c.copies[0]); !prim[id] {
			t.Errorf("%s: point %s is not complete in the vault after the rerun", spec, id)
		}
	}

	// Prune keeps the newest point of the day; the others expire, and the
	// packs they share with it stay.
	c.setVaultPolicy(1)
	for _, spec := range []string{"prune-journal:1", "prune-point-removed:1", "prune-object-removed:1"} {
		r := c.run([]string{archive.CrashPointEnv + "=" + spec}, "prune")
		if !r.killed {
			t.Logf("%s: prune was not killed (exit %d): nothing left to remove there", spec, r.code)
		}
		check("after a prune kill at " + spec)
	}
	if r := c.run(nil, "prune"); r.code != 0 {
		t.Fatalf("prune rerun: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	newest := ids[len(ids)-1]
	prim := completePoints(t, c.copies[0])
	if len(prim) != 1 || !prim[newest] {
		t.Errorf("after prune the vault holds %v, want the newest point %s only", prim, newest)
	}
	target := filepath.Join(c.dir, "restore-newest")
	c.mustRun("restore", newest.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	compareDirs(t, srcs[newest], target)
	if r := c.run(nil, "verify", "--vault", "--read-data"); r.code != 0 {
		t.Errorf("verify --vault --read-data after the kills: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The store still deduplicates against what prune kept, and only that.
	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(c.mustRun("backup", srcs[newest], "--name", "data", "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.NewStoredBytes != 0 {
		t.Errorf("backing up the newest tree again stored %d bytes, want 0", sum.NewStoredBytes)
	}
	c.mustRun(offload...)
	target = filepath.Join(c.dir, "restore-again")
	c.mustRun("restore", sum.Point.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	compareDirs(t, srcs[newest], target)
}

// TestDedupAfterTakeOverMinIO: the store is lost with the server; a new
// machine takes over its identity, and its first backup of the same tree
// stores, sends and grows the vault by under 1 %, because the take-over
// filled the new store's dedup index from the vault's index objects.
func TestDedupAfterTakeOverMinIO(t *testing.T) {
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, pu, su, o)
	src := filepath.Join(c.dir, "tree")
	treeBytes := xtierTree(t, src, 40, 96<<10, 33)
	offload := []string{"offload", "--keep-within", "0s", "--keep-last", "0", "--json"}
	c.mustRun("backup", src, "--name", "tree")
	c.mustRun(offload...)
	v1 := vaultBytes(t, c.copies[0])
	cfg, err := loadConfig(filepath.Join(c.dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	// The new machine: nothing of the old store or configuration.
	n := &olCLI{t: t, bin: bin, dir: t.TempDir(), vault: c.vault, env: c.env, copies: c.copies}
	creds := filepath.Join(n.dir, "creds.VaultCredentials")
	n.mustRun("vault", "credentials", c.vault, "--url", pu, "-o", creds)
	var reg registerJSON
	out := n.mustRun("register", "--credentials", creds, "--take-over", cfg.Server, "--passphrase-file", filepath.Join(c.dir, "passphrase"),
		"--store", filepath.Join(n.dir, "store"), "--staging", filepath.Join(n.dir, "staging"), "--json")
	if err := json.Unmarshal([]byte(out), &reg); err != nil {
		t.Fatal(err)
	}
	if reg.Adopted == nil || reg.Adopted.Packs == 0 || reg.Adopted.Skipped != 0 {
		t.Fatalf("the take-over adopted %+v of the vault's packs, want them all\n%s", reg.Adopted, out)
	}

	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(n.mustRun("backup", src, "--name", "tree", "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if lim := treeBytes / 100; sum.NewStoredBytes >= lim {
		t.Errorf("the new machine's first backup stored %d bytes of the unchanged tree, want under 1%% of %d", sum.NewStoredBytes, treeBytes)
	}
	var off offloadJSON
	if err := json.Unmarshal([]byte(n.mustRun(offload...)), &off); err != nil {
		t.Fatal(err)
	}
	if off.Result == nil || len(off.Result.Archived) != 1 || off.Result.BytesUploaded >= treeBytes/100 {
		t.Errorf("the new machine's offload: %+v, want its point archived with under 1%% of %d sent", off.Result, treeBytes)
	}
	if grown := vaultBytes(t, c.copies[0]) - v1; grown >= treeBytes/100 {
		t.Errorf("the vault grew by %d bytes, want under 1%% of %d", grown, treeBytes)
	}
	t.Logf("tree %d bytes; adopted %+v; first backup on the new machine stored %d, its offload sent %d",
		treeBytes, *reg.Adopted, sum.NewStoredBytes, off.Result.BytesUploaded)
	target := filepath.Join(n.dir, "restore")
	n.mustRun("restore", sum.Point.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	compareDirs(t, src, target)
}
