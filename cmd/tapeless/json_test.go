package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var updateJSON = flag.Bool("update", false, "rewrite the golden files under testdata/json")

// jsonCase is one command line whose --json output is pinned by a golden
// file: its shape (key names, value kinds, enum values) and its exit code.
type jsonCase struct {
	name string   // golden file testdata/json/NAME.json
	args []string // without --json
	code int      // expected exit code
}

// TestJSONContract runs every command that accepts --json, once where it
// succeeds and once where it fails, checks the rules of docs/JSON.md on
// what it prints, and compares the shape with a golden file (-update
// rewrites them).
func TestJSONContract(t *testing.T) {
	s := newSession(t)
	// Local time away from UTC, so that a time printed in it shows.
	oldLocal := time.Local
	time.Local = time.FixedZone("UTC+1:30", 90*60)
	t.Cleanup(func() { time.Local = oldLocal })
	dir := t.TempDir()
	primary, secondary := filepath.Join(dir, "primary"), filepath.Join(dir, "secondary")
	purl, surl := fileURL(primary), fileURL(secondary)
	creds := filepath.Join(dir, "demo.VaultCredentials")
	pass := filepath.Join(dir, "passphrase")
	store := filepath.Join(dir, "store")
	src := filepath.Join(dir, "src")
	writeTree(t, src, map[string]string{"etc/app.conf": "port=1", "etc/old.conf": "x", "notes.txt": "n",
		"data/big.log": strings.Repeat("0123456789abcdef", 1<<14)})
	if err := os.Symlink("notes.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}

	var ids []string
	backup := func(t *testing.T, out []byte) {
		var sum struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &sum); err != nil || sum.ID == "" {
			t.Errorf("backup --json printed no id: %s", out)
		}
		ids = append(ids, sum.ID)
	}
	// Each step depends on the ones before it: a vault, a registration, two
	// points (one of them offloaded), then everything else.
	steps := []struct {
		jsonCase
		before func(t *testing.T)
		after  func(t *testing.T, out []byte)
	}{
		{jsonCase: jsonCase{"version", []string{"version"}, exitOK}},
		{jsonCase: jsonCase{"version.error", []string{"version", "extra"}, exitUsage}},
		{jsonCase: jsonCase{"vault-create", []string{"vault", "create", "demo", "--url", purl, "--secondary-url", surl}, exitOK}},
		{jsonCase: jsonCase{"vault-create.error", []string{"vault", "create", "1demo", "--url", purl, "--replication", "LRS"}, exitUsage}},
		{jsonCase: jsonCase{"vault-credentials", []string{"vault", "credentials", "demo", "--url", purl, "-o", creds}, exitOK}},
		{jsonCase: jsonCase{"vault-credentials.error", []string{"vault", "credentials", "nosuch", "--url", purl}, exitError}},
		{jsonCase: jsonCase{"vault-set-replication", []string{"vault", "set-replication", "demo", "GRS", "--url", purl, "--secondary-url", surl}, exitOK}},
		{jsonCase: jsonCase{"vault-set-replication.error", []string{"vault", "set-replication", "demo", "RAID", "--url", purl}, exitUsage}},
		{jsonCase: jsonCase{"vault-list", []string{"vault", "list", "--url", purl}, exitOK}},
		{jsonCase: jsonCase{"vault-list.error", []string{"vault", "list"}, exitUsage}},
		{jsonCase: jsonCase{"vault-status.error", []string{"vault", "status"}, exitError}},
		{jsonCase: jsonCase{"register.error", []string{"register", "--credentials", filepath.Join(dir, "nosuch.VaultCredentials"), "--passphrase-file", pass}, exitError}},
		{jsonCase: jsonCase{"register", []string{"register", "--credentials", creds, "--generate-passphrase", pass, "--store", store,
			"--staging", filepath.Join(dir, "staging"), "--server", "s1"}, exitOK}},
		{jsonCase: jsonCase{"vault-status", []string{"vault", "status"}, exitOK}},
		{jsonCase: jsonCase{"configure", []string{"configure", "--throttle", "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"}, exitOK}},
		{jsonCase: jsonCase{"configure.error", []string{"configure", "--throttle", "fast"}, exitUsage}},
		{jsonCase: jsonCase{"backup", []string{"backup", src, "--name", "app"}, exitOK}, after: backup},
		{jsonCase: jsonCase{"backup.error", []string{"backup", filepath.Join(dir, "nosuch")}, exitError}},
		{jsonCase: jsonCase{"config-check", []string{"config", "check"}, exitOK}},
		{before: func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("store: relative\njobs: {verify: \"not a cron\"}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, jsonCase: jsonCase{"config-check.error", []string{"--config", filepath.Join(dir, "bad.yaml"), "config", "check"}, exitError}},
		{jsonCase: jsonCase{"source-add", []string{"source", "add", "app-src", src, "--exclude", "*.log", "--schedule", "@daily"}, exitOK}},
		{jsonCase: jsonCase{"source-add.error", []string{"source", "add", "app-src", src}, exitUsage}},
		{jsonCase: jsonCase{"source-list", []string{"source", "list"}, exitOK}},
		{jsonCase: jsonCase{"source-list.error", []string{"source", "list", "extra"}, exitUsage}},
		{jsonCase: jsonCase{"source-remove", []string{"source", "remove", "app-src"}, exitOK}},
		{jsonCase: jsonCase{"source-remove.error", []string{"source", "remove", "app-src"}, exitError}},
		{jsonCase: jsonCase{"offload-dry-run", []string{"offload", "--dry-run", "--keep-within", "0s", "--keep-last", "0"}, exitOK}},
		{jsonCase: jsonCase{"offload-dry-run.error", []string{"offload", "--dry-run", "--keep-last", "-1"}, exitUsage}},
		{jsonCase: jsonCase{"offload", []string{"offload", "--keep-within", "0s", "--keep-last", "0"}, exitOK}},
		{jsonCase: jsonCase{"offload.error", []string{"offload", "--keep-within", "forever"}, exitUsage}},
		{before: func(t *testing.T) {
			writeTree(t, src, map[string]string{"etc/app.conf": "port=2", "etc/new.conf": "y"})
			os.Remove(filepath.Join(src, "etc/old.conf"))
			os.Chmod(filepath.Join(src, "notes.txt"), 0o600)
		}, jsonCase: jsonCase{"backup-second", []string{"backup", src, "--name", "app"}, exitOK}, after: backup},
		{jsonCase: jsonCase{"points", []string{"points"}, exitOK}},
		{jsonCase: jsonCase{"points.error", []string{"points", "extra"}, exitUsage}},
		{jsonCase: jsonCase{"ls", []string{"ls", "latest", "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"ls.error", []string{"ls", "latest", "no/such/path", "--passphrase-file", pass}, exitUsage}},
		{jsonCase: jsonCase{"find", []string{"find", "*.conf", "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"find.error", []string{"find", "[", "--passphrase-file", pass}, exitUsage}},
		{jsonCase: jsonCase{"diff", []string{"diff", "$first", "latest", "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"diff.error", []string{"diff", "ffffffff", "latest", "--passphrase-file", pass}, exitError}},
		{jsonCase: jsonCase{"restore", []string{"restore", "$first", "--target", filepath.Join(dir, "restored"), "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"restore.error", []string{"restore", "latest", "--passphrase-file", pass}, exitUsage}},
		{jsonCase: jsonCase{"verify", []string{"verify", "--read-data", "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"verify.error", []string{"verify", "--subset", "10"}, exitUsage}},
		{jsonCase: jsonCase{"status", []string{"status"}, exitOK}},
		{jsonCase: jsonCase{"status.error", []string{"--config", filepath.Join(dir, "nosuch.yaml"), "status"}, exitError}},
		{jsonCase: jsonCase{"verify-vault", []string{"verify", "--vault", "--read-data"}, exitOK}},
		{jsonCase: jsonCase{"verify-vault.error", []string{"verify", "--vault", "--copy", "third"}, exitUsage}},
		{jsonCase: jsonCase{"vault-repair", []string{"vault", "repair"}, exitOK}},
		{jsonCase: jsonCase{"vault-repair.error", []string{"vault", "repair", "extra"}, exitUsage}},
		{jsonCase: jsonCase{"vault-repack-estimate", []string{"vault", "repack-estimate", "--passphrase-file", pass}, exitOK}},
		{jsonCase: jsonCase{"vault-repack-estimate.error", []string{"vault", "repack-estimate"}, exitError}},
		// Both points in the vault, one a day: the older one expires.
		{before: func(t *testing.T) {
			s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
			cfg, err := loadConfig(s.config)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Retention.Vault = vaultRetention{Daily: 1}
			if err := saveConfig(s.config, cfg); err != nil {
				t.Fatal(err)
			}
		}, jsonCase: jsonCase{"prune-dry-run", []string{"prune", "--dry-run"}, exitOK}},
		{jsonCase: jsonCase{"prune", []string{"prune"}, exitOK}},
		{jsonCase: jsonCase{"prune.error", []string{"prune", "--repack-estimate"}, exitUsage}},
		// Commands that printed their result and then fail: the result
		// carries the error.
		{before: func(t *testing.T) {
			writeTree(t, src, map[string]string{"etc/app.conf": "port=3"})
			s.ok("backup", src, "--name", "app")
			pts, _ := filepath.Glob(filepath.Join(store, "objects", "points", "*"))
			if len(pts) != 1 {
				t.Fatalf("store holds %d point objects, want 1", len(pts))
			}
			truncate(t, pts[0])
		}, jsonCase: jsonCase{"points-damaged.error", []string{"points"}, exitPartial}},
		{jsonCase: jsonCase{"verify-damaged.error", []string{"verify"}, exitError}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before(t)
		}
		args := []string{"--json"}
		for _, a := range st.args {
			if a == "$first" && len(ids) > 0 {
				a = ids[0]
			}
			args = append(args, a)
		}
		code, out, errOut := s.run(args...)
		if code != st.code {
			t.Fatalf("tapeless %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(st.args, " "), code, st.code, out, errOut)
		}
		checkJSONContract(t, st.jsonCase, code, []byte(out))
		if st.after != nil {
			st.after(t, []byte(out))
		}
	}
	if len(ids) != 2 {
		t.Fatalf("backups made %d points, want 2", len(ids))
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
var timeLike = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)
var rfc3339UTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

// checkJSONContract checks out against the general rules of docs/JSON.md
// and its shape against the golden file of c.
func checkJSONContract(t *testing.T, c jsonCase, code int, out []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Errorf("%s: stdout is not JSON: %v\n%s", c.name, err, out)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Errorf("%s: stdout holds more than one JSON document:\n%s", c.name, out)
		return
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		t.Errorf("%s: stdout is not a JSON object:\n%s", c.name, out)
		return
	}
	// Exit 0: no error object; anything else: an error object whose code
	// is the exit code.
	e, hasErr := obj["error"].(map[string]any)
	switch {
	case code == exitOK && obj["error"] != nil:
		t.Errorf("%s: exit 0 with an error member:\n%s", c.name, out)
	case code != exitOK && !hasErr:
		t.Errorf("%s: exit %d without an error object:\n%s", c.name, code, out)
	case code != exitOK:
		if n, _ := e["code"].(json.Number); n.String() != jsonNumber(code) {
			t.Errorf("%s: error.code %v, want %d", c.name, e["code"], code)
		}
		if m, _ := e["message"].(string); m == "" {
			t.Errorf("%s: error.message is empty", c.name)
		}
	}
	walkJSON(t, c.name, "", doc)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"exit_code": code, "stdout": shapeOf("", doc)}); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := filepath.Join("testdata", "json", c.name+".json")
	if *updateJSON {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Errorf("%s: %v (run go test -run TestJSONContract -update)", c.name, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the JSON shape changed (update docs/JSON.md, then run with -update)\ngot:\n%s\nwant:\n%s\nstdout was:\n%s", c.name, got, want, out)
	}
}

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }

// walkJSON checks the general rules at every level: snake_case keys, no
// null, times in RFC 3339 UTC, IDs as 64 hex digits, byte counts ending
// in _bytes.
func walkJSON(t *testing.T, name, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Errorf("%s: %s is null (lists are [], absent values are left out)", name, path)
	case map[string]any:
		for k, e := range x {
			p := path + "." + k
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %s is not snake_case", name, p)
			}
			if k == "point" || (strings.Contains(k, "bytes") || strings.Contains(k, "size")) && !strings.HasSuffix(k, "_bytes") || k == "bytes" {
				t.Errorf("%s: key %s breaks the naming rules (a point is id; sizes say which: source_bytes, stored_bytes, …)", name, p)
			}
			if s, ok := e.(string); ok && (k == "id" || strings.HasSuffix(k, "_id")) && !hex64.MatchString(s) {
				t.Errorf("%s: %s = %q is not a full 64-hex-digit ID", name, p, s)
			}
			walkJSON(t, name, p, e)
		}
	case []any:
		for _, e := range x {
			walkJSON(t, name, path+"[]", e)
		}
	case string:
		if timeLike.MatchString(x) && !rfc3339UTC.MatchString(x) {
			t.Errorf("%s: %s = %q is not an RFC 3339 UTC time", name, path, x)
		}
	}
}

// enumKeys are the keys whose values are part of the contract and kept in
// golden files as they are; every other value becomes its kind.
var enumKeys = map[string]bool{"code": true, "tier": true, "action": true, "kind": true, "type": true, "replication": true}

// shapeOf replaces values by their kind ("<string>", "<number>", "<bool>",
// "<id>", "<time>"), keeps enum values, and keeps one element per distinct
// shape of a list.
func shapeOf(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = shapeOf(k, e)
		}
		return m
	case []any:
		out := []any{}
		seen := map[string]bool{}
		for _, e := range x {
			s := shapeOf(key, e)
			b, _ := json.Marshal(s)
			if !seen[string(b)] {
				seen[string(b)] = true
				out = append(out, s)
			}
		}
		sort.SliceStable(out, func(i, j int) bool {
			a, _ := json.Marshal(out[i])
			b, _ := json.Marshal(out[j])
			return string(a) < string(b)
		})
		return out
	case json.Number:
		if enumKeys[key] {
			return x
		}
		return "<number>"
	case bool:
		return "<bool>"
	case string:
		switch {
		case enumKeys[key]:
			return x
		case hex64.MatchString(x):
			return "<id>"
		case timeLike.MatchString(x):
			return "<time>"
		}
		return "<string>"
	}
	return v
}

// TestJSONErrorObject covers the cases of finishJSON the golden files do
// not: --json after a flag that fails to parse, an empty result object,
// and output that is not JSON at all (help).
func TestJSONErrorObject(t *testing.T) {
	code, out, _ := runCmd(t, "points", "--no-such-flag", "--json")
	var doc struct {
		Error jsonError `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitUsage || doc.Error.Code != exitUsage || !strings.Contains(doc.Error.Message, "no-such-flag") {
		t.Errorf("points --no-such-flag --json: exit %d, stdout %q (%v); want the usage error as a JSON object", code, out, err)
	}
	if code, out, _ := runCmd(t, "points", "--no-such-flag", "--", "--json"); code != exitUsage || out != "" {
		t.Errorf("--json after -- is an argument, not the flag: exit %d, stdout %q", code, out)
	}

	var buf bytes.Buffer
	if err := finishJSON(&buf, []byte("{}\n"), exitPartial, errors.New("half <done>")); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"error\": {\n    \"code\": 3,\n    \"message\": \"half <done>\"\n  }\n}\n"; buf.String() != want {
		t.Errorf("finishJSON of {} = %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := finishJSON(&buf, []byte("Usage: tapeless\n"), exitOK, nil); err != nil || buf.String() != "Usage: tapeless\n" {
		t.Errorf("finishJSON of text = %q, %v; want it unchanged", buf.String(), err)
	}
	if code, out, _ := runCmd(t, "--json", "--help"); code != exitOK || !strings.Contains(out, "Usage:") {
		t.Errorf("--json --help: exit %d, %q", code, out)
	}
}
