package scheduler

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// monitoringDir holds the alert rules and the dashboard shipped with
// the docs.
var monitoringDir = filepath.Join("..", "docs", "monitoring")

// exposedMetrics is every metric name the daemon's registry can expose:
// what Gather returns after a run of each job, plus what the store
// collector declares (its points and pending figures need a store with
// vaulted, pending points to appear), with a histogram's series.
func exposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	next := func(now time.Time) map[string]time.Time {
		return map[string]time.Time{"backup:app": now.Add(time.Hour)}
	}
	m := NewMetrics(t.TempDir(), nil, next)
	now := time.Now()
	for _, r := range []RunRecord{
		{Job: "backup:app", Result: "ok", Start: now.Add(-time.Minute), End: now, Bytes: 10},
		{Job: "offload", Result: "failed", Start: now.Add(-time.Minute), End: now},
	} {
		m.Observe(r)
	}
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	names := map[string]bool{}
	add := func(name string, histogram bool) {
		names[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	for _, f := range fams {
		add(f.GetName(), f.GetType().String() == "HISTOGRAM")
	}
	for _, want := range []string{"tapeless_job_runs_total", "tapeless_job_last_success_timestamp_seconds",
		"tapeless_job_duration_seconds", "tapeless_job_bytes_total", "tapeless_job_next_run_timestamp_seconds", "tapeless_store_disk_bytes"} {
		if !names[want] {
			t.Errorf("gathered metrics lack %s: %v", want, names)
		}
	}
	ch := make(chan *prometheus.Desc, 32)
	(&StoreCollector{}).Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		mm := fq.FindStringSubmatch(d.String())
		if mm == nil {
			t.Fatalf("no name in %s", d)
		}
		add(mm[1], false)
	}
	return names
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promName   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames is the tapeless metric and recording rule names an
// expression refers to: label values (quoted) are not names.
func metricNames(expr string) []string {
	var out []string
	for _, n := range promName.FindAllString(promString.ReplaceAllString(expr, `""`), -1) {
		if strings.HasPrefix(n, "tapeless_") || strings.HasPrefix(n, "tapeless:") {
			out = append(out, n)
		}
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestMonitoringAlertRules checks docs/monitoring/tapeless-alerts.yml:
// every alert has its fields, a known severity and its annotations, and
// every metric it names is one the daemon exposes (or a recording rule
// of the file). promtool checks it too when it is installed.
func TestMonitoringAlertRules(t *testing.T) {
	path := filepath.Join(monitoringDir, "tapeless-alerts.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	exposed := exposedMetrics(t)
	records := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a name and rules are needed", g.Name)
		}
		for _, r := range g.Rules {
			id := r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("group %s: a rule needs alert or record, not both or neither: %q", g.Name, id)
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", id)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil && !regexp.MustCompile(`^[0-9]+[smhdwy]$`).MatchString(r.For) {
					t.Errorf("%s: for %q is not a duration", id, r.For)
				}
			}
			if r.Alert != "" {
				alerts[r.Alert] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: severity %q, want warning or critical", id, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: annotations need summary and description: %v", id, r.Annotations)
				}
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") ||
				strings.Count(r.Expr, "[") != strings.Count(r.Expr, "]") {
				t.Errorf("%s: unbalanced brackets in %q", id, r.Expr)
			}
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: names no tapeless metric: %q", id, r.Expr)
			}
			for _, n := range names {
				if !exposed[n] && !records[n] {
					t.Errorf("%s: %s is neither a metric of the daemon nor a recording rule", id, n)
				}
			}
		}
	}
	for _, want := range []string{"TapelessBackupOverdue", "TapelessOffloadFailing", "TapelessReplicationPending", "TapelessStoreDamaged", "TapelessVerifyFailed"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		tool, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool is not installed: the rules were parsed and their metric names checked, not checked with 'promtool check rules'")
		}
		if out, err := exec.Command(tool, "check", "rules", path).CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules %s: %v\n%s", path, err, out)
		}
	})
}

// TestMonitoringDashboard checks docs/monitoring/tapeless-dashboard.json:
// it is a Grafana dashboard whose panels have titles and queries, and
// every query names only metrics the daemon exposes.
func TestMonitoringDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoringDir, "tapeless-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct {
				W, H int
			} `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 {
		t.Errorf("dashboard: title %q, uid %q, schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	exposed := exposedMetrics(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: names no tapeless metric: %q", where, expr)
		}
		for _, n := range names {
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
			if !exposed[n] {
				t.Errorf("%s: %s is not a metric of the daemon", where, n)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			check("variable "+v.Name, v.Definition)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Title == "" || p.Type == "" || len(p.Targets) == 0 || p.GridPos.W == 0 || p.GridPos.H == 0 || ids[p.ID] {
			t.Errorf("panel %d %q: needs a unique id, a type, a title, a size and queries", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			check("panel "+p.Title+" "+tg.RefID, tg.Expr)
		}
	}
	// The panels the dashboard is for: results, last success, points,
	// store size, pending replication and durations.
	var missing []string
	for _, n := range []string{"tapeless_job_runs_total", "tapeless_job_last_success_timestamp_seconds", "tapeless_points",
		"tapeless_store_disk_bytes", "tapeless_replication_pending_objects", "tapeless_job_duration_seconds"} {
		if !used[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no panel shows %v", missing)
	}
}

// TestMetricsExpectShowsEveryResultAtZero: a job's counters exist from the
// daemon's start, so increase() in an alert sees the first failure.
func TestMetricsExpectShowsEveryResultAtZero(t *testing.T) {
	m := NewMetrics(t.TempDir(), nil, nil)
	m.Expect([]string{"offload"})
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "tapeless_job_runs_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "result" {
					got[l.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	for _, r := range []string{"ok", "partial", "failed", "skipped"} {
		if v, ok := got[r]; !ok || v != 0 {
			t.Errorf("offload runs with result %s: %v (present %v), want a series at 0", r, v, ok)
		}
	}
}
