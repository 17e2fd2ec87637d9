package scheduler

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// Metrics are the daemon's Prometheus metrics, in a registry of their own
// so that nothing else linked into the binary adds to them. Run metrics
// are updated by Observe after every run; the store's are read from local
// state when scraped (StoreCollector), never from the vault.
type Metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	bytes       *prometheus.CounterVec
}

// NewMetrics returns the metrics of a daemon on store folder dir: the
// last success of each job is read from h (nil: none), so a restart does
// not forget it; next gives each job's next run.
func NewMetrics(dir string, h *History, next func(now time.Time) map[string]time.Time) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tapeless_job_runs_total",
			Help: "Runs of each daemon job by result (ok, partial, failed, skipped) since the daemon started."}, []string{"job", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tapeless_job_last_success_timestamp_seconds",
			Help: "End of each job's newest successful run (ok or partial), unix seconds."}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tapeless_job_duration_seconds",
			Help:    "Duration of each job's runs.",
			Buckets: []float64{1, 5, 15, 60, 300, 900, 3600, 3 * 3600, 12 * 3600}}, []string{"job"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tapeless_job_bytes_total",
			Help: "Bytes moved by each job since the daemon started: stored by a backup, uploaded by an offload, removed by a prune, read by a verify."},
			[]string{"job", "kind"}),
	}
	m.reg.MustRegister(m.runs, m.lastSuccess, m.duration, m.bytes, &StoreCollector{Dir: dir, Next: next})
	if h != nil {
		for _, r := range h.Runs("") {
			if r.OK() {
				m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.End.Unix()))
			}
		}
	}
	return m
}

// bytesKind is what a job's RunRecord.Bytes count.
// Expect shows every result of each of jobs from the start, at zero, so
// an alert on a counter's increase also sees a job's first failure after
// the daemon started (a series that appears at 1 has no increase).
func (m *Metrics) Expect(jobs []string) {
	for _, j := range jobs {
		for _, r := range []string{"ok", "partial", "failed", "skipped"} {
			m.runs.WithLabelValues(j, r)
		}
	}
}

func bytesKind(job string) string {
	switch {
	case strings.HasPrefix(job, "backup:"):
		return "stored"
	case job == "offload":
		return "uploaded"
	case job == "prune":
		return "removed"
	case job == "verify":
		return "read"
	}
	return "moved"
}

// Observe counts a finished run (the daemon's OnRun).
func (m *Metrics) Observe(r RunRecord) {
	m.runs.WithLabelValues(r.Job, r.Result).Inc()
	if r.Result == "skipped" {
		return
	}
	if !r.End.IsZero() && !r.Start.IsZero() {
		m.duration.WithLabelValues(r.Job).Observe(r.End.Sub(r.Start).Seconds())
	}
	if r.Bytes > 0 {
		m.bytes.WithLabelValues(r.Job, bytesKind(r.Job)).Add(float64(r.Bytes))
	}
	if r.OK() {
		m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.End.Unix()))
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// StoreCollector reads the store's state when scraped: the points per
// tier and source (the store's listing and the offload catalogue), the
// store folder's size, the replication backlog and the jobs' next runs.
// It takes no lock and opens no vault, so a scrape never waits for a job
// beyond the catalogue's short timeout and never costs a request to S3.
type StoreCollector struct {
	Dir  string
	Next func(now time.Time) map[string]time.Time // nil: no next runs
}

var (
	descPoints = prometheus.NewDesc("tapeless_points",
		"Recovery points by tier (local: only in the store, vault: only in the vault, both) and data source, as 'tapeless points' shows them, from the store's listing and the offload catalogue.",
		[]string{"tier", "source"}, nil)
	descStoreBytes = prometheus.NewDesc("tapeless_store_disk_bytes", "Size on disk of the store folder.", nil, nil)
	descDamaged    = prometheus.NewDesc("tapeless_store_damaged_points", "The store's point objects that cannot be read.", nil, nil)
	descCatalogUp  = prometheus.NewDesc("tapeless_catalog_readable",
		"1 when the offload catalogue was read for this scrape, 0 when not (a job held it); the vault and pending figures are then missing.", nil, nil)
	descPendObjects = prometheus.NewDesc("tapeless_replication_pending_objects", "Vault objects not yet on the secondary copy (GRS).", nil, nil)
	descPendBytes   = prometheus.NewDesc("tapeless_replication_pending_bytes", "Bytes of the vault objects not yet on the secondary copy.", nil, nil)
	descPendPoints  = prometheus.NewDesc("tapeless_replication_pending_points", "Points whose replication to the secondary copy is pending.", nil, nil)
	descPendOldest  = prometheus.NewDesc("tapeless_replication_pending_oldest_timestamp_seconds",
		"Since when the oldest pending object waits, unix seconds (absent when none is pending).", nil, nil)
	descNextRun = prometheus.NewDesc("tapeless_job_next_run_timestamp_seconds", "When each job runs next by its schedule, unix seconds.", []string{"job"}, nil)
)

// Describe implements prometheus.Collector.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoints, descStoreBytes, descDamaged, descCatalogUp, descPendObjects, descPendBytes, descPendPoints, descPendOldest, descNextRun} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A figure that cannot be read
// is left out (or reported invalid) rather than failing the whole scrape.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.Next != nil {
		for job, t := range c.Next(time.Now()) {
			ch <- prometheus.MustNewConstMetric(descNextRun, prometheus.GaugeValue, float64(t.Unix()), job)
		}
	}
	if n, err := DirSize(c.Dir); err == nil {
		ch <- prometheus.MustNewConstMetric(descStoreBytes, prometheus.GaugeValue, float64(n))
	} else {
		ch <- prometheus.NewInvalidMetric(descStoreBytes, err)
	}
	sources := map[archive.ID]string{}
	local := map[archive.ID]bool{}
	listed := false
	if objs, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(c.Dir, "objects")), storage.Options{}); err == nil {
		pts, lerr := archive.ListPoints(ctx, objs)
		objs.Close()
		if lerr == nil || archive.OnlyDamage(lerr) {
			listed = true
			for _, p := range pts {
				local[p.ID], sources[p.ID] = true, p.Source
			}
			ch <- prometheus.MustNewConstMetric(descDamaged, prometheus.GaugeValue, float64(len(archive.DamagedPoints(lerr))))
		}
	}
	vaulted := map[archive.ID]bool{}
	cat, err := archive.CatalogAt(ctx, c.Dir)
	up := 0.0
	if err == nil {
		up = 1
		for _, e := range cat {
			if e.Archived() {
				vaulted[e.Point] = true
				if _, ok := sources[e.Point]; !ok {
					sources[e.Point] = e.Source
				}
			}
		}
		p := archive.PendingReplication(cat)
		ch <- prometheus.MustNewConstMetric(descPendObjects, prometheus.GaugeValue, float64(p.Objects))
		ch <- prometheus.MustNewConstMetric(descPendBytes, prometheus.GaugeValue, float64(p.Bytes))
		ch <- prometheus.MustNewConstMetric(descPendPoints, prometheus.GaugeValue, float64(p.Points))
		if p.Objects > 0 && !p.Oldest.IsZero() {
			ch <- prometheus.MustNewConstMetric(descPendOldest, prometheus.GaugeValue, float64(p.Oldest.Unix()))
		}
	}
	ch <- prometheus.MustNewConstMetric(descCatalogUp, prometheus.GaugeValue, up)
	if !listed {
		return
	}
	// Without the catalogue the vault tier is unknown: leave the points
	// out rather than report vault points as local only.
	if err != nil {
		return
	}
	count := map[[2]string]int{}
	for id, src := range sources {
		tier := "vault"
		switch {
		case local[id] && vaulted[id]:
			tier = "both"
		case local[id]:
			tier = "local"
		}
		count[[2]string{tier, src}]++
	}
	// Every tier of every source is reported, zero included, so a
	// dashboard sees a tier empty out rather than vanish.
	seen := map[string]bool{}
	for _, src := range sources {
		seen[src] = true
	}
	for src := range seen {
		for _, tier := range []string{"local", "vault", "both"} {
			ch <- prometheus.MustNewConstMetric(descPoints, prometheus.GaugeValue, float64(count[[2]string{tier, src}]), tier, src)
		}
	}
}

// DirSize is the size of the regular files under dir (the store's usage
// as status, metrics and the page show it); files a running job removes
// meanwhile are skipped.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
