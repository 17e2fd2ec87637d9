package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// TestOffloadDuringLocalRestore runs `offload --keep-within 0s --keep-last
// 0` while a restore of the local point it offloads is writing (the
// restore paused at its first entry, after every check): the restore
// finishes byte-identical, the offload archives the point but leaves the
// local copy and its packs and says why, and the next offload cleans up.
func TestOffloadDuringLocalRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildTapeless(t)
	root := t.TempDir()
	c := newOlCLI(t, bin, "file://"+filepath.Join(root, "primary"), "file://"+filepath.Join(root, "secondary"), storage.Options{})
	id, src := c.backup(1)

	pause := t.TempDir()
	target := filepath.Join(c.dir, "restored")
	restore := exec.Command(c.bin, "restore", id.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	restore.Env = append(append(os.Environ(), "TAPELESS_CONFIG="+filepath.Join(c.dir, "config.yaml"),
		archive.PausePointEnv+"=restore-write:1:"+pause), c.env...)
	var rout bytes.Buffer
	restore.Stdout, restore.Stderr = &rout, &rout
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- restore.Wait() }()
	t.Cleanup(func() {
		restore.Process.Kill() // ended by now unless the test failed early
		os.WriteFile(filepath.Join(pause, "continue"), nil, 0o600)
	})
	waitForFile(t, filepath.Join(pause, "reached"), done, &rout)

	r := c.run(nil, "--json", "offload", "--keep-within", "0s", "--keep-last", "0")
	if r.code != 0 {
		t.Fatalf("offload during a restore exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var res offloadJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Result == nil {
		t.Fatalf("offload --json: %v\n%s", err, r.stdout)
	}
	if len(res.Result.Archived) != 0 || !slices.Contains(res.Result.LocalDeleteDeferred, id) || res.Result.LocalCleanupDeferred == "" {
		t.Errorf("offload during a restore: archived %v, deferred %v (%q); want %s archived but kept locally, and why",
			res.Result.Archived, res.Result.LocalDeleteDeferred, res.Result.LocalCleanupDeferred, id)
	}
	c.checkInvariants("after the offload during the restore", []archive.ID{id})

	if err := os.WriteFile(filepath.Join(pause, "continue"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("restore with an offload running meanwhile: %v\n%s", err, rout.String())
	}
	compareDirs(t, src, target)

	// Nobody reads now: the next offload deletes the local copy and
	// collects its packs.
	r = c.run(nil, "--json", "offload", "--keep-within", "0s", "--keep-last", "0")
	if r.code != 0 {
		t.Fatalf("second offload exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(completePoints(t, c.local())); n != 0 {
		t.Errorf("%d points still local after the second offload", n)
	}
	var packs int
	c.local().List(context.Background(), archive.PacksPrefix, func(storage.Info) error { packs++; return nil })
	if packs != 0 {
		t.Errorf("%d local packs left after the second offload", packs)
	}
	c.checkInvariants("after the second offload", []archive.ID{id})
}

// waitForFile waits until p exists; the process behind done must not end
// first.
func waitForFile(t *testing.T, p string, done chan error, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the process ended (%v) before it reached its pause point\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear in time", p)
		}
	}
}
