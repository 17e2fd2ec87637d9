package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// droppedListing is a real backend whose List shows nothing for the
// prefixes drop picks: a listing that comes back empty.
type droppedListing struct {
	storage.Backend
	drop func(prefix string) bool
}

func (d droppedListing) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if d.drop(prefix) {
		return nil
	}
	return d.Backend.List(ctx, prefix, fn)
}

func (d droppedListing) Unwrap() storage.Backend { return d.Backend }

// dropVaultListings makes every backend opened for an URL under vaultURL
// list nothing for the prefixes drop picks, until the test ends.
func dropVaultListings(t *testing.T, vaultURL string, drop func(prefix string) bool) {
	t.Helper()
	t.Cleanup(storage.SetOpenHookForTesting(func(url string, b storage.Backend) storage.Backend {
		if strings.HasPrefix(url, vaultURL) {
			return droppedListing{Backend: b, drop: drop}
		}
		return b
	}))
}

// listingEnv is a server registered to an LRS vault at url whose three
// points are all offloaded: the store holds none.
type listingEnv struct {
	s        *session
	url      string
	work     string
	pass     string
	archived []string
	files    map[string]string // what each point holds: file name -> content
}

func newListingEnv(t *testing.T, url string, o storage.Options, name string) *listingEnv {
	t.Helper()
	s := newSession(t)
	work := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", o.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", o.SecretKey)
	s.ok("vault", "create", name, "--url", url, "--replication", "LRS")
	creds := filepath.Join(work, name+".VaultCredentials")
	s.ok("vault", "credentials", name, "--url", url, "-o", creds)
	e := &listingEnv{s: s, url: url, work: work, pass: writeFile(t, filepath.Join(work, "pass"), "short listing passphrase\n")}
	s.ok("register", "--credentials", creds, "--passphrase-file", e.pass,
		"--store", filepath.Join(work, "store"), "--staging", filepath.Join(work, "staging"))
	src := filepath.Join(work, "src")
	e.files = map[string]string{}
	for i := range 3 {
		name, content := "f"+string(rune('a'+i)), strings.Repeat("listing ", 50*(i+1))
		writeTree(t, src, map[string]string{name: content})
		e.files[name] = content
		var sum struct {
			Point string `json:"id"`
		}
		if err := json.Unmarshal([]byte(s.ok("--json", "backup", src)), &sum); err != nil {
			t.Fatal(err)
		}
		e.archived = append(e.archived, sum.Point)
	}
	s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	return e
}

// restoreOK restores point arg and checks the newest file it must hold.
func (e *listingEnv) restoreOK(t *testing.T, arg string, i int) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "target")
	code, out, errOut := e.s.run("restore", arg, "--target", target, "--passphrase-file", e.pass)
	if code != exitOK {
		t.Fatalf("restore %s: exit %d\nstdout: %s\nstderr: %s", arg, code, out, errOut)
	}
	name := "f" + string(rune('a'+i))
	if got, err := os.ReadFile(filepath.Join(target, name)); err != nil || string(got) != e.files[name] {
		t.Errorf("restore %s: %s is %d bytes, %v; want %d bytes", arg, name, len(got), err, len(e.files[name]))
	}
}

func testShortVaultListing(t *testing.T, url string, o storage.Options) {
	t.Run("points listing empty", func(t *testing.T) {
		e := newListingEnv(t, url, o, "short-points")
		dropVaultListings(t, url, func(prefix string) bool { return strings.HasSuffix(prefix, "/points/") })
		code, out, errOut := e.s.run("--json", "points")
		var pl pointsJSON
		if err := json.Unmarshal([]byte(out), &pl); err != nil {
			t.Fatalf("points --json: %v\n%s", err, out)
		}
		rows := pl.Points
		if code != exitPartial || len(rows) != 3 || !strings.Contains(errOut, "shorter than the local catalogue: 3 of the 3 archived points") {
			t.Errorf("points --json with an empty vault listing: exit %d, %d rows\nstderr: %s\nwant exit 3, the 3 archived points, and the shortfall named", code, len(rows), errOut)
		}
		for _, r := range rows {
			if r.Tier != "vault" {
				t.Errorf("point %s has tier %s, want vault", r.ID, r.Tier)
			}
		}
		code, out, errOut = e.s.run("points")
		t.Logf("points with an empty vault listing:\n%s%s", out, errOut)
		if code != exitPartial || strings.Contains(out, "No recovery points") || !strings.Contains(out, e.archived[0][:12]) {
			t.Errorf("points with an empty vault listing: exit %d\n%s", code, out)
		}
		e.restoreOK(t, e.archived[2], 2)      // a full ID
		e.restoreOK(t, e.archived[1][:10], 1) // a prefix the catalogue knows
		// Prune still refuses to decide from the short listing.
		e.s.fails(exitError, "shorter than the local catalogue", "prune")
	})
	t.Run("all listings empty", func(t *testing.T) {
		e := newListingEnv(t, url, o, "short-all")
		dropVaultListings(t, url, func(string) bool { return true })
		code, out, errOut := e.s.run("points")
		if code != exitPartial || !strings.Contains(out, e.archived[1][:12]) || strings.Contains(out+errOut, "vault create") {
			t.Errorf("points with every vault listing empty: exit %d\nstdout: %s\nstderr: %s\nwant exit 3, the points, and no advice to create the vault", code, out, errOut)
		}
		e.restoreOK(t, e.archived[0], 0)
	})
}

// TestShortVaultListingFile: when the vault's listing comes back empty
// while the local catalogue knows archived points, points says so (exit
// 3) and reads them by name, and restore finds them by name.
func TestShortVaultListingFile(t *testing.T) {
	testShortVaultListing(t, fileURL(filepath.Join(t.TempDir(), "vault")), storage.Options{})
}

func TestShortVaultListingMinIO(t *testing.T) {
	url, o := storagetest.MinIO(t, "primary")
	testShortVaultListing(t, url, o)
}

// TestVaultPointGoneIsAnError: an archived point the vault lacks even by
// name is an error (exit 1), not "no points".
func TestVaultPointGoneIsAnError(t *testing.T) {
	e := newListingEnv(t, fileURL(filepath.Join(t.TempDir(), "vault")), storage.Options{}, "gone")
	u, err := storage.ParseURL(e.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(u.Path, "vaults", "gone", "points", e.archived[1])); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := e.s.run("points")
	if code != exitError || !strings.Contains(errOut, "not in it by name either ("+e.archived[1][:12]) || !strings.Contains(out, e.archived[0][:12]) {
		t.Errorf("points with an archived point gone: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
