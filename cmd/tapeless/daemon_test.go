package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// daemonProc is a running `tapeless daemon`, its log in a file.
type daemonProc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func (c *olCLI) startDaemon(name string, args ...string) *daemonProc {
	c.t.Helper()
	p := &daemonProc{log: filepath.Join(c.dir, name+".log"), done: make(chan error, 1)}
	f, err := os.Create(p.log)
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd = exec.Command(c.bin, append([]string{"daemon"}, args...)...)
	p.cmd.Env = append(append(os.Environ(), "TAPELESS_CONFIG="+filepath.Join(c.dir, "config.yaml")), c.env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); f.Close() }()
	c.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// logLine is one line of the daemon's JSON log.
type logLine map[string]any

func (p *daemonProc) lines(t *testing.T) []logLine {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits until the log has a line for which match holds.
func (p *daemonProc) waitLog(t *testing.T, what string, within time.Duration, match func([]logLine) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if match(p.lines(t)) {
			return
		}
		select {
		case err := <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the daemon exited (%v) before %s:\n%s", err, what, b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("no %s within %s; log:\n%s", what, within, b)
}

// stop sends SIGTERM and fails unless the daemon exits 0 within 30 s.
func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			b, _ := os.ReadFile(p.log)
			t.Errorf("the daemon exited with %v after SIGTERM:\n%s", err, b)
		}
		t.Logf("the daemon stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30 s of SIGTERM")
	}
}

func hasMsg(ls []logLine, msg string, kv ...string) bool {
	for _, l := range ls {
		if l["msg"] != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(l[kv[i]]) != kv[i+1] {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// The real daemon against the two MinIO servers: it backs up, offloads,
// prunes and verifies on its own; SIGTERM during a (throttled) offload
// stops it within 30 s; restarted, it completes the offload it missed,
// and every point is local or complete on both copies, and restores.
func TestDaemonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the daemon against MinIO")
	}
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, pu, su, o)

	// Incompressible data, so that the throttled first offload takes a
	// few seconds on each copy.
	src := filepath.Join(c.dir, "src")
	r := rand.New(rand.NewPCG(13, 13))
	for i := range 3 {
		b := make([]byte, 300<<10)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(src, fmt.Sprintf("d%d", i), "f")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(c.dir, "config.yaml")
	edit := func(f func(*config)) {
		cfg, err := loadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		f(cfg)
		if err := saveConfig(cfgPath, cfg); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(cfg *config) {
		cfg.Sources = []sourceConfig{{Name: "data", Path: src, Schedule: "*/2 * * * * *"}}
		cfg.Jobs = jobsConfig{Offload: "*/3 * * * * *", Prune: "*/4 * * * * *", Verify: "*/5 * * * * *", TimeZone: "UTC"}
		// Every point goes to the vault; the empty vault policy expires
		// none, so every point made must still be there at the end.
		cfg.Retention = retentionConfig{Local: localRetention{KeepWithin: 0, KeepLast: 0}}
		cfg.Throttle = "off=256KiB/s"
	})
	if p := policyFromConfig(mustLoad(t, cfgPath)); p.Vault != (retention.VaultPolicy{}) {
		t.Fatalf("vault policy %+v, want empty", p.Vault)
	}

	// Run 1: the first backup, then SIGTERM once the offload of its
	// packs is under way.
	d1 := c.startDaemon("daemon1")
	d1.waitLog(t, "a backup", 20*time.Second, func(ls []logLine) bool {
		return hasMsg(ls, "job finished", "job", "backup:data", "result", "ok")
	})
	d1.waitLog(t, "an offload after the backup", 20*time.Second, func(ls []logLine) bool {
		backedUp := false
		for _, l := range ls {
			if l["msg"] == "job finished" && l["job"] == "backup:data" {
				backedUp = true
			}
			if backedUp && l["msg"] == "job started" && l["job"] == "offload" {
				return true
			}
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond) // into the uploads
	d1.stop(t)
	ls1 := d1.lines(t)
	if !hasMsg(ls1, "stopping: waiting for the running job to reach a safe point", "job", "offload") {
		t.Errorf("SIGTERM did not come during the offload; log:\n%v", ls1)
	}
	h, err := scheduler.OpenHistory(filepath.Join(c.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	last, _, _ := h.Last("offload")
	t.Logf("offload cut short by SIGTERM: %+v", last)
	points := pointsMade(ls1)
	c.checkTiers("after SIGTERM during an offload", points)

	// Run 2: no throttle; the overdue offload runs at start and the
	// daemon goes on backing up, offloading, pruning and verifying. The
	// source is away at first, so a backup fails and, once it is back,
	// recovers: the webhook hears both.
	var hookMu sync.Mutex
	var hooks []scheduler.Notification
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev scheduler.Notification
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hookMu.Lock()
		hooks = append(hooks, ev)
		hookMu.Unlock()
	}))
	defer hook.Close()
	edit(func(cfg *config) { cfg.Throttle = ""; cfg.Notify.Webhook = hook.URL })
	away := src + ".away"
	if err := os.Rename(src, away); err != nil {
		t.Fatal(err)
	}
	// Down long enough for the offload to come due (every 3 s), so the
	// restart finds it overdue.
	time.Sleep(time.Until(last.Start.Add(3500 * time.Millisecond)))
	d2 := c.startDaemon("daemon2")
	d2.waitLog(t, "the missed offload at start", 10*time.Second, func(ls []logLine) bool {
		return hasMsg(ls, "run missed while the daemon was down: running it now", "job", "offload")
	})
	d2.waitLog(t, "a backup failing while its source is away", 20*time.Second, func(ls []logLine) bool {
		return hasMsg(ls, "job finished", "job", "backup:data", "result", "failed")
	})
	if err := os.Rename(away, src); err != nil {
		t.Fatal(err)
	}
	d2.waitLog(t, "offload, prune, verify and backup succeeding", 40*time.Second, func(ls []logLine) bool {
		for _, job := range []string{"offload", "prune", "verify", "backup:data"} {
			if !hasMsg(ls, "job finished", "job", job, "result", "ok") {
				return false
			}
		}
		return true
	})
	d2.stop(t)
	points = append(points, pointsMade(d2.lines(t))...)

	h, err = scheduler.OpenHistory(filepath.Join(c.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"backup:data", "offload", "prune", "verify"} {
		if _, lastOK, ok := h.Last(job); !ok || lastOK.Job == "" {
			t.Errorf("the history has no successful %s run: %+v", job, h.Runs(job))
		}
	}
	if len(points) < 2 {
		t.Fatalf("%d points made by the daemon, want at least 2", len(points))
	}
	inVault := c.checkTiers("at the end", points)
	if !inVault[points[0]] {
		t.Errorf("the first point (its offload cut short by SIGTERM) is not complete in the vault after the restart")
	}
	t.Logf("%d points made, %d in the vault", len(points), len(inVault))
	target := filepath.Join(c.dir, "restored")
	c.mustRun("restore", points[0].String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	compareDirs(t, src, target)
	// The webhook heard the backup fail and recover, in that order.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hookMu.Lock()
		var got []string
		for _, ev := range hooks {
			if ev.Job == "backup:data" {
				got = append(got, ev.Event)
			}
		}
		hookMu.Unlock()
		if len(got) >= 2 {
			if got[0] != scheduler.EventFailure || got[1] != scheduler.EventRecovery {
				t.Errorf("webhook events for backup:data %v, want failure then recovery", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook events for backup:data %v, want failure then recovery", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustLoad(t *testing.T, path string) *config {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pointsMade are the points the daemon's log says it made.
func pointsMade(ls []logLine) []archive.ID {
	var out []archive.ID
	for _, l := range ls {
		if l["msg"] != "recovery point made" {
			continue
		}
		if id, err := archive.ParseID(fmt.Sprint(l["point"])); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// A SIGHUP with a broken configuration is refused and logged; the daemon
// keeps running and a fixed configuration is taken.
func TestDaemonReloadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildTapeless(t)
	root := t.TempDir()
	c := newOlCLI(t, bin, "file://"+filepath.Join(root, "primary"), "file://"+filepath.Join(root, "secondary"), storage.Options{})
	cfgPath := filepath.Join(c.dir, "config.yaml")
	edit := func(f func(*config)) {
		cfg := mustLoad(t, cfgPath)
		f(cfg)
		if err := saveConfig(cfgPath, cfg); err != nil {
			t.Fatal(err)
		}
	}
	d := c.startDaemon("daemon")
	d.waitLog(t, "the start", 10*time.Second, func(ls []logLine) bool { return hasMsg(ls, "daemon started") })

	edit(func(cfg *config) { cfg.Jobs.Verify = "not a cron" })
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "the refusal", 10*time.Second, func(ls []logLine) bool {
		for _, l := range ls {
			if l["msg"] == "configuration refused, keeping the running jobs" && strings.Contains(fmt.Sprint(l["error"]), "jobs.verify") {
				return true
			}
		}
		return false
	})

	edit(func(cfg *config) { cfg.Jobs.Verify, cfg.Jobs.TimeZone = "0 6 1 * *", "UTC" })
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "the reload", 10*time.Second, func(ls []logLine) bool { return hasMsg(ls, "jobs reloaded") })
	d.stop(t)

	// At start, a bad schedule is an error naming the field (exit 1).
	edit(func(cfg *config) { cfg.Jobs.Verify = "not a cron" })
	res := c.run(nil, "daemon")
	if res.code != exitError || !strings.Contains(res.stderr, "jobs.verify") || !strings.Contains(res.stderr, "MIN HOUR DOM MON DOW") {
		t.Errorf("daemon with a bad schedule: exit %d\n%s", res.code, res.stderr)
	}
}

// checkTiers fails unless each of points is complete on both vault copies
// or local with every object it needs in the store or on both copies (a
// backup after an offload references the packs the vault holds), and the
// catalogue calls archived only points complete on both copies. It
// returns the points complete on both copies.
func (c *olCLI) checkTiers(when string, points []archive.ID) map[archive.ID]bool {
	c.t.Helper()
	ctx := context.Background()
	prim, sec := completePoints(c.t, c.copies[0]), completePoints(c.t, c.copies[1])
	names := func(b storage.Backend) map[string]bool {
		have := map[string]bool{}
		if err := b.List(ctx, "", func(i storage.Info) error { have[i.Name] = true; return nil }); err != nil {
			c.t.Fatal(err)
		}
		return have
	}
	lh, ph, sh := names(c.local()), names(c.copies[0]), names(c.copies[1])
	localPts, err := archive.ListPoints(ctx, c.local())
	if err != nil {
		c.t.Fatal(err)
	}
	local := map[archive.ID]bool{}
	for _, p := range localPts {
		ok := true
		for _, r := range p.Packs {
			for _, n := range []string{archive.PackName(r.Pack), archive.IndexName(r.Index)} {
				if !lh[n] && !(ph[n] && sh[n]) {
					c.t.Errorf("%s: local point %s lacks %s in the store and on the vault's copies", when, p.ID, n)
					ok = false
				}
			}
		}
		local[p.ID] = ok
	}
	inVault := map[archive.ID]bool{}
	for _, id := range points {
		if prim[id] && sec[id] {
			inVault[id] = true
		} else if !local[id] {
			c.t.Errorf("%s: point %s lost: neither local nor complete on both copies (primary %v, secondary %v)", when, id, prim[id], sec[id])
		}
	}
	cat, err := archive.CatalogAt(ctx, filepath.Join(c.dir, "store"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range cat {
		if e.State == archive.StateArchived && !(prim[e.Point] && sec[e.Point]) {
			c.t.Errorf("%s: the catalogue says %s is archived, but it is not complete on both copies", when, e.Point)
		}
	}
	return inVault
}

// freePort is a TCP port on 127.0.0.1 nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// promSamples parses the Prometheus text format into sample → value,
// the sample written as name{label="value",...} with the labels sorted.
func promSamples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			labels := strings.Split(strings.TrimSuffix(name[j+1:], "}"), ",")
			sort.Strings(labels)
			name = name[:j] + "{" + strings.Join(labels, ",") + "}"
		}
		out[name] = v
	}
	return out
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The real daemon with --listen, against the two MinIO servers: after a
// backup and an offload, /metrics counts the runs, their last success,
// the points of each tier as 'tapeless points' lists them and the
// store's size; /healthz answers; /api/status names the jobs. An
// address beyond loopback without a token is refused.
func TestDaemonMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the daemon against MinIO")
	}
	pu, o := storagetest.MinIO(t, "primary")
	su, _ := storagetest.MinIO(t, "secondary")
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, pu, su, o)
	src := filepath.Join(c.dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), bytes.Repeat([]byte("tapeless metrics "), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	// One backup and one offload at fixed seconds, then nothing for a
	// day: the scrape and 'tapeless points' see the same state.
	start := time.Now()
	at := func(d time.Duration) string {
		t := start.Add(d).UTC()
		return fmt.Sprintf("%d %d %d * * *", t.Second(), t.Minute(), t.Hour())
	}
	cfgPath := filepath.Join(c.dir, "config.yaml")
	cfg := mustLoad(t, cfgPath)
	cfg.Sources = []sourceConfig{{Name: "data", Path: src, Schedule: at(3 * time.Second)}}
	cfg.Jobs = jobsConfig{Offload: at(6 * time.Second), TimeZone: "UTC"}
	// The offload takes every point to the vault.
	cfg.Retention = retentionConfig{Local: localRetention{KeepWithin: 0, KeepLast: 0}}
	if err := saveConfig(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}

	// Refused beyond loopback without a token, before anything runs.
	if r := c.run(nil, "daemon", "--listen", fmt.Sprintf("0.0.0.0:%d", freePort(t))); r.code != 2 || !strings.Contains(r.stderr, "--listen-token-file") {
		t.Errorf("daemon --listen 0.0.0.0 without a token: exit %d, stderr %q; want 2 naming --listen-token-file", r.code, r.stderr)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	d := c.startDaemon("daemon", "--listen", strings.TrimPrefix(base, "http://"))
	d.waitLog(t, "the HTTP endpoint", 10*time.Second, func(ls []logLine) bool {
		return hasMsg(ls, "serving /metrics, /healthz and /api/status")
	})
	d.waitLog(t, "a backup and an offload", 40*time.Second, func(ls []logLine) bool {
		return hasMsg(ls, "job finished", "job", "backup:data", "result", "ok") && hasMsg(ls, "job finished", "job", "offload", "result", "ok")
	})
	code, text := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, text)
	}
	m := promSamples(t, text)
	end := time.Now()
	for _, job := range []string{"backup:data", "offload"} {
		if n := m[`tapeless_job_runs_total{job="`+job+`",result="ok"}`]; n != 1 {
			t.Errorf("%s runs with result ok: %v, want 1", job, n)
		}
		ts := m[`tapeless_job_last_success_timestamp_seconds{job="`+job+`"}`]
		if ts < float64(start.Unix()) || ts > float64(end.Unix()+1) {
			t.Errorf("%s last success %v, want within the test (%d–%d)", job, ts, start.Unix(), end.Unix())
		}
		if n := m[`tapeless_job_duration_seconds_count{job="`+job+`"}`]; n != 1 {
			t.Errorf("%s duration observations: %v, want 1", job, n)
		}
		if next := m[`tapeless_job_next_run_timestamp_seconds{job="`+job+`"}`]; next < float64(end.Unix()) {
			t.Errorf("%s next run %v, want after now (%d)", job, next, end.Unix())
		}
	}
	if b := m[`tapeless_job_bytes_total{job="backup:data",kind="stored"}`]; b <= 0 {
		t.Errorf("backup stored bytes %v, want > 0", b)
	}
	if b := m[`tapeless_job_bytes_total{job="offload",kind="uploaded"}`]; b <= 0 {
		t.Errorf("offload uploaded bytes %v, want > 0", b)
	}
	if b := m["tapeless_store_disk_bytes"]; b <= 0 {
		t.Errorf("store bytes %v, want > 0", b)
	}
	if m["tapeless_catalog_readable"] != 1 {
		t.Errorf("catalogue not read for the scrape")
	}
	if _, ok := m["tapeless_replication_pending_objects"]; !ok {
		t.Errorf("no tapeless_replication_pending_objects")
	}
	// Points per tier and source, as 'tapeless points' lists them (which
	// asks the vault too).
	var pts struct {
		Points []pointInfo `json:"points"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("points", "--json")), &pts); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, p := range pts.Points {
		want[`tapeless_points{source="`+p.Source+`",tier="`+p.Tier+`"}`]++
	}
	if len(pts.Points) == 0 {
		t.Fatal("no points listed")
	}
	for _, tier := range []string{"local", "vault", "both"} {
		k := `tapeless_points{source="data",tier="` + tier + `"}`
		if m[k] != want[k] {
			t.Errorf("%s = %v, 'tapeless points' lists %v", k, m[k], want[k])
		}
	}
	t.Logf("points by tier: local %v, vault %v, both %v; store %v bytes; backup stored %v, offload uploaded %v",
		m[`tapeless_points{source="data",tier="local"}`], m[`tapeless_points{source="data",tier="vault"}`], m[`tapeless_points{source="data",tier="both"}`],
		m["tapeless_store_disk_bytes"], m[`tapeless_job_bytes_total{job="backup:data",kind="stored"}`], m[`tapeless_job_bytes_total{job="offload",kind="uploaded"}`])

	code, text = httpGet(t, base+"/healthz")
	switch {
	case code == http.StatusOK && text == "ok\n":
	case code == http.StatusServiceUnavailable && strings.Contains(text, ": "):
		t.Logf("/healthz 503: %s", text)
	default:
		t.Errorf("/healthz: %d %q, want 200 ok or 503 with the warnings", code, text)
	}

	code, text = httpGet(t, base+"/api/status")
	var st statusJSON
	if err := json.Unmarshal([]byte(text), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/api/status: %d %v\n%s", code, err, text)
	}
	var jobs []string
	for _, j := range st.Jobs {
		jobs = append(jobs, j.Job)
	}
	if !slices.Contains(jobs, "backup:data") || !slices.Contains(jobs, "offload") || st.Store != filepath.Join(c.dir, "store") {
		t.Errorf("/api/status: jobs %v, store %s", jobs, st.Store)
	}
	d.stop(t)
}
