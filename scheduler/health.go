package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage/humanize"
	"github.com/tapeless/tapeless/storage/vault"
)

// Schedule is one daemon job and when it runs: a cron expression (five
// fields, or six with seconds first; @daily, @every 6h) in Loc (time.Local
// when nil).
type Schedule struct {
	Job  string // "backup:NAME", "offload", "prune", "verify"
	Spec string
	Loc  *time.Location
}

// parseSchedule parses s.Spec in s.Loc with the one cron dialect
// (cronspec.go).
func parseSchedule(s Schedule) (cron.Schedule, error) {
	sched, err := cronParser.Parse(s.Spec)
	if err != nil {
		return nil, fmt.Errorf("schedule of %s %q: %w", s.Job, s.Spec, err)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		loc := s.Loc
		if loc == nil {
			loc = time.Local
		}
		spec.Location = loc
	}
	return sched, nil
}

// Next is when s runs next after now (NextRun: daylight-saving changes
// neither skip nor repeat a run).
func (s Schedule) Next(now time.Time) (time.Time, error) {
	sched, err := parseSchedule(s)
	if err != nil {
		return time.Time{}, err
	}
	return NextRun(sched, now), nil
}

// Warning is something an operator must see: Code names the kind (the
// list is in docs/OPERATIONS.md), Job the job it concerns if any, Message
// what is wrong and Hint what to do.
type Warning struct {
	Code    string `json:"code"`
	Job     string `json:"job,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// Warning codes.
const (
	WarnOverdue      = "overdue"       // no successful run for over twice the schedule's interval
	WarnFailed       = "failed"        // the job's last run failed
	WarnDamage       = "verify_damage" // the last verify found damage, or the store holds damaged points
	WarnStagingSpace = "staging_space" // staging below the scratch rule for the newest point
	WarnCredentials  = "credentials"   // the vault's keys are missing, refused or readable by others
	WarnLock         = "lock"          // the store or vault lock stops the jobs
	WarnSchedule     = "schedule"      // a schedule that does not parse
)

// HealthFacts is what the caller read from local state for Health: it
// never opens the store or the vault itself.
type HealthFacts struct {
	// LastBackup is the time of the newest point of each data source
	// (local or offloaded), evidence of a backup besides the history.
	LastBackup map[string]time.Time
	// LastOffload is when a point was last offloaded (the catalogue).
	LastOffload time.Time
	// NewestPointBytes is the newest point's size of source data: what a
	// restore of it stages.
	NewestPointBytes int64
	// DamagedPoints counts the store's point objects that cannot be read.
	DamagedPoints int
	// ConfigFile is the configuration file, checked for secret keys
	// readable by others ("" skips the check).
	ConfigFile string
	// ConfigHasKeys says the configuration file holds secret keys.
	ConfigHasKeys bool
}

// Health returns the warnings an operator must see about site at now,
// from the run history (nil: none recorded), the daemon's schedules and
// the facts the caller read. Every check is local and cheap; none
// contacts the vault.
func Health(site *Site, history *History, schedules []Schedule, now time.Time, facts HealthFacts) []Warning {
	var runs []RunRecord
	if history != nil {
		runs = history.Runs("")
	}
	var ws []Warning
	ws = append(ws, overdueWarnings(runs, schedules, now, facts)...)
	ws = append(ws, runWarnings(runs)...)
	if facts.DamagedPoints > 0 {
		ws = append(ws, Warning{Code: WarnDamage, Message: fmt.Sprintf("%d of the store's point objects cannot be read", facts.DamagedPoints),
			Hint: "run 'tapeless verify' to see what is damaged; the points in the vault are unaffected"})
	}
	if w, ok := stagingWarning(site, facts.NewestPointBytes); ok {
		ws = append(ws, w)
	}
	ws = append(ws, credentialWarnings(site, facts)...)
	if w, ok := storeLockWarning(site, now); ok {
		ws = append(ws, w)
	}
	return ws
}

// overdueWarnings: a job with a schedule whose last success is more than
// twice the schedule's interval ago. The interval is the longer of the
// gap from the last success to the next scheduled run and the gap
// between the two runs after it, so a weekday schedule does not warn
// over a weekend. With no success at all the reference is the job's
// first recorded run, else the history's first (the daemon has run since
// then); with no history and no other evidence nothing is known and
// nothing is said. A schedule that does not parse is a warning too.
func overdueWarnings(runs []RunRecord, schedules []Schedule, now time.Time, facts HealthFacts) []Warning {
	var out []Warning
	for _, s := range schedules {
		if s.Spec == "" {
			continue
		}
		sched, err := parseSchedule(s)
		if err != nil {
			out = append(out, Warning{Code: WarnSchedule, Job: s.Job, Message: err.Error(),
				Hint: "fix the schedule in the configuration ('tapeless config check' shows the expected form)"})
			continue
		}
		var lastOK, firstRun time.Time
		for _, r := range runs {
			if r.Job != s.Job {
				continue
			}
			if firstRun.IsZero() || r.Start.Before(firstRun) {
				firstRun = r.Start
			}
			if r.OK() && r.Start.After(lastOK) {
				lastOK = r.Start
			}
		}
		evidence := time.Time{}
		switch {
		case s.Job == "offload":
			evidence = facts.LastOffload
		case strings.HasPrefix(s.Job, "backup:"):
			evidence = facts.LastBackup[strings.TrimPrefix(s.Job, "backup:")]
		}
		if evidence.After(lastOK) {
			lastOK = evidence
		}
		ref, what := lastOK, "last succeeded"
		if ref.IsZero() {
			ref, what = firstRun, "has not succeeded since its first run"
			if ref.IsZero() && len(runs) > 0 {
				ref, what = runs[0].Start, "has not succeeded since the daemon's first run"
			}
		}
		if ref.IsZero() {
			continue
		}
		n1 := NextRun(sched, ref)
		n2 := NextRun(sched, n1)
		interval := max(n1.Sub(ref), n2.Sub(n1))
		if age := now.Sub(ref); interval > 0 && age > 2*interval {
			out = append(out, Warning{Code: WarnOverdue, Job: s.Job,
				Message: fmt.Sprintf("%s %s %s ago (at %s), more than twice its schedule's interval of %s",
					s.Job, what, humanize.Duration(age), ref.Format(time.RFC3339), humanize.Duration(interval)),
				Hint: overdueHint(s.Job)})
		}
	}
	return out
}

func overdueHint(job string) string {
	switch {
	case job == "offload":
		return "check that the daemon runs ('systemctl status tapeless') and its log for offload errors; 'tapeless offload' runs one now"
	case strings.HasPrefix(job, "backup:"):
		return "check that the daemon runs ('systemctl status tapeless') and its log for backup errors; 'tapeless backup' runs one now"
	}
	return "check that the daemon runs ('systemctl status tapeless') and its log for errors"
}

// runWarnings: per job, a last run that failed (a credentials or lock
// failure under its own code), and a last verify that found damage.
func runWarnings(runs []RunRecord) []Warning {
	last := map[string]RunRecord{}
	for _, r := range runs {
		if r.Result == "skipped" {
			continue
		}
		if p, ok := last[r.Job]; !ok || !r.Start.Before(p.Start) {
			last[r.Job] = r
		}
	}
	jobs := make([]string, 0, len(last))
	for j := range last {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	var out []Warning
	for _, j := range jobs {
		r := last[j]
		at := r.Start.Format(time.RFC3339)
		switch {
		case strings.HasPrefix(j, "verify") && r.Result == "partial":
			out = append(out, Warning{Code: WarnDamage, Job: j, Message: fmt.Sprintf("the verify of %s found damage: %s", at, r.Error),
				Hint: "see docs/RECOVERY.md: 'tapeless verify' names the damaged points; 'tapeless vault repair' restores vault objects from the other copy"})
		case r.Result == "failed" && credentialError(r.Error):
			out = append(out, Warning{Code: WarnCredentials, Job: j, Message: fmt.Sprintf("%s of %s was refused by the vault: %s", j, at, r.Error),
				Hint: "the vault's access keys are wrong, expired or revoked: get a new credentials file and run 'tapeless register' with it"})
		case r.Result == "failed" && lockError(r.Error):
			out = append(out, Warning{Code: WarnLock, Job: j, Message: fmt.Sprintf("%s of %s could not take a lock: %s", j, at, r.Error),
				Hint: "another tapeless process holds the store or the vault; if it is gone, the lock's message says how to release it"})
		case r.Result == "failed":
			out = append(out, Warning{Code: WarnFailed, Job: j, Message: fmt.Sprintf("the last %s, at %s, failed: %s", j, at, r.Error),
				Hint: "see the daemon's log ('journalctl -u tapeless') for the run; the next scheduled run retries"})
		}
	}
	return out
}

// credentialError and lockError read a recorded error's text: the
// history keeps errors as one line, not as values.
func credentialError(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"accessdenied", "access denied", "invalidaccesskeyid", "access key id you provided does not exist",
		"signaturedoesnotmatch", "signature we calculated does not match", "expiredtoken", "403 forbidden"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func lockError(msg string) bool {
	return strings.Contains(msg, "is locked by") || strings.Contains(msg, "vault lock")
}

// stagingWarning applies the scratch rule to the staging folder for the
// newest point: a restore of it would be refused.
func stagingWarning(site *Site, newest int64) (Warning, bool) {
	if site == nil || site.Store == "" || newest <= 0 {
		return Warning{}, false
	}
	staging := site.Staging
	if staging == "" {
		staging = filepath.Join(filepath.Dir(site.Store), "staging")
	}
	err := vault.CheckScratch(staging, newest)
	if err == nil {
		return Warning{}, false
	}
	var se *vault.ScratchSpaceError
	if errors.As(err, &se) {
		return Warning{Code: WarnStagingSpace, Message: fmt.Sprintf("staging folder %s has %s free, below the scratch rule's %s for the newest point (%s)",
			staging, humanize.Bytes(se.Free), humanize.Bytes(se.Need), humanize.Bytes(newest)),
			Hint: "free space there or set another staging folder ('tapeless configure --staging DIR'); a restore from the vault is refused until then"}, true
	}
	return Warning{Code: WarnStagingSpace, Message: err.Error(), Hint: "check the staging folder's path and permissions"}, true
}

// credentialWarnings: a registered vault on S3 with no keys anywhere, and
// secret keys in a configuration file others may read.
func credentialWarnings(site *Site, facts HealthFacts) []Warning {
	var out []Warning
	if site != nil && site.Vault != nil && strings.HasPrefix(site.Vault.Primary.URL, "s3://") {
		o := site.Vault.Primary.Options
		if o.AccessKey == "" && o.SecretKey == "" && (os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == "") {
			out = append(out, Warning{Code: WarnCredentials, Message: "the vault's access keys are in neither the configuration nor the environment",
				Hint: "run 'tapeless register' with the vault's credentials file, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the daemon"})
		}
	}
	if facts.ConfigFile != "" && facts.ConfigHasKeys {
		if fi, err := os.Stat(facts.ConfigFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			out = append(out, Warning{Code: WarnCredentials,
				Message: fmt.Sprintf("%s holds the vault's secret keys and others may read it (mode %04o)", facts.ConfigFile, fi.Mode().Perm()),
				Hint:    fmt.Sprintf("chmod 600 %s", facts.ConfigFile)})
		}
	}
	return out
}

// storeLockHeldTooLong is when a live holder of the store lock is taken
// for stuck: no job of a healthy store runs this long.
const storeLockHeldTooLong = 24 * time.Hour

// storeLockWarning reads the store's lock file (archive's single-writer
// lock: JSON naming the holder, empty when released). A holder on another
// host blocks every job here until removed by hand; a live holder on this
// host for over a day is probably stuck. A dead holder on this host is
// taken over by the next job and not warned about.
func storeLockWarning(site *Site, now time.Time) (Warning, bool) {
	if site == nil || site.Store == "" {
		return Warning{}, false
	}
	path := filepath.Join(site.Store, "lock")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(strings.TrimSpace(string(b))) == 0) {
		return Warning{}, false
	}
	if err != nil {
		return Warning{Code: WarnLock, Message: fmt.Sprintf("cannot read the store lock: %v", err),
			Hint: "the daemon's user must own the store folder"}, true
	}
	var li archive.LockInfo
	if err := json.Unmarshal(b, &li); err != nil {
		return Warning{Code: WarnLock, Message: fmt.Sprintf("the store lock %s is unreadable: %v", path, err),
			Hint: "if no tapeless process runs, empty the file"}, true
	}
	host, _ := os.Hostname()
	switch {
	case li.Host != host:
		return Warning{Code: WarnLock, Message: fmt.Sprintf("the store is locked from host %s (pid %d) since %s", li.Host, li.PID, li.Started.Format(time.RFC3339)),
			Hint: "no job runs here until it is released; if that process is gone, remove " + path}, true
	case processAlive(li.PID) && now.Sub(li.Started) > storeLockHeldTooLong:
		return Warning{Code: WarnLock, Message: fmt.Sprintf("process %d has held the store lock since %s (%s)", li.PID, li.Started.Format(time.RFC3339), humanize.Duration(now.Sub(li.Started))),
			Hint: "a job may be stuck: check it with 'ps " + fmt.Sprint(li.PID) + "' and the daemon's log"}, true
	}
	return Warning{}, false
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
