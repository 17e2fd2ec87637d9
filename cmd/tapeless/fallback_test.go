package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A restore whose every object falls back to the secondary copy says so
// once, with the reason, and then how many more did — not once per object.
func TestFallbackNotedOncePerRun(t *testing.T) {
	s := newSession(t)
	dir := t.TempDir()
	primary, secondary := filepath.Join(dir, "primary"), filepath.Join(dir, "secondary")
	s.ok("vault", "create", "fb", "--url", fileURL(primary), "--secondary-url", fileURL(secondary))
	creds := filepath.Join(dir, "fb.VaultCredentials")
	s.ok("vault", "credentials", "fb", "--url", fileURL(primary), "-o", creds)
	pass := writeFile(t, filepath.Join(dir, "pass"), cliTestPassphrase+"\n")
	s.ok("register", "--credentials", creds, "--passphrase-file", pass, "--store", filepath.Join(dir, "store"), "--server", "fb1")
	src := filepath.Join(dir, "src")
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d"} {
		files[n+".txt"] = strings.Repeat(n, 1000)
	}
	writeTree(t, src, files)
	for range 3 { // three points: several index objects and packs
		s.ok("backup", src, "--name", "fb")
		writeTree(t, src, map[string]string{"more.txt": strings.Repeat("x", len(files)*1000)})
		files["more.txt"] = strings.Repeat("x", len(files)*1000)
	}
	s.ok("offload", "--keep-within", "0s", "--keep-last", "0")

	// Damage every pack and index object on the primary copy.
	damaged := 0
	filepath.Walk(filepath.Join(primary, "vaults", "fb"), func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(filepath.Join(primary, "vaults", "fb"), p)
		if err == nil && fi.Mode().IsRegular() && (strings.HasPrefix(rel, "packs/") || strings.HasPrefix(rel, "index/")) {
			os.Chmod(p, 0o644)
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				f.WriteAt([]byte("XXXX"), 8)
				f.Close()
				damaged++
			}
		}
		return nil
	})
	if damaged < 3 {
		t.Fatalf("damaged %d objects, want several", damaged)
	}
	target := filepath.Join(dir, "restored")
	code, _, errOut := s.run("restore", "latest", "--target", target, "--passphrase-file", pass)
	if code != exitOK {
		t.Fatalf("restore from the secondary exited %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, "primary copy failed"); n != 1 {
		t.Errorf("restore noted %d fallbacks, want 1 and a count:\n%s", n, errOut)
	}
	if !strings.Contains(errOut, "more reads fell back to the secondary copy") {
		t.Errorf("restore does not say how many more reads fell back:\n%s", errOut)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(target, name)); err != nil || string(got) != want {
			t.Errorf("%s restored as %q (%v)", name, got, err)
		}
	}
}
