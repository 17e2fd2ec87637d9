package scheduler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr  string
		token bool
		ok    bool
	}{
		{"127.0.0.1:9781", false, true}, {"[::1]:9781", false, true}, {"localhost:9781", false, true},
		{"0.0.0.0:9781", false, false}, {":9781", false, false}, {"192.0.2.1:9781", false, false},
		{"0.0.0.0:9781", true, true}, {"9781", true, false},
	} {
		err := CheckListen(c.addr, c.token)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok %v", c.addr, c.token, err, c.ok)
		}
		if !c.ok && !c.token && !errors.Is(err, ErrListenNotLoopback) {
			t.Errorf("CheckListen(%q): %v, want ErrListenNotLoopback", c.addr, err)
		}
	}
}

func TestHTTPHandlerTokenAndHealth(t *testing.T) {
	ws := []Warning{{Code: WarnFailed, Job: "offload", Message: "the last offload failed"}}
	h := HTTPConfig{Token: "s3cret", Metrics: NewMetrics(t.TempDir(), nil, nil),
		Status: func(context.Context) ([]byte, []Warning, error) { return []byte("{}\n"), ws, nil }}.Handler()
	get := func(path, auth string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
		if code, _ := get("/metrics", auth); code != http.StatusUnauthorized {
			t.Errorf("/metrics with %q: %d, want 401", auth, code)
		}
	}
	if code, body := get("/healthz", "Bearer s3cret"); code != http.StatusServiceUnavailable || body != "failed: the last offload failed\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/metrics", "Bearer s3cret"); code != http.StatusOK || !strings.Contains(body, "tapeless_store_disk_bytes") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	ws = nil
	if code, body := get("/healthz", "Bearer s3cret"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	if code, body := get("/api/status", "Bearer s3cret"); code != http.StatusOK || body != "{}\n" {
		t.Errorf("/api/status: %d %q", code, body)
	}
}
