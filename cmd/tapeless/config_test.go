package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadConfigRefusesUnknownKeys: a mistyped key used to be ignored
// silently (a 'retenton:' meant the default retention); now it is an error
// with its position and, when a known key is close, the likely one.
func TestLoadConfigRefusesUnknownKeys(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
		noHint           bool
	}{
		{"top level", "store: /srv/store\nstaging: /srv/staging\nthrottle: \"\"\nproxy: \"\"\nserver: host1\nsources: []\nretenton:\n  local: {keep_within: 1d}\n",
			"unknown key retenton at line 7, column 1: did you mean retention?", false},
		{"nested flow", "store: /s\nretention:\n  local: {keep_within: 14d, keep_lst: 2}\n",
			"unknown key keep_lst at line 3, column 29: did you mean keep_last?", false},
		{"in a list", "store: /s\nsources:\n  - name: home\n    path: /home\n    exclued: ['*.tmp']\n",
			"unknown key exclued at line 5, column 5: did you mean exclude?", false},
		{"vault section", "store: /s\nvault:\n  name: v\n  key_fingerprnt: abc\n",
			"unknown key key_fingerprnt at line 4, column 3: did you mean key_fingerprint?", false},
		{"nothing close", "store: /s\ncolour: blue\n", "unknown key colour at line 2, column 1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeConfig(t, c.text)
			_, err := loadConfig(p)
			if err == nil {
				t.Fatalf("loadConfig accepted an unknown key:\n%s", c.text)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("loadConfig error %q, want it to name %s and say %q", err, p, c.want)
			}
			if c.noHint && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("loadConfig suggested a key far from the typo: %v", err)
			}
		})
	}
}

// TestDocumentedConfigsLoad: the design's config sketch, the README's
// retention block and what register and configure write all load.
func TestDocumentedConfigsLoad(t *testing.T) {
	sketch := `store: /var/lib/tapeless/store
staging: /var/lib/tapeless/staging
throttle: "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"
retention:
  local: {keep_within: 14d, keep_last: 2}          # younger or newest stay on disk
  vault: {daily: 30, weekly: 12, monthly: 24, yearly: 10}
sources:
  - {name: home, path: /home, schedule: "0 1 * * *", exclude: ["*.tmp"]}
jobs: {offload: "0 3 * * *", prune: "0 5 * * 0", verify: "0 6 1 * *"}
`
	c, err := loadConfig(writeConfig(t, sketch))
	if err != nil {
		t.Fatalf("design sketch: %v", err)
	}
	if c.Retention.Local.KeepLast != 2 || len(c.Sources) != 1 || c.Sources[0].Exclude[0] != "*.tmp" || c.Jobs.Verify != "0 6 1 * *" {
		t.Errorf("design sketch loaded as %+v", c)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```yaml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README has no yaml block")
	}
	for _, blk := range blocks {
		blk, _, _ = strings.Cut(blk, "```")
		if _, err := loadConfig(writeConfig(t, blk)); err != nil {
			t.Errorf("README yaml block: %v\n%s", err, blk)
		}
	}
	if _, err := loadConfig(writeConfig(t, "")); err != nil {
		t.Errorf("empty config: %v", err)
	}

	s := newSession(t)
	registered(t, s, "a-registered-passphrase")
	s.ok("configure", "--throttle", "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited", "--proxy", "http://proxy:3128")
	if _, err := loadConfig(s.config); err != nil {
		t.Errorf("config written by register and configure: %v", err)
	}
}
