package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// olCLI drives a built tapeless binary as a separate process, so that a
// crash point can SIGKILL it for real.
type olCLI struct {
	t      *testing.T
	bin    string
	dir    string // work folder: config, store, staging, credentials
	env    []string
	vault  string
	copies [2]storage.Backend // the vault's copies, rooted at vaults/NAME
	// outputs holds the stdout and stderr of every run.
	outputs []string
}

// buildTapeless compiles this command into a temporary folder.
func buildTapeless(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tapeless")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type olResult struct {
	code           int
	killed         bool
	stdout, stderr string
}

func (c *olCLI) run(extraEnv []string, args ...string) olResult {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(append(append(os.Environ(), "TAPELESS_CONFIG="+filepath.Join(c.dir, "config.yaml")), c.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := olResult{stdout: out.String(), stderr: errb.String()}
	c.outputs = append(c.outputs, r.stdout+r.stderr)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	default:
		c.t.Fatalf("run tapeless %v: %v", args, err)
	}
	return r
}

func (c *olCLI) mustRun(args ...string) string {
	c.t.Helper()
	r := c.run(nil, args...)
	if r.code != 0 {
		c.t.Fatalf("tapeless %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// newOlCLI creates a GRS vault over primary and secondary (URLs) and
// registers a fresh store to it with a generated passphrase.
func newOlCLI(t *testing.T, bin, primary, secondary string, o storage.Options) *olCLI {
	t.Helper()
	c := &olCLI{t: t, bin: bin, dir: t.TempDir(), vault: "crash"}
	if o.AccessKey != "" {
		c.env = []string{"AWS_ACCESS_KEY_ID=" + o.AccessKey, "AWS_SECRET_ACCESS_KEY=" + o.SecretKey}
	}
	creds := filepath.Join(c.dir, "crash.VaultCredentials")
	c.mustRun("vault", "create", c.vault, "--url", primary, "--secondary-url", secondary)
	c.mustRun("vault", "credentials", c.vault, "--url", primary, "-o", creds)
	c.mustRun("register", "--credentials", creds, "--generate-passphrase", filepath.Join(c.dir, "passphrase"),
		"--store", filepath.Join(c.dir, "store"), "--staging", filepath.Join(c.dir, "staging"))
	for i, u := range []string{primary, secondary} {
		b, err := storage.Open(context.Background(), u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		c.copies[i] = storage.Prefixed(b, "vaults/"+c.vault)
	}
	return c
}

// backup makes a point of a fresh folder of random files and returns its
// ID and the folder.
func (c *olCLI) backup(seed uint64) (archive.ID, string) {
	c.t.Helper()
	src := filepath.Join(c.dir, fmt.Sprintf("src-%d", seed))
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range 3 {
		b := make([]byte, 30<<10+r.IntN(80<<10))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(src, fmt.Sprintf("dir%d", i), fmt.Sprintf("file-%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o640); err != nil {
			c.t.Fatal(err)
		}
	}
	out := c.mustRun("backup", src, "--name", "data", "--json")
	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		c.t.Fatalf("backup --json: %v\n%s", err, out)
	}
	return sum.Point, src
}

// completePoints returns the points on b whose every pack and index object
// is on b too; a point object on b that lacks one is an error: a point
// must never be visible before it is complete.
func completePoints(t *testing.T, b storage.Backend) map[archive.ID]bool {
	t.Helper()
	ctx := context.Background()
	have := map[string]bool{}
	if err := b.List(ctx, "", func(i storage.Info) error { have[i.Name] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	pts, err := archive.ListPoints(ctx, b)
	if err != nil {
		t.Fatalf("list points at %s: %v", b.Location(), err)
	}
	out := map[archive.ID]bool{}
	for _, p := range pts {
		ok := true
		for _, r := range p.Packs {
			for _, n := range []string{archive.PackName(r.Pack), archive.IndexName(r.Index)} {
				if !have[n] {
					t.Errorf("point %s is visible at %s but lacks %s", p.ID, b.Location(), n)
					ok = false
				}
			}
		}
		out[p.ID] = ok
	}
	return out
}

func (c *olCLI) local() storage.Backend {
	c.t.Helper()
	b, err := storage.Open(context.Background(), "file://"+filepath.ToSlash(filepath.Join(c.dir, "store", "objects")), storage.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { b.Close() })
	return b
}

// checkInvariants: every point is fully local or complete on both copies;
// no copy shows an incomplete point; the catalogue calls nothing archived
// that is not complete on both copies.
func (c *olCLI) checkInvariants(when string, points []archive.ID) {
	c.t.Helper()
	local := completePoints(c.t, c.local())
	prim := completePoints(c.t, c.copies[0])
	sec := completePoints(c.t, c.copies[1])
	for _, id := range points {
		if !local[id] && !(prim[id] && sec[id]) {
			c.t.Errorf("%s: point %s is neither fully local nor complete on both copies (local %v, primary %v, secondary %v)",
				when, id, local[id], prim[id], sec[id])
		}
	}
	cat, err := archive.CatalogAt(context.Background(), filepath.Join(c.dir, "store"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range cat {
		if e.State == archive.StateArchived && !(prim[e.Point] && sec[e.Point]) {
			c.t.Errorf("%s: the catalogue says %s is archived, but it is not complete on both copies", when, e.Point)
		}
		if !e.Local && local[e.Point] {
			c.t.Errorf("%s: the catalogue says %s is not local, but it is", when, e.Point)
		}
	}
}

// compareDirs fails unless got holds exactly want's regular files.
func compareDirs(t *testing.T, want, got string) {
	t.Helper()
	read := func(root string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(root, p)
				m[rel] = string(b)
			}
			return err
		})
		return m
	}
	w, g := read(want), read(got)
	if len(w) != len(g) {
		t.Errorf("restored %d files, want %d", len(g), len(w))
	}
	for p, c := range w {
		if g[p] != c {
			t.Errorf("restored %s differs from the source", p)
		}
	}
}

// crashCases are the crash points and hit counts the crash test kills
// offload at: during uploads (mid-transfer and between objects), between
// the two copies of a GRS write, after the catalogue says archived but
// before the local delete, after the local point is gone, and during the
// collection of local packs. Each scenario offloads three new points of
// one pack each: nine objects, eighteen object copies.
var crashCases = []string{
	"offload-uploading:1", "offload-uploading:3",
	"offload-upload-read:1", "offload-upload-read:4", "offload-upload-read:12", "offload-upload-read:16",
	"offload-copy-primary:1", "offload-copy-primary:2", "offload-copy-primary:5", "offload-copy-primary:9",
	"offload-copy-done:1", "offload-copy-done:4", "offload-copy-done:8",
	"offload-archived:1", "offload-archived:2", "offload-archived:3",
	"offload-local-point-removed:1", "offload-local-point-removed:3",
	"offload-gc-pack:1", "offload-gc-pack:2", "offload-gc-pack:3",
	"offload-copy-primary:3:again", // two kills in a row at the same place
}

func testOffloadCrashes(t *testing.T, c *olCLI) {
	var all []archive.ID
	srcs := map[archive.ID]string{}
	offload := []string{"offload", "--keep-within", "0s", "--keep-last", "0"}
	kills := 0
	for i, cc := range crashCases {
		spec, again := strings.CutSuffix(cc, ":again")
		for k := range 3 {
			id, src := c.backup(uint64(i*10 + k))
			all = append(all, id)
			srcs[id] = src
		}
		c.checkInvariants("before "+cc, all)
		tries := 1
		if again {
			tries = 2
		}
		for range tries {
			r := c.run([]string{archive.CrashPointEnv + "=" + spec}, offload...)
			if !r.killed {
				t.Errorf("%s: offload was not killed (exit %d): the crash point was never reached\n%s", cc, r.code, r.stderr)
				continue
			}
			kills++
			c.checkInvariants("after a kill at "+cc, all)
		}
		r := c.run(nil, offload...)
		if r.code != 0 || r.killed {
			t.Fatalf("%s: the plain rerun exited %d (killed %v)\n%s%s", cc, r.code, r.killed, r.stdout, r.stderr)
		}
		c.checkInvariants("after the rerun following "+cc, all)
		cat, err := archive.CatalogAt(context.Background(), filepath.Join(c.dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range cat {
			if e.State != archive.StateArchived || e.Local {
				t.Errorf("%s: after the rerun the catalogue has %s as %s (local %v), want archived, not local", cc, e.Point, e.State, e.Local)
			}
		}
		if n := len(completePoints(t, c.local())); n != 0 {
			t.Errorf("%s: %d points still local after the rerun", cc, n)
		}
		var packs []string
		c.local().List(context.Background(), archive.PacksPrefix, func(i storage.Info) error { packs = append(packs, i.Name); return nil })
		if len(packs) != 0 {
			t.Errorf("%s: %d local packs left after the rerun, no local point needs them", cc, len(packs))
		}
	}
	if kills < 20 {
		t.Errorf("only %d kills; want at least 20", kills)
	}
	prim, sec := completePoints(t, c.copies[0]), completePoints(t, c.copies[1])
	for _, id := range all {
		if !prim[id] || !sec[id] {
			t.Errorf("point %s lost: primary %v, secondary %v", id, prim[id], sec[id])
		}
	}
	// Byte-identical restores from the vault: the first point, one killed
	// between the copies, and the last.
	for _, id := range []archive.ID{all[0], all[len(all)/2], all[len(all)-1]} {
		target := filepath.Join(c.dir, "restore-"+id.String()[:8])
		c.mustRun("restore", id.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
		compareDirs(t, srcs[id], target)
	}
}

func TestOffloadCrashSafetyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it some hundred times")
	}
	bin := buildTapeless(t)
	root := t.TempDir()
	c := newOlCLI(t, bin, "file://"+filepath.Join(root, "primary"), "file://"+filepath.Join(root, "secondary"), storage.Options{})
	testOffloadCrashes(t, c)
}

func TestOffloadCrashSafetyMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it some hundred times")
	}
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, pu, su, o)
	testOffloadCrashes(t, c)
}
