package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck runs 'tapeless config check' on a valid configuration
// and on one broken in each way it refuses; each problem is reported with
// its key and line, and every problem of a file, not only the first.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	excludes := filepath.Join(dir, "excludes")
	if err := os.WriteFile(excludes, []byte("*.o\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badExcludes := filepath.Join(dir, "bad-excludes")
	if err := os.WriteFile(badExcludes, []byte("ok\n[\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := func(sourceExtra, top string) string {
		return "store: " + store + "\n" + top + `sources:
  - name: home
    path: ` + src + `
    schedule: "0 1 * * *"
    exclude: ["*.tmp", "**/node_modules/", "!keep.tmp"]
    exclude_file: [excludes]
    exclude_caches: true
` + sourceExtra
	}
	code, out, errOut := runCmd(t, "--config", writeConfigIn(t, dir, valid("", "")), "config", "check")
	if code != exitOK || !strings.Contains(out, "is valid (1 source)") {
		t.Fatalf("config check of a valid file exited %d: %s%s", code, out, errOut)
	}

	for _, c := range []struct {
		name, text string
		want       []string // each must appear in the output
	}{
		{"unknown key", valid("", "retenton: {}\n"), []string{"line 2, column 1: unknown key retenton: did you mean retention?"}},
		{"two unknown keys", valid("", "retenton: {}\nstagin: /x\n"), []string{"2 problems", "line 2, column 1: unknown key retenton", "line 3, column 1: unknown key stagin: did you mean staging?"}},
		{"unknown key in a source", valid("    bogus: 1\n", ""), []string{"unknown key bogus"}},
		{"bad job cron", valid("", "jobs: {verify: \"not a cron\"}\n"), []string{`line 2, column 16: jobs.verify: invalid schedule "not a cron"`, `want "MIN HOUR DOM MON DOW"`}},
		{"bad seconds cron", valid("", "jobs: {offload: \"61 0 3 * * *\"}\n"), []string{"jobs.offload: invalid schedule", "@every 6h"}},
		{"bad source schedule", strings.Replace(valid("", ""), `"0 1 * * *"`, `"@fortnightly"`, 1), []string{`line 5, column 15: sources[0].schedule: invalid schedule "@fortnightly"`}},
		{"bad time zone", valid("", "jobs: {time_zone: Mars/Olympus}\n"), []string{`jobs.time_zone: unknown time zone "Mars/Olympus"`}},
		{"missing source path", strings.Replace(valid("", ""), "path: "+src, "path: "+src+"-gone", 1), []string{"sources[0].path: " + src + "-gone: does not exist"}},
		{"relative source path", strings.Replace(valid("", ""), "path: "+src, "path: src", 1), []string{`sources[0].path: "src" is not an absolute path`}},
		{"invalid exclude", strings.Replace(valid("", ""), `"*.tmp"`, `"["`, 1), []string{`line 6, column 15: sources[0].exclude[0]: invalid exclude pattern "["`}},
		{"unreadable exclude file", strings.Replace(valid("", ""), "[excludes]", "[nosuch]", 1), []string{"sources[0].exclude_file[0]: exclude file: open " + filepath.Join(dir, "nosuch")}},
		{"invalid pattern in exclude file", strings.Replace(valid("", ""), "[excludes]", "["+badExcludes+"]", 1), []string{`sources[0].exclude_file[0]: invalid exclude pattern "["`}},
		{"bad throttle", valid("", "throttle: fast\n"), []string{"line 2, column 11: throttle: invalid throttle"}},
		{"bad retention", valid("", "retention: {local: {keep_last: -1}, vault: {yearly: 1000}}\n"), []string{"retention: invalid retention policy: local keep_last is negative", "retention: invalid retention policy: vault yearly count 1000 exceeds"}},
		{"webhook not http", valid("", "notify: {webhook: \"ftp://example.com/hook\"}\n"), []string{`notify.webhook: "ftp://example.com/hook" is not an http:// or https:// URL`}},
		{"notify command missing", valid("", "notify: {on_failure: [/nonexistent/page-me]}\n"), []string{`notify.on_failure: command "/nonexistent/page-me" cannot be run`}},
		{"wrong type", valid("", "retention: {local: {keep_last: many}}\n"), []string{"line 2, column 1: cannot unmarshal"}},
		{"duplicate source", valid("  - {name: home, path: "+src+"}\n", ""), []string{`sources[1].name: "home" is also the name of sources[0]`}},
		{"no store", strings.Replace(valid("", ""), "store: "+store, "server: s1", 1), []string{"store: not set"}},
		{"many at once", valid("", "jobs: {prune: \"x\", verify: \"@every -1h\"}\nthrottle: fast\nnotify: {webhook: \"not a url\"}\n"),
			[]string{"4 problems", "jobs.prune", "jobs.verify", "throttle", "notify.webhook"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfgPath := writeConfigIn(t, dir, c.text)
			code, out, errOut := runCmd(t, "--config", cfgPath, "config", "check")
			if code != exitError {
				t.Errorf("config check exited %d, want %d\n%s%s", code, exitError, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("config check printed\n%s\nwant it to say %q", out, w)
				}
			}
			code, js, _ := runCmd(t, "--json", "--config", cfgPath, "config", "check")
			var r struct {
				Valid    bool            `json:"valid"`
				Problems []configProblem `json:"problems"`
				Error    *jsonError      `json:"error"`
			}
			if err := json.Unmarshal([]byte(js), &r); err != nil || code != exitError || r.Valid || len(r.Problems) == 0 || r.Error == nil || r.Error.Code != exitError {
				t.Errorf("config check --json exited %d: %s (%v)", code, js, err)
			}
		})
	}

	// Every command refuses unknown keys, all of them named.
	_, err := loadConfig(writeConfigIn(t, dir, valid("", "retenton: {}\nstagin: /x\n")))
	if err == nil || !strings.Contains(err.Error(), "retenton at line 2, column 1") || !strings.Contains(err.Error(), "stagin at line 3, column 1") {
		t.Errorf("loadConfig with two unknown keys: %v", err)
	}

	code, _, errOut = runCmd(t, "--config", filepath.Join(dir, "nosuch.yaml"), "config", "check")
	if code != exitError || !strings.Contains(errOut, "no configuration") {
		t.Errorf("config check of a missing file exited %d: %s", code, errOut)
	}
	if code, _, _ := runCmd(t, "config", "check", "extra"); code != exitUsage {
		t.Errorf("config check extra exited %d, want %d", code, exitUsage)
	}
}

// writeConfigIn writes a config file into dir (where relative exclude
// files resolve) under a fresh name.
func writeConfigIn(t *testing.T, dir, text string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "config-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

// TestExampleConfigIsValid: docs/tapeless.example.yaml loads and passes
// config check once its paths point at folders that exist.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "tapeless.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(writeConfig(t, string(b))); err != nil {
		t.Fatalf("the example configuration does not load: %v", err)
	}
	// Its sources' paths and exclude file, made real under a temp folder.
	root := t.TempDir()
	text := string(b)
	for _, p := range []string{"/home", "/etc", "/srv/www", "/etc/tapeless/excludes"} {
		text = strings.ReplaceAll(text, " "+p+"\n", " "+root+p+"\n")
		text = strings.ReplaceAll(text, "["+p+"]", "["+root+p+"]")
	}
	for _, d := range []string{"home", "etc/tapeless", "srv/www"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/tapeless/excludes"), []byte("*.swp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	c.Notify.OnFailure, c.Notify.OnRecovery = nil, nil // the hook commands are the operator's
	for _, p := range validateConfig(c) {
		t.Errorf("example configuration: %s: %s", p.key, p.msg)
	}
	if len(c.Sources) == 0 || c.Jobs.TimeZone == "" || c.Notify.Webhook == "" {
		t.Errorf("the example should show sources, a time zone and a webhook: %+v", c)
	}
}
