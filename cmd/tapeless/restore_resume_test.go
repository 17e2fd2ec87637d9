package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// TestRestoreResumesAfterKill kills a restore from the vault (SIGKILL of
// the real binary) in the middle of its write pass and runs it again with
// the same --target and no --overwrite: the rerun keeps the files the first
// run finished, fetches less than the point's packs, and the target ends
// byte-identical to the source with no temporary files left.
func TestRestoreResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildTapeless(t)
	root := t.TempDir()
	c := newOlCLI(t, bin, "file://"+filepath.Join(root, "primary"), "file://"+filepath.Join(root, "secondary"), storage.Options{})
	src := filepath.Join(c.dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 10 {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		writeFile(t, filepath.Join(src, "d", fmt.Sprintf("f%02d", i)), string(b))
	}
	out := c.mustRun("backup", src, "--name", "data", "--json")
	var bs archive.BackupSummary
	if err := json.Unmarshal([]byte(out), &bs); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	c.mustRun("offload", "--keep-within", "0s", "--keep-last", "0")
	h, err := archive.LoadPointHeader(context.Background(), c.copies[0], bs.Point)
	if err != nil {
		t.Fatal(err)
	}
	var packBytes int64
	for _, p := range h.Packs {
		packBytes += p.Size
	}

	// Paused before entry 7 of the write pass (d, then f00..f04 handed to
	// the writers): killed once those five are in place.
	pause := t.TempDir()
	target := filepath.Join(c.dir, "restored")
	args := []string{"restore", bs.Point.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase")}
	first := exec.Command(c.bin, args...)
	first.Env = append(append(os.Environ(), "TAPELESS_CONFIG="+filepath.Join(c.dir, "config.yaml"),
		archive.PausePointEnv+"=restore-write:7:"+pause), c.env...)
	var fout bytes.Buffer
	first.Stdout, first.Stderr = &fout, &fout
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	t.Cleanup(func() { first.Process.Kill() })
	waitForFile(t, filepath.Join(pause, "reached"), done, &fout)
	for i := range 5 {
		waitForFile(t, filepath.Join(target, "d", fmt.Sprintf("f%02d", i)), done, &fout)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("the first restore was not killed: %v\n%s", err, fout.String())
	}

	res := c.run(nil, args...)
	if res.code != 0 {
		t.Fatalf("rerun of the killed restore exited %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// "..., 5.0 MiB fetched from the vault, 5 files already in place (not fetched again)."
	var mib float64
	var present int
	m := regexp.MustCompile(`, ([0-9.]+) MiB fetched from the vault, ([0-9]+) files already in place`).FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("the rerun does not say what it fetched and kept:\n%s", res.stdout)
	}
	mib, _ = strconv.ParseFloat(m[1], 64)
	present, _ = strconv.Atoi(m[2])
	fetched := int64(mib * (1 << 20))
	t.Logf("the point's packs hold %d bytes; the rerun fetched %s MiB with %d of 10 files in place", packBytes, m[1], present)
	if fetched <= 0 || fetched >= packBytes*3/4 {
		t.Errorf("the rerun fetched %d bytes, want more than 0 and well under the point's %d", fetched, packBytes)
	}
	if present < 5 || !strings.Contains(res.stdout, ": 10 files") {
		t.Errorf("rerun: want 10 files, at least 5 already in place:\n%s", res.stdout)
	}
	compareDirs(t, src, target)
	ents, _ := os.ReadDir(filepath.Join(target, "d"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tapeless-") {
			t.Errorf("the rerun left %s behind", e.Name())
		}
	}
}
