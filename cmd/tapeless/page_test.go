package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/scheduler"
)

// pageArtifacts is the folder the page test keeps its screenshot in:
// TAPELESS_TEST_ARTIFACTS (which CI keeps), else a folder in the
// system's temporary folder; t.TempDir would remove it.
func pageArtifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TAPELESS_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tapeless-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromium runs the headless browser with args and returns its output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestPageInBrowser opens the daemon's status page, served by the real
// handler for a registered store with a point only in the vault, a
// point only in the store and a failed offload, in headless
// Chromium: the rendered page shows the jobs, the warning and the points
// of each tier, and a screenshot of it is kept.
func TestPageInBrowser(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium browser installed (apt-get install chromium): the status page is not tested in a browser")
	}
	s, store := statusSession(t)
	s.ok("offload", "--keep-within", "0s", "--keep-last", "0")
	src := t.TempDir()
	writeTree(t, src, map[string]string{"b.txt": "b"})
	s.ok("backup", src, "--name", "db")
	cfg, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := scheduler.OpenHistory(store)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := hist.Add(scheduler.RunRecord{Job: "offload", Start: now.Add(-time.Minute), End: now, Result: "failed",
		Error: "offload: vault demo: 403 Forbidden: the access key was refused"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(scheduler.HTTPConfig{Status: daemonStatus(s.config, func() *config { return cfg }),
		Page: daemonPage(func() *config { return cfg })}.Handler())
	defer srv.Close()

	// The page itself: HTML, refreshing, with no script and nothing
	// fetched from elsewhere.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	dom := chromium(t, bin, "--dump-dom", srv.URL+"/")
	if strings.Contains(dom, "<script") || regexp.MustCompile(`(src|href)="https?:`).MatchString(dom) {
		t.Errorf("the page loads a script or an external asset:\n%s", dom)
	}
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	text = strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		`http-equiv="refresh" content="30"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q:\n%s", want, dom)
		}
	}
	for _, want := range []string{
		"backup:app", "offload", "prune", "verify", // the jobs
		"the access key was refused",                                           // the failed run and its warning
		"app 0 0 1 0", "db 1 0 0 0", "local only 1 · in both 0 · vault only 1", // the points of each tier
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`Warnings .*the access key was refused.* Jobs`).MatchString(text) {
		t.Errorf("the failed offload is not among the warnings on top:\n%s", text)
	}

	shot := filepath.Join(pageArtifacts(t), "status-page.png")
	chromium(t, bin, "--screenshot="+shot, "--window-size=1200,900", srv.URL+"/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot of the status page: %s", shot)
}
