package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// savePointWithManifest stores manifest (the raw stream, header included)
// as a point's only tree blob, plus data chunks, as a hostile writer holding
// the public key could.
func savePointWithManifest(t *testing.T, s *Store, manifest string, chunks ...[]byte) ID {
	t.Helper()
	ctx := context.Background()
	refs := s.NewRefs()
	for _, c := range chunks {
		id, _, err := s.AddBlob(ctx, BlobData, c)
		if err != nil {
			t.Fatal(err)
		}
		refs.Add(ctx, BlobData, id)
	}
	tree, _, err := s.AddBlob(ctx, BlobTree, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	refs.Add(ctx, BlobTree, tree)
	id, err := s.SavePoint(ctx, PointHeader{Source: "crafted", Time: time.Now(), Tree: []ID{tree}, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestRestoreNeverEscapesTarget(t *testing.T) {
	s, k := newTreeTestStore(t)
	payload := []byte("pwned")
	sum := sha256.Sum256(payload)
	chunk := s.ChunkID(payload)
	outer := t.TempDir() // holds only "target"; anything else is an escape
	target := filepath.Join(outer, "target")
	const header = `{"format":"tapeless-manifest","version":1}` + "\n"
	file := func(p string) string {
		return fmt.Sprintf(`{"path":%q,"type":"file","mode":420,"uid":0,"gid":0,"size":5,"mtime_ns":0,"chunks":[%q],"sha256":%q}`+"\n",
			p, chunk.String(), hex.EncodeToString(sum[:]))
	}
	dir := func(p string) string {
		return fmt.Sprintf(`{"path":%q,"type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`+"\n", p)
	}
	symlink := func(p, to string) string {
		return fmt.Sprintf(`{"path":%q,"type":"symlink","mode":511,"uid":0,"gid":0,"mtime_ns":0,"target":%q}`+"\n", p, to)
	}
	cases := map[string]string{
		"dotdot":                  file("../pwned"),
		"nested dotdot":           dir("a") + file("a/../../pwned"),
		"absolute":                file(filepath.Join(outer, "pwned")),
		"absolute symlink parent": symlink("evil", outer) + file("evil/pwned"),
		"relative symlink parent": symlink("evil", "..") + file("evil/pwned"),
		"symlink then dir":        symlink("evil", outer) + dir("evil") + file("evil/pwned"),
		"file as parent":          file("f") + file("f/pwned"),
		"missing parent":          file("nodir/pwned"),
		"hard link out":           `{"path":"l","type":"file","mode":420,"uid":0,"gid":0,"mtime_ns":0,"link":"../pwned"}` + "\n",
		"duplicate":               dir("d") + dir("d"),
		"empty name":              file(""),
		"nul":                     strings.Replace(file("a\x00b"), `\x00`, `\u0000`, 1),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			id := savePointWithManifest(t, s, header+m, payload)
			r := NewReader(s.Objects(), k)
			defer r.Close()
			_, err := Restore(context.Background(), r, id, RestoreOptions{Target: target, Overwrite: true})
			if err == nil {
				t.Errorf("Restore of a crafted manifest succeeded")
			}
			t.Logf("refused: %v", err)
			// The manifest is checked whole before anything is written:
			// not even the target is created.
			if got := listDir(t, outer); len(got) != 0 {
				t.Fatalf("refused restore wrote %q into %s", got, outer)
			}
		})
	}

	// A symlink the target already has is not followed either, with or
	// without Overwrite.
	id := savePointWithManifest(t, s, header+dir("pre")+file("pre/pwned"), payload)
	for _, overwrite := range []bool{false, true} {
		os.RemoveAll(target)
		os.MkdirAll(target, 0o755)
		if err := os.Symlink(outer, filepath.Join(target, "pre")); err != nil {
			t.Fatal(err)
		}
		r := NewReader(s.Objects(), k)
		_, err := Restore(context.Background(), r, id, RestoreOptions{Target: target, Overwrite: overwrite})
		r.Close()
		if !overwrite && !errors.Is(err, fs.ErrExist) {
			t.Errorf("Restore through an existing symlink without Overwrite: err = %v, want ErrExist", err)
		}
		if overwrite && err != nil {
			t.Errorf("Restore replacing an existing symlink: %v", err)
		}
		if got := listDir(t, outer); len(got) != 1 || got[0] != "target" {
			t.Fatalf("restore (overwrite=%v) wrote through a symlink: %q in %s", overwrite, got, outer)
		}
	}
}

func TestRestoreWrongKeyWritesNothing(t *testing.T) {
	s, _ := newTreeTestStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "f"), "content")
	sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})

	if _, err := UnwrapKeys(s.Envelope(), []byte("wrong passphrase, long enough")); err == nil {
		t.Fatal("UnwrapKeys with a wrong passphrase succeeded")
	}
	other, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	r := NewReader(s.Objects(), other)
	defer r.Close()
	_, err = Restore(context.Background(), r, sum.Point, RestoreOptions{Target: target})
	if err == nil {
		t.Fatal("Restore with another key succeeded")
	}
	if _, serr := os.Stat(target); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("Restore with a wrong key created the target (%v); err = %v", serr, err)
	}
}

// rewriteStored replaces an object with f(its bytes), bypassing write-once
// the way an attacker with disk access would.
func rewriteStored(t *testing.T, b storage.Backend, name string, f func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	var data []byte
	if err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	data = f(data)
	if err := b.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func firstObject(t *testing.T, b storage.Backend, prefix string) string {
	t.Helper()
	var name string
	b.List(context.Background(), prefix, func(i storage.Info) error {
		if name == "" {
			name = i.Name
		}
		return nil
	})
	if name == "" {
		t.Fatalf("no object under %s", prefix)
	}
	return name
}

func TestRestoreFailsOnTamperedObjects(t *testing.T) {
	flip := func(off func(int) int) func([]byte) []byte {
		return func(b []byte) []byte {
			b = bytes.Clone(b)
			b[off(len(b))] ^= 0x40
			return b
		}
	}
	cases := []struct {
		name   string
		prefix string
		change func([]byte) []byte
	}{
		{"pack byte in a blob", PacksPrefix, flip(func(n int) int { return n / 2 })},
		{"pack header byte", PacksPrefix, flip(func(int) int { return 8 })},
		{"pack truncated", PacksPrefix, func(b []byte) []byte { return b[:len(b)-100] }},
		{"index byte", IndexPrefix, flip(func(n int) int { return n - 5 })},
		{"point byte", PointsPrefix, flip(func(n int) int { return n - 5 })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, k := newTreeTestStore(t)
			src := t.TempDir()
			mustWrite(t, filepath.Join(src, "f"), strings.Repeat("some content ", 1000))
			sum := mustBackup(t, s, BackupOptions{Sources: []string{src}})
			name := firstObject(t, s.Objects(), c.prefix)
			rewriteStored(t, s.Objects(), name, c.change)
			r := NewReader(s.Objects(), k)
			defer r.Close()
			_, err := Restore(context.Background(), r, sum.Point, RestoreOptions{Target: t.TempDir()})
			if err == nil {
				t.Fatalf("Restore after tampering with %s succeeded", name)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("Restore error does not name %s: %v", name, err)
			}
		})
	}
}

func TestVerifyTrees(t *testing.T) {
	s, k := newTreeTestStore(t)
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	good := mustBackup(t, s, BackupOptions{Sources: []string{src}})

	// A point whose manifest needs a chunk that is stored nowhere.
	missing := ID{1, 2, 3}
	sum := sha256.Sum256(nil)
	bad := savePointWithManifest(t, s, `{"format":"tapeless-manifest","version":1}`+"\n"+
		fmt.Sprintf(`{"path":"f","type":"file","mode":420,"uid":0,"gid":0,"size":5,"mtime_ns":0,"chunks":[%q],"sha256":%q}`+"\n",
			missing.String(), hex.EncodeToString(sum[:])))

	points, err := s.ListPoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(s.Objects(), k)
	defer r.Close()
	var problems []VerifyProblem
	st, err := VerifyTrees(context.Background(), r, points, func(p VerifyProblem) { problems = append(problems, p) })
	if err != nil {
		t.Fatal(err)
	}
	if st.Points != 2 || st.Nodes < good.Files {
		t.Errorf("VerifyTrees stats = %+v, want 2 points and at least %d nodes", st, good.Files)
	}
	if len(problems) != 1 || problems[0].Object != PointName(bad) || !strings.Contains(problems[0].Error(), missing.String()) {
		t.Errorf("VerifyTrees problems = %v, want one naming %s and the missing chunk", problems, PointName(bad))
	}
}
