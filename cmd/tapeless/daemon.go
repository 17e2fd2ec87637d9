package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
)

func init() { addCommand(newDaemonCmd) }

// daemonOptions are the daemon's flags.
type daemonOptions struct {
	listen    string // HOST:PORT of /metrics, /healthz and /api/status ("": none)
	tokenFile string // file holding the bearer token those require
}

func newDaemonCmd(g *globalOptions) *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:     "daemon",
		Short:   "Run the configured backups, offload, prune and verify on their schedules",
		GroupID: groupService,
		Long: `Daemon runs the jobs of the configuration on their cron schedules until it
is stopped:

  sources[].schedule   a backup of that source
  jobs.offload         offload (the short-term retention policy)
  jobs.prune           prune (the long-term retention policy)
  jobs.verify          verify the store (every object re-hashed) and a 10%
                       sample of the vault's copies, continuing where the
                       last sample stopped; no passphrase: the daemon never
                       has it

Schedules are cron expressions of five fields, or six with seconds first,
or @daily, @hourly, @every 6h; they are read in jobs.time_zone (the local
zone when empty). A time the clocks skip at a daylight-saving change runs
when they have jumped; a time they pass twice runs once.

Jobs never overlap: they share the store, so a run that comes due while
another job runs waits its turn, and a job that comes due while it still
runs or waits is skipped (logged, and recorded as "skipped"). Runs missed
while the daemon was down run once at start when overdue. Every run is
recorded in the store folder's daemon-history.json (start, end, result,
bytes, error; the last 50 runs of each job).

SIGTERM or SIGINT stops taking work and lets the running job reach a safe
point (an offload or backup cut short is completed by the next run) and
exits within 30 seconds. SIGHUP reads the configuration again: a valid one
replaces the jobs, an invalid one is refused, logged, and the running jobs
are kept.

--listen HOST:PORT serves, while the daemon runs, /metrics (Prometheus
text format: runs, last success, durations and bytes per job, points per
tier and source, store size, pending replication, next runs; read from
local state, never from the vault), /healthz (200 "ok", or 503 and the
warnings of 'tapeless status', one per line) and /api/status (the JSON of
'tapeless status --json'). Off unless given. An address other than
loopback (127.0.0.1, ::1, localhost) is refused unless --listen-token-file
names a file holding a token, which every request must then send as
"Authorization: Bearer TOKEN".

The log goes to stderr, one JSON object per line (log/slog), or as text
when stderr is a terminal.

Exit codes: 0 stopped by a signal after the running job stopped; 1 the
configuration, store or history could not be read at start, or a job did
not stop within 30 seconds; 2 usage.`,
		Example: `  tapeless daemon
  tapeless daemon --config /etc/tapeless/config.yaml 2>>/var/log/tapeless.log
  kill -HUP $(pidof tapeless)          # read the configuration again
  tapeless daemon --listen 127.0.0.1:9781   # then: curl localhost:9781/metrics
  tapeless daemon --listen 0.0.0.0:9781 --listen-token-file /etc/tapeless/http-token

  # in the configuration:
  sources:
    - {name: home, path: /home, schedule: "0 1 * * *"}
  jobs: {offload: "0 3 * * *", prune: "0 5 * * 0", verify: "0 6 1 * *", time_zone: Europe/Berlin}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDaemon(cmd.Context(), g, o)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "", "serve /metrics, /healthz and /api/status on `HOST:PORT` (loopback unless a token is given)")
	cmd.Flags().StringVar(&o.tokenFile, "listen-token-file", "", "require the bearer token in `FILE` of every HTTP request (needed to listen beyond loopback)")
	return cmd
}

// listenToken checks --listen against --listen-token-file and returns the
// token ("" for none).
func (o daemonOptions) listenToken() (string, error) {
	if o.listen == "" {
		if o.tokenFile != "" {
			return "", usageError{errors.New("--listen-token-file needs --listen")}
		}
		return "", nil
	}
	if err := scheduler.CheckListen(o.listen, o.tokenFile != ""); err != nil {
		return "", usageError{fmt.Errorf("--listen: %w", err)}
	}
	if o.tokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--listen-token-file: %w", err)
	}
	t, err := scheduler.TrimToken(b)
	if err != nil {
		return "", usageError{fmt.Errorf("--listen-token-file %s: %w", o.tokenFile, err)}
	}
	return t, nil
}

// daemonLogger logs JSON lines, or text on a terminal.
func daemonLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func runDaemon(ctx context.Context, g *globalOptions, o daemonOptions) error {
	lg := daemonLogger(g.stderr)
	token, err := o.listenToken()
	if err != nil {
		return err
	}
	cfg, err := loadStoreConfig(g)
	if err != nil {
		return err
	}
	jobs, err := daemonJobs(g, cfg, lg)
	if err != nil {
		return err
	}
	// Open the store once now: a daemon that cannot is told at start,
	// not at the first backup hours later.
	s, err := openConfiguredStore(ctx, g, cfg)
	if err != nil {
		return err
	}
	s.Close()
	hist, err := scheduler.OpenHistory(cfg.Store)
	if err != nil {
		return err
	}
	d, err := scheduler.NewDaemon(jobs, hist)
	if err != nil {
		return err
	}
	d.Log = lg
	// Failures and recoveries are told to whoever notify: names; a
	// reload may change that, so the current notifier is read per run.
	// Delivery (a webhook with retries) runs beside the next job.
	var notifier atomic.Pointer[scheduler.Notifier]
	notifier.Store(newNotifier(cfg, lg))
	metrics := scheduler.NewMetrics(cfg.Store, hist, d.NextRuns)
	names := make([]string, 0, len(jobs))
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	metrics.Expect(names)
	d.OnRun = func(prev, cur scheduler.RunRecord) {
		metrics.Observe(cur)
		go notifier.Load().Observe(ctx, prev, cur)
	}
	// The configuration in force, as of the start or the last accepted
	// SIGHUP: /api/status reports on it.
	var running atomic.Pointer[config]
	running.Store(cfg)
	if o.listen != "" {
		addr, err := scheduler.ServeHTTP(ctx, o.listen, scheduler.HTTPConfig{Token: token, Metrics: metrics, Log: lg,
			Status: daemonStatus(g.configFile, running.Load), Page: daemonPage(running.Load)})
		if err != nil {
			return err
		}
		lg.Info("serving /metrics, /healthz and /api/status", "address", addr.String(), "token", token != "")
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if n, c := reloadDaemon(g, cfg.Store, d, lg); n != nil {
					notifier.Store(n)
					running.Store(c)
				}
			}
		}
	}()
	lg.Info("tapeless daemon", "version", version, "config", g.configFile, "store", cfg.Store, "pid", os.Getpid())
	return d.Run(ctx)
}

// daemonStatus is the /api/status and /healthz source of the daemon's
// HTTP endpoint: 'tapeless status --json' of the configuration cfg
// returns, which is the one in force.
func daemonStatus(configFile string, cfg func() *config) func(ctx context.Context) ([]byte, []scheduler.Warning, error) {
	return func(ctx context.Context) ([]byte, []scheduler.Warning, error) {
		rep, err := buildStatus(ctx, configFile, cfg())
		if err != nil {
			return nil, nil, err
		}
		var b bytes.Buffer
		if err := writeJSON(&b, rep.out); err != nil {
			return nil, nil, err
		}
		return b.Bytes(), rep.out.Warnings, nil
	}
}

// reloadDaemon reads the configuration again and swaps the daemon's jobs;
// a configuration that does not load, names another store or has a bad
// schedule is refused and the running jobs are kept.
// newNotifier is the notifier of cfg's notify: section.
func newNotifier(cfg *config, lg *slog.Logger) *scheduler.Notifier {
	return scheduler.NewNotifier(scheduler.NotifyConfig{Webhook: cfg.Notify.Webhook, OnFailure: cfg.Notify.OnFailure, OnRecovery: cfg.Notify.OnRecovery},
		cfg.Server, cfg.Store, lg)
}

// reloadDaemon applies the configuration file again and returns the
// notifier of its notify: section and the configuration (nil when it
// refused the file).
func reloadDaemon(g *globalOptions, store string, d *scheduler.Daemon, lg *slog.Logger) (*scheduler.Notifier, *config) {
	lg.Info("SIGHUP: reading the configuration again", "config", g.configFile)
	refuse := func(err error) {
		lg.Error("configuration refused, keeping the running jobs", "config", g.configFile, "error", oneLine(err.Error()))
	}
	cfg, err := loadStoreConfig(g)
	if err != nil {
		refuse(err)
		return nil, nil
	}
	if cfg.Store != store {
		refuse(fmt.Errorf("store: changed from %s to %s; restart the daemon to use another store", store, cfg.Store))
		return nil, nil
	}
	jobs, err := daemonJobs(g, cfg, lg)
	if err != nil {
		refuse(err)
		return nil, nil
	}
	if err := d.Reload(jobs); err != nil {
		refuse(err)
		return nil, nil
	}
	return newNotifier(cfg, lg), cfg
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// daemonJobs builds the daemon's jobs from the configuration: a backup per
// source with a schedule, then offload, prune and verify.
func daemonJobs(g *globalOptions, cfg *config, lg *slog.Logger) ([]scheduler.Job, error) {
	if tz := cfg.Jobs.TimeZone; tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("jobs.time_zone in %s: %w; expected a zone name such as Europe/Berlin or UTC", g.configFile, err)
		}
	}
	var jobs []scheduler.Job
	add := func(field, name, spec string, run func(ctx context.Context, site *scheduler.Site) (scheduler.RunRecord, error)) error {
		if spec == "" {
			return nil
		}
		s, err := scheduler.ParseSchedule(spec, cfg.Jobs.TimeZone)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", field, g.configFile, err)
		}
		jobs = append(jobs, scheduler.Job{Name: name, Schedule: s, Run: func(ctx context.Context) (scheduler.RunRecord, error) {
			site := siteOf(nil, cfg)
			site.Note = func(msg string) { lg.Info("note", "job", name, "note", msg) }
			return run(ctx, site)
		}})
		return nil
	}
	for i, src := range cfg.Sources {
		if err := add(fmt.Sprintf("sources[%d].schedule", i), "backup:"+src.Name, src.Schedule,
			func(ctx context.Context, site *scheduler.Site) (scheduler.RunRecord, error) {
				return daemonBackup(ctx, g, cfg, src, lg)
			}); err != nil {
			return nil, err
		}
	}
	if err := add("jobs.offload", "offload", cfg.Jobs.Offload, func(ctx context.Context, site *scheduler.Site) (scheduler.RunRecord, error) {
		return daemonOffload(ctx, g, cfg, site, lg)
	}); err != nil {
		return nil, err
	}
	if err := add("jobs.prune", "prune", cfg.Jobs.Prune, func(ctx context.Context, site *scheduler.Site) (scheduler.RunRecord, error) {
		return daemonPrune(ctx, g, cfg, site)
	}); err != nil {
		return nil, err
	}
	if err := add("jobs.verify", "verify", cfg.Jobs.Verify, func(ctx context.Context, site *scheduler.Site) (scheduler.RunRecord, error) {
		return daemonVerify(ctx, g, cfg, site)
	}); err != nil {
		return nil, err
	}
	return jobs, nil
}

// openConfiguredStore opens cfg's store as openLocalStore does, for a
// configuration already read (the daemon's, as of its start or last
// SIGHUP).
func openConfiguredStore(ctx context.Context, g *globalOptions, cfg *config) (*archive.Store, error) {
	s, err := archive.OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, storeOpenError(err)
	}
	if err := checkStoreKey(g, cfg, s.PublicKeys().Fingerprint); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// partialRecord is a run that succeeded in part.
func partialRecord(bytes int64, problems []string) scheduler.RunRecord {
	if len(problems) == 0 {
		return scheduler.RunRecord{Result: "ok", Bytes: bytes}
	}
	return scheduler.RunRecord{Result: "partial", Bytes: bytes, Error: oneLine(strings.Join(problems, "; and "))}
}

func daemonBackup(ctx context.Context, g *globalOptions, cfg *config, src sourceConfig, lg *slog.Logger) (scheduler.RunRecord, error) {
	s, err := openConfiguredStore(ctx, g, cfg)
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	defer s.Close()
	var o backupOptions
	sources := resolveSources(cfg, []string{src.Name}, &o)
	bo := o.archiveOptions(sources)
	bo.OnError = func(path string, err error) error {
		lg.Warn("skipped", "job", "backup:"+src.Name, "path", path, "error", err.Error())
		return nil
	}
	sum, err := archive.Backup(ctx, s, bo)
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	lg.Info("recovery point made", "job", "backup:"+src.Name, "point", sum.Point.String(), "files", sum.Files,
		"new_stored_bytes", sum.NewStoredBytes)
	var problems []string
	if p := scheduler.BackupProblems(sum); p != "" {
		problems = append(problems, p)
	}
	return partialRecord(sum.NewStoredBytes, problems), nil
}

func daemonOffload(ctx context.Context, g *globalOptions, cfg *config, site *scheduler.Site, lg *slog.Logger) (scheduler.RunRecord, error) {
	s, err := openConfiguredStore(ctx, g, cfg)
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	defer s.Close()
	rep, err := scheduler.Offload(ctx, site, s, scheduler.OffloadRequest{
		Policy: site.Policy,
		Log:    func(msg string) { lg.Info("offload", "job", "offload", "note", msg) },
	})
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	r := rep.Result
	lg.Info("offloaded", "job", "offload", "archived", len(r.Archived), "pending", len(r.Pending),
		"uploaded_bytes", r.BytesUploaded, "objects", r.ObjectsUploaded)
	return partialRecord(r.BytesUploaded, rep.Problems()), nil
}

func daemonPrune(ctx context.Context, g *globalOptions, cfg *config, site *scheduler.Site) (scheduler.RunRecord, error) {
	s, err := openConfiguredStore(ctx, g, cfg)
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	defer s.Close()
	rep, err := scheduler.Prune(ctx, site, s, scheduler.PruneRequest{})
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	return partialRecord(rep.Result.BytesRemoved, rep.Problems()), nil
}

// daemonVerifySubset is the percent of the vault's packs one scheduled
// verify reads; successive runs continue where the last stopped.
const daemonVerifySubset = 10

// daemonVerify checks the store (every object re-hashed) and, when
// registered, a sample of the vault's copies, without the passphrase.
// Damage fails the run.
func daemonVerify(ctx context.Context, g *globalOptions, cfg *config, site *scheduler.Site) (scheduler.RunRecord, error) {
	v, err := archive.OpenStoreView(ctx, cfg.Store)
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	defer v.Close()
	if err := checkStoreKey(g, cfg, v.KeyFingerprint); err != nil {
		return scheduler.RunRecord{}, err
	}
	// An offload's cleanup must not remove objects while they are checked;
	// the daemon runs none meanwhile, but a command might.
	lock, err := archive.LockForRead(ctx, v.Dir, func() {})
	if err != nil && !errors.Is(err, archive.ErrNoReadLock) {
		return scheduler.RunRecord{}, err
	}
	if lock != nil {
		defer lock.Release()
	}
	rep, err := scheduler.VerifyStore(ctx, v, scheduler.VerifyRequest{ReadData: true, Site: site})
	if err != nil {
		return scheduler.RunRecord{}, err
	}
	bytes := rep.Stats.BytesRead
	if n := len(rep.Problems); n > 0 {
		return scheduler.RunRecord{Bytes: bytes}, fmt.Errorf("verify of the store found %d problems, first: %s", n, rep.Problems[0])
	}
	if cfg.Vault == nil || cfg.Vault.Name == "" {
		return scheduler.RunRecord{Result: "ok", Bytes: bytes}, nil
	}
	vr, err := scheduler.VerifyVault(ctx, site, scheduler.VaultVerifyRequest{Copy: "both", ReadData: true, Subset: daemonVerifySubset})
	if err != nil {
		return scheduler.RunRecord{Bytes: bytes}, fmt.Errorf("verify of the vault: %w", err)
	}
	for _, c := range vr.Check.Copies {
		bytes += c.Stats.BytesRead
	}
	if n := len(vr.Check.Problems); n > 0 {
		p := vr.Check.Problems[0]
		return scheduler.RunRecord{Bytes: bytes}, fmt.Errorf("verify of the vault found %d problems, first: %s copy: %s: %s; 'tapeless vault repair' copies intact objects over them from the other copy",
			n, p.Copy, p.Object, p.Error)
	}
	return scheduler.RunRecord{Result: "ok", Bytes: bytes}, nil
}
