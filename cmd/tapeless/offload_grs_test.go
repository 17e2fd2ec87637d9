package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// endpoint stands between tapeless and a real MinIO server: a TCP
// forwarder on a port of its own that the test stops (connections are
// refused, open ones cut) and starts again, which is how tapeless sees a
// region going down and coming back.
type endpoint struct {
	t      *testing.T
	addr   string // host:port tapeless connects to
	target string // the MinIO server

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newEndpoint(t *testing.T, target string) *endpoint {
	e := &endpoint{t: t, addr: "127.0.0.1:0", target: target, conns: map[net.Conn]bool{}}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *endpoint) start() {
	e.t.Helper()
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		e.t.Fatalf("endpoint: %v", err)
	}
	e.mu.Lock()
	e.ln, e.addr = ln, ln.Addr().String()
	e.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.forward(c)
		}
	}()
}

func (e *endpoint) forward(c net.Conn) {
	e.mu.Lock()
	target := e.target
	e.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	e.mu.Lock()
	e.conns[c], e.conns[up] = true, true
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(up, c); up.Close() })
	wg.Go(func() { io.Copy(c, up); c.Close() })
	wg.Wait()
	e.mu.Lock()
	delete(e.conns, c)
	delete(e.conns, up)
	e.mu.Unlock()
}

// stop refuses new connections and cuts the open ones.
func (e *endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln != nil {
		e.ln.Close()
		e.ln = nil
	}
	for c := range e.conns {
		c.Close()
	}
}

// via rewrites an s3:// URL to go through the endpoint.
func (e *endpoint) via(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.target = u.Host
	u.Host = e.addr
	return u.String()
}

// TestOffloadSecondaryStoppedMinIO: with the secondary region stopped,
// offload archives on the primary, keeps the local points, shows the
// pending replication and exits 3; once the secondary is back, offload
// catches up and deletes locally. With the primary stopped, a restore is
// served by the secondary and says so.
func TestOffloadSecondaryStoppedMinIO(t *testing.T) {
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	pe, se := newEndpoint(t, ""), newEndpoint(t, "")
	pvia, svia := pe.via(pu), se.via(su)
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, pvia, svia, o)
	// Check the copies directly, not through the endpoints.
	for i, u := range []string{pu, su} {
		b, err := storage.Open(context.Background(), u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		c.copies[i] = storage.Prefixed(b, "vaults/"+c.vault)
	}
	var ids []archive.ID
	srcs := map[archive.ID]string{}
	for k := range 2 {
		id, src := c.backup(uint64(500 + k))
		ids = append(ids, id)
		srcs[id] = src
	}
	offload := []string{"offload", "--keep-within", "0s", "--keep-last", "0"}

	se.stop()
	r := c.run(nil, offload...)
	if r.code != exitPartial {
		t.Fatalf("offload with the secondary stopped: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("offload with the secondary stopped:\n%s%s", r.stdout, r.stderr)
	if !strings.Contains(r.stderr, "replication pending") || !strings.Contains(r.stdout, "archived, replication pending") {
		t.Errorf("offload output does not say replication pending:\n%s%s", r.stdout, r.stderr)
	}
	local := completePoints(t, c.local())
	prim := completePoints(t, c.copies[0])
	sec := completePoints(t, c.copies[1])
	for _, id := range ids {
		if !local[id] {
			t.Errorf("point %s was deleted locally while its replication is pending", id)
		}
		if !prim[id] {
			t.Errorf("point %s is not complete on the primary", id)
		}
		if sec[id] {
			t.Errorf("point %s is on the stopped secondary", id)
		}
	}
	var st vaultStatusJSON
	out := c.run(nil, "vault", "status", "--json")
	if err := json.Unmarshal([]byte(out.stdout), &st); err != nil {
		t.Fatalf("vault status --json (exit %d): %v\n%s%s", out.code, err, out.stdout, out.stderr)
	}
	if p := st.PendingReplication; p == nil || p.Points != 2 || p.Objects == 0 || p.Bytes == 0 || p.Oldest.IsZero() {
		t.Errorf("vault status pending_replication = %+v, want 2 points with objects, bytes and oldest", st.PendingReplication)
	}
	if text := c.run(nil, "vault", "status"); !strings.Contains(text.stdout, "replication pending for 2 points") {
		t.Errorf("vault status does not show the pending replication:\n%s%s", text.stdout, text.stderr)
	} else if !strings.Contains(text.stdout, "NOT OK") || text.code != exitError || !strings.Contains(text.stderr, "second copy") {
		t.Errorf("vault status with the secondary down: exit %d, want %d with NOT OK and the reason\n%s%s", text.code, exitError, text.stdout, text.stderr)
	}
	if out.code != exitError {
		t.Errorf("vault status --json with the secondary down exited %d, want %d", out.code, exitError)
	}
	var pl pointsJSON
	if err := json.Unmarshal([]byte(c.mustRun("points", "--json")), &pl); err != nil {
		t.Fatal(err)
	}
	pts := pl.Points
	for _, p := range pts {
		if p.Tier != "both" {
			t.Errorf("point %s tier %q while replication is pending, want both", p.ID[:12], p.Tier)
		}
	}

	se.start()
	r = c.run(nil, offload...)
	if r.code != 0 {
		t.Fatalf("offload after the secondary returned: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	local = completePoints(t, c.local())
	sec = completePoints(t, c.copies[1])
	for _, id := range ids {
		if local[id] || !sec[id] {
			t.Errorf("after catching up: point %s local %v, on the secondary %v; want false, true", id, local[id], sec[id])
		}
	}
	if text := c.run(nil, "vault", "status"); !strings.Contains(text.stdout, "no replication pending") || text.code != exitOK {
		t.Errorf("vault status after catching up: exit %d\n%s%s", text.code, text.stdout, text.stderr)
	}

	// The primary region goes down: restore from the secondary.
	pe.stop()
	target := t.TempDir()
	r = c.run(nil, "restore", ids[0].String()[:12], "--target", target, "--passphrase-file", c.dir+"/passphrase")
	if r.code != 0 {
		t.Fatalf("restore with the primary stopped: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("restore with the primary stopped:\n%s", r.stderr)
	if !strings.Contains(r.stderr, "secondary") {
		t.Errorf("restore with the primary stopped does not say it read the secondary:\n%s", r.stderr)
	}
	compareDirs(t, srcs[ids[0]], target)

	// Safety invariant 6: no output of these failing and falling-back
	// runs shows the S3 secret (or the passphrase).
	pass, err := os.ReadFile(filepath.Join(c.dir, "passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.outputs {
		for what, secret := range map[string]string{"the S3 secret key": o.SecretKey, "the passphrase": strings.TrimSpace(string(pass))} {
			if secret != "" && strings.Contains(r, secret) {
				t.Errorf("a run's output shows %s:\n%s", what, r)
			}
		}
	}
}
