package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/scheduler"
)

// statusSession is a registered server on a file vault with one point of
// data source "app", which has a daily backup schedule.
func statusSession(t *testing.T) (*session, string) {
	t.Helper()
	s := newSession(t)
	dir := t.TempDir()
	purl := fileURL(filepath.Join(dir, "primary"))
	creds := filepath.Join(dir, "demo.VaultCredentials")
	store := filepath.Join(dir, "store")
	src := filepath.Join(dir, "src")
	writeTree(t, src, map[string]string{"a.txt": "a"})
	s.ok("vault", "create", "demo", "--url", purl, "--replication", "LRS")
	s.ok("vault", "credentials", "demo", "--url", purl, "-o", creds)
	s.ok("register", "--credentials", creds, "--generate-passphrase", filepath.Join(dir, "passphrase"), "--store", store,
		"--staging", filepath.Join(dir, "staging"), "--server", "s1")
	s.ok("backup", src, "--name", "app")
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sources = []sourceConfig{{Name: "app", Path: src, Schedule: "0 2 * * *"}}
	cfg.Jobs.TimeZone = "UTC"
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}
	return s, store
}

func statusOf(t *testing.T, s *session) (int, statusJSON, string) {
	t.Helper()
	code, out, errOut := s.run("--json", "status")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s\n%s", err, out, errOut)
	}
	return code, st, errOut
}

func TestStatusJobsAndWarnings(t *testing.T) {
	s, store := statusSession(t)
	out := s.ok("status")
	for _, want := range []string{"Warnings:     none", "Disk:         the store folder holds", "backup:app     0 2 * * *", "offload", "no run recorded"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	code, st, _ := statusOf(t, s)
	if code != exitOK || len(st.Jobs) != 4 || st.Jobs[0].Job != "backup:app" || st.Jobs[0].NextRun == nil || st.StoreBytes == 0 || len(st.Warnings) != 0 {
		t.Fatalf("status --json: exit %d %+v", code, st)
	}
	if next := st.Jobs[0].NextRun; next.Hour() != 2 || next.Minute() != 0 || next.Location() != time.UTC || !next.After(time.Now()) {
		t.Errorf("backup:app next run %v", next)
	}

	// The daemon recorded a failed offload.
	h, err := scheduler.OpenHistory(store)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	if err := h.Add(scheduler.RunRecord{Job: "offload", Start: start, End: start.Add(time.Minute), Result: "failed", Error: "vault unreachable"}); err != nil {
		t.Fatal(err)
	}
	code, st, errOut := statusOf(t, s)
	if code != exitError || len(st.Warnings) != 1 || st.Warnings[0].Code != scheduler.WarnFailed || st.Warnings[0].Job != "offload" ||
		!strings.Contains(errOut, "vault unreachable") {
		t.Fatalf("status --json after a failed offload: exit %d %+v\n%s", code, st.Warnings, errOut)
	}
	if l := st.Jobs[1].Last; st.Jobs[1].Job != "offload" || l == nil || l.Result != "failed" || !l.Start.Equal(start) || st.Jobs[1].LastSuccess != nil {
		t.Errorf("offload job %+v", st.Jobs[1])
	}
	code, out, _ = s.run("status")
	if code != exitError || !strings.Contains(out, "Warnings:     1") || !strings.Contains(out, "! the last offload") ||
		!strings.Contains(out, "failed: vault unreachable") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if code, _, _ := s.run("--quiet", "status"); code != exitError {
		t.Errorf("status --quiet with a warning: exit %d", code)
	}

	// Recovered, then three days without a backup or an offload, both daily.
	if err := h.Add(scheduler.RunRecord{Job: "offload", Start: start.Add(30 * time.Minute), End: start.Add(31 * time.Minute), Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if code, st, _ := statusOf(t, s); code != exitOK || len(st.Warnings) != 0 || st.Jobs[1].LastSuccess == nil {
		t.Errorf("after recovery: exit %d %+v", code, st)
	}
	old := now
	now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	t.Cleanup(func() { now = old })
	code, st, _ = statusOf(t, s)
	if code != exitError || len(st.Warnings) != 2 || st.Warnings[0].Code != scheduler.WarnOverdue || st.Warnings[0].Job != "backup:app" ||
		st.Warnings[1].Job != "offload" {
		t.Errorf("three days on: exit %d %+v", code, st.Warnings)
	}
}

func TestStatusUsageAndBadHistory(t *testing.T) {
	s, store := statusSession(t)
	s.fails(exitUsage, "unknown command", "status", "extra")
	if err := os.WriteFile(filepath.Join(store, scheduler.HistoryFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, st, _ := statusOf(t, s)
	if code != exitOK || st.HistoryError == "" || len(st.Jobs) != 4 {
		t.Errorf("unreadable history: exit %d %+v", code, st)
	}
	if out := s.ok("status"); !strings.Contains(out, "History:      unreadable") {
		t.Errorf("status:\n%s", out)
	}
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Jobs.TimeZone = "Mars/Olympus"
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}
	if code, st, _ := statusOf(t, s); code != exitError || len(st.Warnings) != 1 || st.Warnings[0].Code != scheduler.WarnSchedule {
		t.Errorf("bad time zone: exit %d %+v", code, st.Warnings)
	}
}
