package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzLoadConfig: a config file that loads saves to one that loads to the
// same config, and saving that again writes the same bytes.
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("../../docs/tapeless.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("store: /var/lib/tapeless\nthrottle: work=Mon-Fri 08:00-18:00 2MiB/s\nretention:\n  local:\n    keep_within: 14d\n    keep_last: 2\n"))
	f.Add([]byte("store: s\nvault:\n  name: offsite\n  url: s3://h/b\n  replication: GRS\nsources:\n  - name: docs\n    path: /srv/docs\n    exclude: ['*.tmp']\n"))
	f.Add([]byte("retenton: {}\n"))
	f.Add([]byte(""))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := filepath.Join(dir, "in.yaml")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(in)
		if err != nil {
			return
		}
		out := filepath.Join(dir, "out.yaml")
		if err := saveConfig(out, c); err != nil {
			t.Fatalf("a config that loads does not save: %v", err)
		}
		c2, err := loadConfig(out)
		if err != nil {
			saved, _ := os.ReadFile(out)
			t.Fatalf("a saved config does not load: %v\n%s", err, saved)
		}
		c.path, c2.path = "", ""
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("config changed in a save and load:\n got %+v\nwant %+v", c2, c)
		}
		first, _ := os.ReadFile(out)
		if err := saveConfig(out, c2); err != nil {
			t.Fatal(err)
		}
		if second, _ := os.ReadFile(out); string(second) != string(first) {
			t.Fatalf("saving is not stable:\n%s\n%s", first, second)
		}
	})
}

// FuzzParseDuration: a duration that parses is not negative, and its YAML
// form parses back to the same duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"14d", "2w", "36h", "1.5d", "0", "", "90m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %v, negative", s, d)
		}
		m, err := duration(d).MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := parseDuration(m.(string))
		if err != nil || d2 != d {
			t.Fatalf("parseDuration(%q) = %v, written %q, read back %v (%v)", s, time.Duration(d), m, d2, err)
		}
	})
}
