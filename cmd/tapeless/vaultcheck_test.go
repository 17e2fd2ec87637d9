package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// rewrite replaces an object of b with f(its bytes): objects are write-once,
// so the damage is a remove and a save, as a failing disk or a careless
// administrator would leave it.
func rewrite(t *testing.T, b storage.Backend, name string, f func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	var data []byte
	if err := b.Load(ctx, name, 0, -1, func(r io.Reader) error { var err error; data, err = io.ReadAll(r); return err }); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	data = f(data)
	if err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error { out = append(out, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyVaultAndRepairMinIO: damage on either MinIO copy is found by
// verify --vault with the copy and the points it hurts, vault repair mends
// it, and an object bad on both copies is refused and named.
func TestVerifyVaultAndRepairMinIO(t *testing.T) {
	purl, po := storagetest.MinIO(t, "primary")
	surl, so := storagetest.MinIO(t, "secondary")
	s := newSession(t)
	work := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", po.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", po.SecretKey)
	s.ok("vault", "create", "scrub", "--url", purl, "--secondary-url", surl)
	creds := filepath.Join(work, "scrub.VaultCredentials")
	s.ok("vault", "credentials", "scrub", "--url", purl, "-o", creds)
	pass := writeFile(t, filepath.Join(work, "pass"), cliTestPassphrase+"\n")
	s.ok("register", "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(work, "store"), "--server", "scrub1")
	src := filepath.Join(work, "src")
	var ids []string
	for i := range 3 {
		writeTree(t, src, map[string]string{"f" + string(rune('a'+i)): strings.Repeat("scrub me ", 3000*(i+1))})
		var sum struct {
			ID string `json:"id"`
		}
		json.Unmarshal([]byte(s.ok("--json", "backup", src, "--name", "scrub")), &sum)
		ids = append(ids, sum.ID)
	}
	s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	s.ok("verify", "--vault", "--read-data", "--passphrase-file", pass)

	// Two runs of a 50 % scrub read every pack of each copy: the second
	// continues where the first stopped.
	read := map[string]int{}
	for range 2 {
		var vj vaultVerifyJSON
		if err := json.Unmarshal([]byte(s.ok("--json", "verify", "--vault", "--read-data", "--subset", "50")), &vj); err != nil {
			t.Fatal(err)
		}
		for _, c := range vj.Copies {
			read[c.Copy] += c.Stats.PacksRead
			if c.Stats.PacksRead >= c.Stats.Packs {
				t.Errorf("a 50%% scrub of the %s copy read %d of %d packs", c.Copy, c.Stats.PacksRead, c.Stats.Packs)
			}
		}
	}
	if !exists(filepath.Join(work, "store", "scrub-scrub.json")) {
		t.Error("the scrub position is not kept in the store's folder")
	}

	ctx := context.Background()
	open := func(url string, o storage.Options) storage.Backend {
		b, err := storage.Open(ctx, url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return storage.Prefixed(b, "vaults/scrub")
	}
	prim, sec := open(purl, po), open(surl, so)
	packs, indexes := names(t, prim, archive.PacksPrefix), names(t, prim, archive.IndexPrefix)
	if len(packs) < 3 || len(indexes) < 3 {
		t.Fatalf("vault holds %d packs and %d index objects, want 3 each", len(packs), len(indexes))
	}
	for c, n := range read {
		if n < len(packs) {
			t.Errorf("two 50%% scrubs of the %s copy read %d packs, want all %d", c, n, len(packs))
		}
	}
	rewrite(t, prim, packs[0], func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	if err := sec.Remove(ctx, packs[1]); err != nil {
		t.Fatal(err)
	}
	rewrite(t, prim, indexes[2], func(b []byte) []byte { return b[:len(b)-10] })

	code, out, errOut := s.run("--json", "verify", "--vault", "--read-data")
	var vj vaultVerifyJSON
	if err := json.Unmarshal([]byte(out), &vj); err != nil || code != exitError || vj.OK {
		t.Fatalf("verify --vault after damage: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	found := map[string][]archive.ID{}
	for _, p := range vj.Problems {
		found[p.Copy+" "+p.Object] = p.Points
	}
	for _, want := range []string{"primary " + packs[0], "secondary " + packs[1], "primary " + indexes[2]} {
		pts, ok := found[want]
		if !ok || len(pts) == 0 || !slices.ContainsFunc(pts, func(id archive.ID) bool { return slices.Contains(ids, id.String()) }) {
			t.Errorf("verify --vault: %s reported %v with points %v; want it reported with the points needing it", want, ok, pts)
		}
	}
	code, out, errOut = s.run("vault", "repair")
	if code != exitOK || !strings.Contains(out, "3 objects repaired") {
		t.Fatalf("vault repair: exit %d\n%s\n%s", code, out, errOut)
	}
	s.ok("verify", "--vault", "--read-data", "--passphrase-file", pass)
	for i, id := range ids {
		target := filepath.Join(t.TempDir(), "r")
		s.ok("restore", id[:12], "--target", target, "--passphrase-file", pass)
		if got := mustRead(t, filepath.Join(target, "f"+string(rune('a'+i)))); len(got) != 3000*(i+1)*len("scrub me ") {
			t.Errorf("point %d restored with %d bytes", i, len(got))
		}
	}

	// The same pack bad on both copies: refused, naming the points lost.
	rewrite(t, prim, packs[2], func(b []byte) []byte { b[10] ^= 1; return b })
	rewrite(t, sec, packs[2], func(b []byte) []byte { b[20] ^= 1; return b })
	code, _, errOut = s.run("vault", "repair")
	if code != exitError || !strings.Contains(errOut, packs[2]) || !strings.Contains(errOut, "every copy") || !strings.Contains(errOut, "points needing it") {
		t.Errorf("vault repair with a pack bad on both copies: exit %d\n%s", code, errOut)
	}
}
