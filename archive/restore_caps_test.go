package archive

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// setCapability gives p the file capability cap_setuid+ep for real, or
// skips the test where this process may not (it needs CAP_SETFCAP and a
// file system with security xattrs).
func setCapability(t *testing.T, p string) []byte {
	t.Helper()
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("setcap is not installed")
	}
	if out, err := exec.Command(setcap, "cap_setuid+ep", p).CombinedOutput(); err != nil {
		t.Skipf("cannot set file capabilities here: %v: %s", err, out)
	}
	v, err := getXattr(p, xattrCapability)
	if err != nil {
		t.Fatalf("setcap left no %s: %v", xattrCapability, err)
	}
	return v
}

// TestRestoreDropsFileCapabilities: a file capability is as dangerous as a
// setuid bit (cap_setuid+ep is root-equivalent), so a restore drops it
// unless SpecialBits asks for it, and says how many it dropped.
func TestRestoreDropsFileCapabilities(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "bin/tool"), "#!/bin/sh\n")
	mustWrite(t, filepath.Join(src, "bin/plain"), "plain\n")
	if err := unix.Setxattr(filepath.Join(src, "bin/plain"), "user.note", []byte("kept"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	want := setCapability(t, filepath.Join(src, "bin/tool"))
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})

	dst := t.TempDir()
	rs := mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	if v, err := getXattr(filepath.Join(dst, "bin/tool"), xattrCapability); !errors.Is(err, unix.ENODATA) {
		t.Errorf("restore without SpecialBits: %s = %x (err %v), want none", xattrCapability, v, err)
	}
	if v, err := getXattr(filepath.Join(dst, "bin/plain"), "user.note"); err != nil || string(v) != "kept" {
		t.Errorf("user.note = %q (err %v), want kept: only capabilities are dropped", v, err)
	}
	if rs.CapabilitiesDropped != 1 {
		t.Errorf("CapabilitiesDropped = %d, want 1", rs.CapabilitiesDropped)
	}
	if !hasWarning(rs, "1 file capabilities not restored; use --special-bits") {
		t.Errorf("warnings %q do not count the dropped capability", rs.Warnings)
	}

	dst2 := t.TempDir()
	rs = mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst2, SpecialBits: true})
	if v, err := getXattr(filepath.Join(dst2, "bin/tool"), xattrCapability); err != nil || string(v) != string(want) {
		t.Errorf("restore with SpecialBits: %s = %x (err %v), want %x", xattrCapability, v, err, want)
	}
	if rs.CapabilitiesDropped != 0 {
		t.Errorf("with SpecialBits: CapabilitiesDropped = %d, want 0", rs.CapabilitiesDropped)
	}
}

// TestRestoreCountsDroppedSetID: set-ID bits dropped by default are
// counted the same way.
func TestRestoreCountsDroppedSetID(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := t.TempDir()
	p := filepath.Join(src, "suid")
	mustWrite(t, p, "x")
	if err := os.Chmod(p, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
	dst := t.TempDir()
	rs := mustRestore(t, s, k, sum.Point, RestoreOptions{Target: dst})
	fi, err := os.Stat(filepath.Join(dst, "suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("mode %v: setuid restored without SpecialBits", fi.Mode())
	}
	if rs.SetIDDropped != 1 || !hasWarning(rs, "1 files' setuid/setgid bits not restored; use --special-bits") {
		t.Errorf("SetIDDropped = %d, warnings %q; want 1 and a warning", rs.SetIDDropped, rs.Warnings)
	}
}

func hasWarning(rs *RestoreSummary, s string) bool {
	for _, w := range rs.Warnings {
		if strings.Contains(w, s) {
			return true
		}
	}
	return false
}
