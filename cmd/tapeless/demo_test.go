package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDemoScript runs scripts/demo.sh, what `make run` runs: the main job
// end to end on a temporary file:// GRS vault, ending in a restore from
// the vault that diff finds identical to testdata/sample.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the whole main job")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("no diff")
	}
	bin := buildTapeless(t)
	cmd := exec.Command("bash", "../../scripts/demo.sh", bin)
	cmd.Env = append(cmd.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"archived and removed from the store", "identical", "vault  ", "the main job ran end to end"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
