package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// browseEnv is a server registered to an LRS file:// vault.
type browseEnv struct {
	s          *session
	dir, pass  string
	vaultDir   string
	src        string
	first, sec string // point IDs
}

func newBrowseEnv(t *testing.T) *browseEnv {
	t.Helper()
	s := newSession(t)
	e := &browseEnv{s: s, dir: t.TempDir()}
	url, vaultDir, creds := fileVault(t, s, "browse")
	_ = url
	e.vaultDir = vaultDir
	e.pass = writeFile(t, filepath.Join(e.dir, "pass"), cliTestPassphrase+"\n")
	s.ok("register", "--credentials", creds, "--passphrase-file", e.pass, "--store", filepath.Join(e.dir, "store"), "--server", "b1")
	e.src = filepath.Join(e.dir, "src")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, compressible
	writeTree(t, e.src, map[string]string{"etc/app.conf": "port=1", "etc/old.conf": "x", "data/big.log": big, "notes.txt": "n"})
	e.first = e.backup(t)
	writeTree(t, e.src, map[string]string{"etc/app.conf": "port=2", "etc/new.conf": "y"})
	os.Remove(filepath.Join(e.src, "etc/old.conf"))
	os.Chmod(filepath.Join(e.src, "notes.txt"), 0o600)
	e.sec = e.backup(t)
	return e
}

func (e *browseEnv) backup(t *testing.T) string {
	t.Helper()
	var sum struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(e.s.ok("--json", "backup", e.src, "--name", "app")), &sum); err != nil || sum.ID == "" {
		t.Fatalf("backup --json: %v", err)
	}
	return sum.ID
}

func TestLsFindDiffLocalAndVault(t *testing.T) {
	e := newBrowseEnv(t)
	pf := "--passphrase-file=" + e.pass
	check := func(tier string) {
		t.Helper()
		out := e.s.ok("ls", "latest", "etc", pf)
		for _, want := range []string{"etc/app.conf", "etc/new.conf", "-rw-r--r--"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: ls latest etc lacks %q:\n%s", tier, want, out)
			}
		}
		if strings.Contains(out, "notes.txt") || strings.Contains(out, "old.conf") {
			t.Errorf("%s: ls latest etc lists entries outside etc or of the older point:\n%s", tier, out)
		}
		var ls lsJSON
		if err := json.Unmarshal([]byte(e.s.ok("--json", "ls", e.first[:10], pf)), &ls); err != nil || len(ls.Entries) != 6 || ls.ID != e.first {
			t.Errorf("%s: ls --json of the first point: %v, %d entries of %s, want 6 (etc, data and 4 files) of %s", tier, err, len(ls.Entries), ls.ID, e.first)
		}

		var fj findJSON
		if err := json.Unmarshal([]byte(e.s.ok("--json", "find", "*.conf", pf)), &fj); err != nil {
			t.Fatal(err)
		}
		found := fj.Matches
		byPoint := map[string][]string{}
		for _, f := range found {
			byPoint[f.ID] = append(byPoint[f.ID], f.Path)
			if f.Tier != tier {
				t.Errorf("find reports tier %q, want %q", f.Tier, tier)
			}
		}
		if got := strings.Join(byPoint[e.first], ","); got != "etc/app.conf,etc/old.conf" {
			t.Errorf("%s: find *.conf in the first point = %s", tier, got)
		}
		if got := strings.Join(byPoint[e.sec], ","); got != "etc/app.conf,etc/new.conf" {
			t.Errorf("%s: find *.conf in the second point = %s", tier, got)
		}

		out = e.s.ok("diff", e.first[:10], "latest:app", pf)
		for _, want := range []string{"M  etc/app.conf", "+  etc/new.conf", "-  etc/old.conf", "U  notes.txt", "1 added, 1 removed, 1 changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: diff lacks %q:\n%s", tier, want, out)
			}
		}
		if strings.Contains(out, "data/big.log") {
			t.Errorf("%s: diff lists an unchanged file:\n%s", tier, out)
		}
	}
	check("local")

	// Offloaded: the same answers from the vault, fetching tree data only.
	e.s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	check("vault")
	code, _, errOut := e.s.run("ls", "latest", pf)
	var packBytes int64
	filepath.Walk(filepath.Join(e.vaultDir, "vaults", "browse", "packs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			packBytes += fi.Size()
		}
		return nil
	})
	if code != exitOK || !strings.Contains(errOut, "of tree data from vault browse") {
		t.Errorf("ls of a vault point: exit %d, stderr %q; want it to say what it fetched", code, errOut)
	}
	var pl pointsJSON
	json.Unmarshal([]byte(e.s.ok("--json", "points")), &pl)
	pts := pl.Points
	if len(pts) != 2 || pts[0].Tier != "vault" {
		t.Fatalf("points after offload: %+v", pts)
	}
	t.Logf("vault packs hold %d bytes; ls said: %s", packBytes, strings.TrimSpace(errOut))

	// Bad input says what is wrong.
	e.s.fails(exitUsage, "invalid pattern", "find", "[", pf)
	e.s.fails(exitUsage, "not in recovery point", "ls", "latest", "no/such/dir", pf)
	e.s.fails(exitError, "no such recovery point", "diff", "ffffff", "latest", pf)
}
