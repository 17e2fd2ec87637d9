package scheduler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// healthSite is a site with an empty store folder.
func healthSite(t *testing.T) *Site {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Site{Store: store}
}

func historyOf(t *testing.T, runs ...RunRecord) *History {
	t.Helper()
	h, err := OpenHistory(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := h.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func codes(ws []Warning) string {
	var s []string
	for _, w := range ws {
		if w.Message == "" || w.Hint == "" {
			s = append(s, "EMPTY")
		}
		s = append(s, w.Code+":"+w.Job)
	}
	return strings.Join(s, " ")
}

var (
	healthDay = time.Date(2025, 3, 10, 3, 0, 0, 0, time.UTC)
	daily     = []Schedule{{Job: "offload", Spec: "0 3 * * *", Loc: time.UTC}, {Job: "backup:app", Spec: "0 3 * * *", Loc: time.UTC}}
)

func healthRun(job, result string, start time.Time) RunRecord {
	return RunRecord{Job: job, Start: start, End: start.Add(time.Minute), Result: result, Error: map[bool]string{true: "boom"}[result != "ok"]}
}

func TestHealthOverdue(t *testing.T) {
	site := healthSite(t)
	h := historyOf(t, healthRun("offload", "ok", healthDay), healthRun("backup:app", "ok", healthDay))
	// Just under twice the interval: healthy.
	if ws := Health(site, h, daily, healthDay.Add(47*time.Hour), HealthFacts{}); len(ws) != 0 {
		t.Errorf("47 h after a daily offload: %s", codes(ws))
	}
	if got := codes(Health(site, h, daily, healthDay.Add(49*time.Hour), HealthFacts{})); got != "overdue:offload overdue:backup:app" {
		t.Errorf("49 h after: %q", got)
	}
	// Evidence outside the history counts: a CLI offload and a newer point.
	facts := HealthFacts{LastOffload: healthDay.Add(30 * time.Hour), LastBackup: map[string]time.Time{"app": healthDay.Add(45 * time.Hour)}}
	if ws := Health(site, h, daily, healthDay.Add(49*time.Hour), facts); len(ws) != 0 {
		t.Errorf("with newer evidence: %s", codes(ws))
	}
	// A weekday schedule does not warn over the weekend: Friday's run,
	// checked on Sunday evening.
	fri := time.Date(2025, 3, 7, 3, 0, 0, 0, time.UTC)
	weekdays := []Schedule{{Job: "offload", Spec: "0 3 * * 1-5", Loc: time.UTC}}
	hw := historyOf(t, healthRun("offload", "ok", fri))
	if ws := Health(site, hw, weekdays, fri.Add(64*time.Hour), HealthFacts{}); len(ws) != 0 {
		t.Errorf("weekday schedule on Sunday: %s", codes(ws))
	}
	// Failing since the first run: measured from it.
	hf := historyOf(t, healthRun("offload", "failed", healthDay), healthRun("offload", "failed", healthDay.Add(24*time.Hour)))
	ws := Health(site, hf, daily[:1], healthDay.Add(49*time.Hour), HealthFacts{})
	if got := codes(ws); got != "overdue:offload failed:offload" || !strings.Contains(ws[0].Message, "has not succeeded since its first run") {
		t.Errorf("never succeeded: %q %+v", got, ws)
	}
	// No history and no evidence: nothing is known, nothing said.
	if ws := Health(site, nil, daily, healthDay, HealthFacts{}); len(ws) != 0 {
		t.Errorf("no history: %s", codes(ws))
	}
	// A job that never ran while the daemon ran others.
	hd := historyOf(t, healthRun("prune", "ok", healthDay))
	every := []Schedule{{Job: "backup:app", Spec: "@every 6h"}}
	if ws := Health(site, hd, every, healthDay.Add(11*time.Hour), HealthFacts{}); len(ws) != 0 {
		t.Errorf("11 h into a 6 h schedule: %s", codes(ws))
	}
	if got := codes(Health(site, hd, every, healthDay.Add(13*time.Hour), HealthFacts{})); got != "overdue:backup:app" {
		t.Errorf("a job the daemon never ran: %q", got)
	}
	// A schedule that does not parse.
	if got := codes(Health(site, hd, []Schedule{{Job: "verify", Spec: "not a cron"}}, healthDay, HealthFacts{})); got != "schedule:verify" {
		t.Errorf("bad schedule: %q", got)
	}
}

func TestHealthRuns(t *testing.T) {
	site := healthSite(t)
	h := historyOf(t,
		healthRun("verify", "ok", healthDay), RunRecord{Job: "verify", Start: healthDay.Add(time.Hour), Result: "partial", Error: "pack 1a2b damaged on the secondary copy"},
		healthRun("prune", "failed", healthDay), healthRun("prune", "ok", healthDay.Add(time.Hour)), // recovered: no warning
		healthRun("backup:app", "failed", healthDay), RunRecord{Job: "backup:app", Start: healthDay.Add(time.Hour), Result: "skipped"},
		RunRecord{Job: "offload", Start: healthDay, Result: "failed", Error: "put pack: Access Denied."},
		RunRecord{Job: "backup:db", Start: healthDay, Result: "failed", Error: "store /s is locked by host b pid 9 since 2025-03-10T03:00:00Z"},
	)
	ws := Health(site, h, nil, healthDay.Add(2*time.Hour), HealthFacts{DamagedPoints: 2})
	if got := codes(ws); got != "failed:backup:app lock:backup:db credentials:offload verify_damage:verify verify_damage:" {
		t.Errorf("warnings %q", got)
	}
	if !strings.Contains(ws[3].Message, "pack 1a2b damaged") {
		t.Errorf("verify warning %+v", ws[3])
	}
}

func TestHealthStaging(t *testing.T) {
	site := healthSite(t)
	if ws := Health(site, nil, nil, healthDay, HealthFacts{NewestPointBytes: 1 << 20}); len(ws) != 0 {
		t.Errorf("a small point: %s", codes(ws))
	}
	// No disk has 5 % of an exabyte free.
	site.Staging = filepath.Join(t.TempDir(), "staging")
	ws := Health(site, nil, nil, healthDay, HealthFacts{NewestPointBytes: 1 << 62})
	if got := codes(ws); got != "staging_space:" || !strings.Contains(ws[0].Message, site.Staging) {
		t.Errorf("huge point: %q %+v", got, ws)
	}
}

func TestHealthCredentials(t *testing.T) {
	site := healthSite(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	site.Vault = &VaultSpec{Name: "demo", Primary: vault.Account{URL: "s3://host/bucket"}}
	if got := codes(Health(site, nil, nil, healthDay, HealthFacts{})); got != "credentials:" {
		t.Errorf("no keys: %q", got)
	}
	site.Vault.Primary.Options = storage.Options{AccessKey: "a", SecretKey: "b"}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := Health(site, nil, nil, healthDay, HealthFacts{ConfigFile: cfg, ConfigHasKeys: true})
	if got := codes(ws); got != "credentials:" || !strings.Contains(ws[0].Hint, "chmod 600") {
		t.Errorf("config readable by others: %q %+v", got, ws)
	}
	os.Chmod(cfg, 0o600)
	if ws := Health(site, nil, nil, healthDay, HealthFacts{ConfigFile: cfg, ConfigHasKeys: true}); len(ws) != 0 {
		t.Errorf("mode 0600: %s", codes(ws))
	}
}

func TestHealthStoreLock(t *testing.T) {
	site := healthSite(t)
	lock := filepath.Join(site.Store, "lock")
	write := func(li archive.LockInfo) {
		b, _ := json.Marshal(li)
		if err := os.WriteFile(lock, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, _ := os.Hostname()
	if err := os.WriteFile(lock, nil, 0o600); err != nil { // released
		t.Fatal(err)
	}
	if ws := Health(site, nil, nil, healthDay, HealthFacts{}); len(ws) != 0 {
		t.Errorf("released lock: %s", codes(ws))
	}
	write(archive.LockInfo{Host: "other-host", PID: 7, Started: healthDay})
	if got := codes(Health(site, nil, nil, healthDay, HealthFacts{})); got != "lock:" {
		t.Errorf("lock from another host: %q", got)
	}
	// This process holds it: fine for an hour, stuck after a day.
	write(archive.LockInfo{Host: host, PID: os.Getpid(), Started: healthDay})
	if ws := Health(site, nil, nil, healthDay.Add(time.Hour), HealthFacts{}); len(ws) != 0 {
		t.Errorf("lock held for an hour: %s", codes(ws))
	}
	if got := codes(Health(site, nil, nil, healthDay.Add(25*time.Hour), HealthFacts{})); got != "lock:" {
		t.Errorf("lock held for a day: %q", got)
	}
	// A dead holder on this host is taken over by the next job.
	write(archive.LockInfo{Host: host, PID: 1 << 30, Started: healthDay})
	if ws := Health(site, nil, nil, healthDay.Add(25*time.Hour), HealthFacts{}); len(ws) != 0 {
		t.Errorf("dead holder: %s", codes(ws))
	}
}

func TestScheduleNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	next, err := Schedule{Job: "offload", Spec: "0 3 * * *", Loc: berlin}.Next(healthDay)
	if err != nil || !next.Equal(time.Date(2025, 3, 11, 3, 0, 0, 0, berlin)) {
		t.Errorf("next = %v, %v", next, err)
	}
	next, err = Schedule{Job: "v", Spec: "30 * * * * *"}.Next(healthDay)
	if err != nil || !next.Equal(healthDay.Add(30*time.Second)) {
		t.Errorf("with seconds: next = %v, %v", next, err)
	}
}
