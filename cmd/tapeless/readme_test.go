package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlock returns the first ```sh block of the README section that
// starts with heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("section %q has no sh block", heading)
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatalf("unterminated sh block in %q", heading)
	}
	return s[:end]
}

// TestREADMEVaultWalkthrough runs the README's create → credentials →
// register → configure walk-through with a freshly built tapeless, in a
// temporary folder instead of /tmp/tapeless-demo, to hold the promise that
// it works as printed.
func TestREADMEVaultWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tapeless and runs the real key derivation")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := readmeBlock(t, "## Vaults and registration")
	if !strings.Contains(script, "/tmp/tapeless-demo") || !strings.Contains(script, "tapeless register") {
		t.Fatalf("walk-through changed shape:\n%s", script)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "tapeless"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	demo := filepath.Join(dir, "demo")
	script = strings.ReplaceAll(script, "/tmp/tapeless-demo", demo)
	cmd := exec.Command(bash, "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", envPassphraseFile+"=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README walk-through failed: %v\n%s", err, out)
	}
	for _, want := range []string{`Created vault "demo" (GRS)`, "demo_", "Registered server", "1 registered", "Changed: passphrase"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walk-through output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"config.yaml", "passphrase", "store/key-envelope"} {
		if m := fileMode(t, filepath.Join(demo, f)); m != 0o600 {
			t.Errorf("%s mode %o, want 600", f, m)
		}
	}
}
