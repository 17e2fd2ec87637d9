package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testNotifier is a notifier with short waits and a log the test reads.
func testNotifier(t *testing.T, cfg NotifyConfig) (*Notifier, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	n := NewNotifier(cfg, "s1", "/var/lib/tapeless/store", slog.New(slog.NewTextHandler(&notifyLog{w: &log}, nil)))
	n.backoff, n.tryTimeout, n.cmdTimeout = 10*time.Millisecond, 200*time.Millisecond, 5*time.Second
	return n, &log
}

type notifyLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *notifyLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

var (
	notifyT0   = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)
	notifyOK   = RunRecord{Job: "offload", Start: notifyT0, End: notifyT0.Add(time.Minute), Result: "ok", Bytes: 42}
	notifyFail = RunRecord{Job: "offload", Start: notifyT0, End: notifyT0.Add(time.Minute), Result: "failed", Error: "vault unreachable"}
)

// webhookReceiver is a webhook that records what it got; fail is how many
// requests it answers with 503 first.
type webhookReceiver struct {
	fail int32
	n    atomic.Int32
	mu   sync.Mutex
	got  []Notification
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.n.Add(1) <= r.fail {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var m Notification
	if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&m) != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
}

func (r *webhookReceiver) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.got {
		out = append(out, m.Event+":"+m.Job)
	}
	return out
}

func TestNotifyFailureAndRecovery(t *testing.T) {
	rec := &webhookReceiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n, _ := testNotifier(t, NotifyConfig{Webhook: srv.URL})
	ctx := context.Background()
	n.Observe(ctx, RunRecord{}, notifyOK)  // first run ok: nothing
	n.Observe(ctx, notifyOK, notifyFail)   // failure
	n.Observe(ctx, notifyFail, notifyFail) // still failing: another failure
	skipped := RunRecord{Job: "offload", Result: "skipped"}
	n.Observe(ctx, notifyFail, skipped) // skipped: nothing
	n.Observe(ctx, skipped, notifyOK)   // recovery, despite the skip between
	n.Observe(ctx, notifyOK, notifyOK)  // nothing
	want := "failure:offload failure:offload recovery:offload"
	if got := strings.Join(rec.events(), " "); got != want {
		t.Fatalf("webhook got %q, want %q", got, want)
	}
	m := rec.got[0]
	if m.Error != "vault unreachable" || m.Result != "failed" || m.Server != "s1" || m.Store != "/var/lib/tapeless/store" ||
		m.Host == "" || !m.Start.Equal(notifyT0) || !m.End.Equal(notifyT0.Add(time.Minute)) {
		t.Errorf("failure message %+v", m)
	}
}

// A fresh notifier (the daemon restarted) learns the job's state from prev.
func TestNotifyRecoveryFromPrev(t *testing.T) {
	rec := &webhookReceiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n, _ := testNotifier(t, NotifyConfig{Webhook: srv.URL})
	n.Observe(context.Background(), notifyFail, notifyOK)
	if got := rec.events(); len(got) != 1 || got[0] != "recovery:offload" {
		t.Fatalf("webhook got %v, want one recovery", got)
	}
	// A partial run is a success that names problems: no failure event.
	n.Observe(context.Background(), notifyOK, RunRecord{Job: "verify", Result: "partial", Error: "1 damaged pack"})
	if got := rec.events(); len(got) != 1 {
		t.Fatalf("webhook got %v after a partial run", got)
	}
}

func TestNotifyWebhookRetries(t *testing.T) {
	rec := &webhookReceiver{fail: 2}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n, log := testNotifier(t, NotifyConfig{Webhook: srv.URL})
	n.Observe(context.Background(), notifyOK, notifyFail)
	if got := rec.events(); len(got) != 1 || rec.n.Load() != 3 {
		t.Fatalf("webhook got %v in %d requests, want one failure in 3", got, rec.n.Load())
	}
	if !strings.Contains(log.String(), "webhook sent") || strings.Count(log.String(), "try failed") != 2 {
		t.Errorf("log:\n%s", log)
	}
}

func TestNotifyWebhookGivesUp(t *testing.T) {
	t.Run("never answers", func(t *testing.T) {
		release := make(chan struct{})
		var reqs atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		n, log := testNotifier(t, NotifyConfig{Webhook: srv.URL})
		start := time.Now()
		n.Observe(context.Background(), notifyOK, notifyFail)
		// 4 tries of 200 ms and waits of 10+20+40 ms.
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Observe took %v against a webhook that never answers", d)
		}
		if reqs.Load() != int32(n.attempts) || !strings.Contains(log.String(), "webhook failed") {
			t.Errorf("%d requests; log:\n%s", reqs.Load(), log)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		}))
		defer srv.Close()
		n, log := testNotifier(t, NotifyConfig{Webhook: srv.URL})
		n.backoff = time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		n.Observe(ctx, notifyOK, notifyFail)
		if d := time.Since(start); d > 2*time.Second || !strings.Contains(log.String(), "context deadline exceeded") {
			t.Errorf("Observe took %v; log:\n%s", d, log)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		var reqs atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			http.Error(w, "no such hook", http.StatusNotFound)
		}))
		defer srv.Close()
		n, log := testNotifier(t, NotifyConfig{Webhook: srv.URL})
		n.Observe(context.Background(), notifyOK, notifyFail)
		if reqs.Load() != 1 || !strings.Contains(log.String(), "404") {
			t.Errorf("%d requests to a 404 hook; log:\n%s", reqs.Load(), log)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		n, log := testNotifier(t, NotifyConfig{Webhook: url})
		n.Observe(context.Background(), notifyOK, notifyFail)
		if !strings.Contains(log.String(), "webhook failed") {
			t.Errorf("log:\n%s", log)
		}
	})
}

func TestNotifyCommandHook(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv | grep '^TAPELESS_' | sort > \"$1.env\"\ncat > \"$1.json\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fail, recov := filepath.Join(dir, "failure"), filepath.Join(dir, "recovery")
	n, log := testNotifier(t, NotifyConfig{OnFailure: []string{script, fail}, OnRecovery: []string{script, recov}})
	n.Observe(context.Background(), notifyOK, notifyFail)
	env, err := os.ReadFile(fail + ".env")
	if err != nil {
		t.Fatalf("the failure hook did not run: %v; log:\n%s", err, log)
	}
	for _, want := range []string{"TAPELESS_EVENT=failure", "TAPELESS_JOB=offload", "TAPELESS_RESULT=failed",
		"TAPELESS_ERROR=vault unreachable", "TAPELESS_START=2025-03-01T03:00:00Z", "TAPELESS_END=2025-03-01T03:01:00Z",
		"TAPELESS_SERVER=s1", "TAPELESS_STORE=/var/lib/tapeless/store", "TAPELESS_HOST="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("hook env lacks %s:\n%s", want, env)
		}
	}
	var m Notification
	if b, err := os.ReadFile(fail + ".json"); err != nil || json.Unmarshal(b, &m) != nil || m.Event != EventFailure || m.Job != "offload" {
		t.Errorf("hook stdin: %+v, %v", m, err)
	}
	if _, err := os.Stat(recov + ".env"); err == nil {
		t.Error("the recovery hook ran on a failure")
	}
	n.Observe(context.Background(), notifyFail, notifyOK)
	if env, err := os.ReadFile(recov + ".env"); err != nil || !strings.Contains(string(env), "TAPELESS_EVENT=recovery") {
		t.Errorf("recovery hook: %v\n%s", err, env)
	}
}

func TestNotifyCommandHookFailsQuietly(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow.sh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n, log := testNotifier(t, NotifyConfig{OnFailure: []string{slow}})
	n.cmdTimeout = 200 * time.Millisecond
	start := time.Now()
	n.Observe(context.Background(), notifyOK, notifyFail)
	if d := time.Since(start); d > 5*time.Second || !strings.Contains(log.String(), "command hook failed") {
		t.Errorf("a hanging hook took %v; log:\n%s", d, log)
	}
	log.Reset()
	n.cfg.OnFailure = []string{filepath.Join(dir, "missing")}
	n.Observe(context.Background(), notifyOK, notifyFail)
	if !strings.Contains(log.String(), "command hook failed") {
		t.Errorf("a missing hook: log:\n%s", log)
	}
	log.Reset()
	n.cfg.OnFailure = []string{"/bin/sh", "-c", "echo paging failed >&2; exit 3"}
	n.Observe(context.Background(), notifyOK, notifyFail)
	if !strings.Contains(log.String(), "paging failed") {
		t.Errorf("a failing hook's output is not logged:\n%s", log)
	}
}
