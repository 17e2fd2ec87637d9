package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
)

// randomTree writes n files of random bytes (incompressible, so each
// backup of new content stores something) under dir.
func randomTree(t *testing.T, dir string, seed uint64, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	for i := range n {
		b := make([]byte, 20<<10+r.IntN(40<<10))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *session) backupJSON(args ...string) archive.BackupSummary {
	s.t.Helper()
	out := s.ok(append([]string{"--json", "backup"}, args...)...)
	var sum archive.BackupSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		s.t.Fatalf("backup --json printed %q: %v", out, err)
	}
	return sum
}

// TestLostPackIsStoredAgainAndReported: a pack file removed from the store
// behind tapeless's back. The next backup must store that data again
// instead of pointing at the lost pack (with or without the file cache),
// verify must name the pack and the point it hurts, and offload must go
// on with every other point, report the damaged one (exit 3) and keep it.
func TestLostPackIsStoredAgainAndReported(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-cache=%v", noCache), func(t *testing.T) {
			s := newSession(t)
			const pass = "lost pack test passphrase"
			dir := registered(t, s, pass)
			store := filepath.Join(dir, "store")
			setClock(t, time.Now().Add(48*time.Hour)) // every point is old enough to offload

			srcA, srcB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			randomTree(t, srcA, 1, 6)
			randomTree(t, srcB, 2, 6)
			first := s.backupJSON(srcA, "--name", "a")
			other := s.backupJSON(srcB, "--name", "b")

			// The largest pack holds file data; packs are listed by ID, so
			// the first may hold only tree blobs.
			h := pointHeader(t, store, first.Point)
			big := h.Packs[0]
			for _, r := range h.Packs {
				if r.Size > big.Size {
					big = r
				}
			}
			lost := filepath.Join(store, "objects", filepath.FromSlash(archive.PackName(big.Pack)))
			if err := os.Remove(lost); err != nil {
				t.Fatal(err)
			}
			lostName := filepath.Base(lost)

			args := []string{srcA, "--name", "a"}
			if noCache {
				args = append(args, "--no-cache")
			}
			code, out, errOut := s.run(append([]string{"--json", "backup"}, args...)...)
			var again archive.BackupSummary
			if err := json.Unmarshal([]byte(out), &again); err != nil {
				t.Fatalf("backup --json after the loss exited %d, printed %q (%s): %v", code, out, errOut, err)
			}
			if again.NewStoredBytes == 0 || again.FilesRead == 0 {
				t.Errorf("backup after the loss stored %d new bytes, read %d files; want the lost data stored again", again.NewStoredBytes, again.FilesRead)
			}
			if code != exitPartial || !strings.Contains(errOut, lostName) {
				t.Errorf("backup after the loss exited %d, stderr %q; want %d naming the missing pack %s", code, errOut, exitPartial, lostName)
			}
			target := filepath.Join(t.TempDir(), "restored")
			s.ok("restore", again.Point.String(), "--target", target, "--passphrase-file", writeFile(t, filepath.Join(dir, "pass2"), pass))
			for i := range 6 {
				name := fmt.Sprintf("f%02d", i)
				want, _ := os.ReadFile(filepath.Join(srcA, name))
				got, err := os.ReadFile(filepath.Join(target, name))
				if err != nil || string(got) != string(want) {
					t.Errorf("restored %s of the new point: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
				}
			}

			// verify names the lost pack and the point that needs it, and
			// only that point.
			code, _, errOut = s.run("verify")
			if code != exitError || !strings.Contains(errOut, lostName) || !strings.Contains(errOut, first.Point.String()) {
				t.Errorf("verify exited %d, stderr %q; want 1 naming pack %s and point %s", code, errOut, lostName, first.Point)
			}
			for _, id := range []archive.ID{again.Point, other.Point} {
				if strings.Contains(errOut, id.String()) {
					t.Errorf("verify blames intact point %s: %s", id, errOut)
				}
			}

			// offload: the others go, the damaged one is named and stays.
			for range 2 {
				code, out, errOut = s.run("offload", "--keep-within", "0s", "--keep-last", "0")
				if code != exitPartial || !strings.Contains(out+errOut, first.Point.String()[:12]) {
					t.Errorf("offload exited %d, stdout %q, stderr %q; want %d naming damaged point %s", code, out, errOut, exitPartial, first.Point)
				}
			}
			var pts pointsJSON
			if err := json.Unmarshal([]byte(s.ok("points", "--json")), &pts); err != nil {
				t.Fatal(err)
			}
			tiers := map[string]string{}
			for _, p := range pts.Points {
				tiers[p.ID] = p.Tier
			}
			if tiers[first.Point.String()] != "local" {
				t.Errorf("damaged point %s is %q after offload, want kept local (points: %+v)", first.Point, tiers[first.Point.String()], pts)
			}
			for _, id := range []archive.ID{again.Point, other.Point} {
				if tiers[id.String()] != "vault" {
					t.Errorf("point %s is %q after offload, want vault (points: %+v)", id, tiers[id.String()], pts)
				}
			}
		})
	}
}

// pointHeader reads a point's clear header from the store.
func pointHeader(t *testing.T, store string, id archive.ID) archive.PointHeader {
	t.Helper()
	v, err := archive.OpenStoreView(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hs, err := archive.ListPoints(t.Context(), v.Objects)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.ID == id {
			return h
		}
	}
	t.Fatalf("point %s not in the store", id)
	return archive.PointHeader{}
}
