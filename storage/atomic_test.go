package storage_test

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
)

// leftovers lists the files in dir that are not named in keep.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		known := false
		for _, k := range keep {
			known = known || e.Name() == k
		}
		if !known {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFileAtomicModes(t *testing.T) {
	for _, perm := range []fs.FileMode{0o600, 0o640, 0o644} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := storage.WriteFileAtomic(p, []byte("data"), perm); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != perm {
				t.Errorf("mode %v, want %v", got, perm)
			}
			if got := mustRead(t, p); got != "data" {
				t.Errorf("content %q, want %q", got, "data")
			}
			if left := leftovers(t, dir, "f"); len(left) != 0 {
				t.Errorf("files left beside it: %v", left)
			}
		})
	}
}

// TestWriteFileAtomicReplaces: the new file takes the name in one step (a
// new inode renamed over the old), so a reader that opened the old file
// still reads it whole, and a narrower mode applies to the new content.
func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := storage.WriteFileAtomic(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); got != "new" {
		t.Errorf("content %q, want %q", got, "new")
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after replacing a 0644 file, want 0600", st.Mode().Perm())
	}
	b := make([]byte, 64)
	n, _ := old.Read(b)
	if got := string(b[:n]); got != "old content" {
		t.Errorf("a reader of the old file read %q, want the old content whole", got)
	}
	if left := leftovers(t, dir, "config.yaml"); len(left) != 0 {
		t.Errorf("files left beside it: %v", left)
	}
}

func TestWriteNewFileAtomicNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	if err := storage.WriteNewFileAtomic(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := storage.WriteNewFileAtomic(p, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	if got := mustRead(t, p); got != "first" {
		t.Errorf("content %q, want the first write's", got)
	}
	if left := leftovers(t, dir, "config"); len(left) != 0 {
		t.Errorf("files left beside it: %v", left)
	}
}

func TestAtomicFileCloseDiscards(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	a, err := storage.CreateAtomic(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if left := leftovers(t, dir); len(left) != 0 {
		t.Errorf("a discarded write left %v", left)
	}
}

// TestHelperAtomicKilled is not a test: TestAtomicWriteKilled runs the test
// binary with it to die in the middle of replacing a file.
func TestHelperAtomicKilled(t *testing.T) {
	p := os.Getenv("TAPELESS_TEST_ATOMIC_KILLED")
	if p == "" {
		t.Skip("helper process only")
	}
	a, err := storage.CreateAtomic(p, 0o600)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	a.Write([]byte("the first half of the new"))
	a.Sync()
	os.Stdout.WriteString("written\n")
	select {}
}

// TestAtomicWriteKilled: a process killed while writing leaves the old file
// whole under its name and the partial data only in a temporary file, which
// RemoveAtomicLeftovers removes (and nothing else).
func TestAtomicWriteKilled(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key-envelope")
	if err := os.WriteFile(p, []byte("old envelope"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, ".tapeless-tmp-public-keys-123")
	if err := os.WriteFile(other, []byte("another file's leftover"), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAtomicKilled$")
	cmd.Env = append(os.Environ(), "TAPELESS_TEST_ATOMIC_KILLED="+p)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if got := mustRead(t, p); got != "old envelope" {
		t.Errorf("after the kill the file holds %q, want the old content whole", got)
	}
	left := leftovers(t, dir, "key-envelope", filepath.Base(other))
	if len(left) != 1 || !strings.HasPrefix(left[0], ".tapeless-tmp-key-envelope-") {
		t.Fatalf("leftovers %v, want one .tapeless-tmp-key-envelope-* file", left)
	}
	if err := storage.RemoveAtomicLeftovers(p); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, dir, "key-envelope", filepath.Base(other)); len(left) != 0 {
		t.Errorf("RemoveAtomicLeftovers left %v", left)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("RemoveAtomicLeftovers removed another file's leftover: %v", err)
	}
}
