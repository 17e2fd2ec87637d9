package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/scheduler"
)

// TestHTTPServesNoSecret serves /api/status, /healthz, /metrics and the
// status page at / from the daemon's handler, built as 'tapeless daemon
// --listen' builds it,
// for a configuration whose vault carries access and secret keys (of
// both copies) and a store with a passphrase, a point and a failed run:
// none of those secrets appears in any answer.
func TestHTTPServesNoSecret(t *testing.T) {
	s, store := statusSession(t)
	pass, err := os.ReadFile(filepath.Join(filepath.Dir(store), "passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"access key":           "AKIAFAKEPRIMARY00001",
		"secret key":           "fakePrimarySecret/Key+0001abcdefghijklmno",
		"secondary access key": "AKIAFAKESECONDARY002",
		"secondary secret key": "fakeSecondarySecret/Key+0002abcdefghijklm",
		"passphrase":           strings.TrimRight(string(pass), "\n"),
	}
	if len(secrets["passphrase"]) < 8 {
		t.Fatalf("passphrase %q too short to look for", secrets["passphrase"])
	}
	cfg.Vault.AccessKey, cfg.Vault.SecretKey = secrets["access key"], secrets["secret key"]
	cfg.Vault.SecondaryAccessKey, cfg.Vault.SecondarySecretKey = secrets["secondary access key"], secrets["secondary secret key"]
	if err := saveConfig(s.config, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(s.config); err != nil {
		t.Fatal(err)
	}

	// A failed offload in the history: its error is shown by the status
	// and its result counted by the metrics.
	hist, err := scheduler.OpenHistory(store)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	failed := scheduler.RunRecord{Job: "offload", Start: now.Add(-time.Minute), End: now, Result: "failed",
		Error: "offload: vault demo: 403 Forbidden: the access key was refused"}
	if err := hist.Add(failed); err != nil {
		t.Fatal(err)
	}
	metrics := scheduler.NewMetrics(cfg.Store, hist, nil)
	metrics.Observe(failed)
	h := scheduler.HTTPConfig{Metrics: metrics, Status: daemonStatus(s.config, func() *config { return cfg }),
		Page: daemonPage(func() *config { return cfg })}.Handler()

	for _, path := range []string{"/api/status", "/healthz", "/metrics", "/"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body := w.Body.String()
		if w.Code != http.StatusOK && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d %s", path, w.Code, body)
		}
		if len(body) < 10 {
			t.Fatalf("%s: %q, want a report to look in", path, body)
		}
		// The answers are the real ones, with the failed run in them.
		if want := map[string]string{"/api/status": "the access key was refused", "/healthz": "the access key was refused",
			"/metrics": `tapeless_job_runs_total{job="offload",result="failed"} 1`, "/": "the access key was refused"}[path]; !strings.Contains(body, want) {
			t.Errorf("%s lacks %q:\n%s", path, want, body)
		}
		for what, v := range secrets {
			if strings.Contains(body, v) {
				t.Errorf("%s shows the %s:\n%s", path, what, body)
			}
		}
	}
}
