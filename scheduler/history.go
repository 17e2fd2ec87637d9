package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// RunRecord is one run of a daemon job, as the run history keeps it.
type RunRecord struct {
	Job   string    `json:"job"` // "backup:NAME", "offload", "prune", "verify"
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Result is "ok", "partial" (the job's Problems), "failed" or
	// "skipped" (due while the same job still ran).
	Result string `json:"result"`
	Bytes  int64  `json:"bytes,omitempty"` // stored or sent, as the job counts it
	Error  string `json:"error,omitempty"` // the error or the problems, one line
}

// OK reports whether the run succeeded (in full or in part).
func (r RunRecord) OK() bool { return r.Result == "ok" || r.Result == "partial" }

// HistoryFile is the run history's file name in the store folder.
const HistoryFile = "daemon-history.json"

// historyKeep is how many runs of each job the history keeps.
const historyKeep = 50

// History is the daemon's run history: the last runs of each job, in a
// JSON file replaced atomically on every change, bounded in size.
type History struct {
	path string
	mu   sync.Mutex
	runs []RunRecord // oldest first
}

// OpenHistory reads the history kept in the store folder dir (empty when
// there is none yet).
func OpenHistory(dir string) (*History, error) {
	h := &History{path: filepath.Join(dir, HistoryFile)}
	b, err := os.ReadFile(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run history: %w", err)
	}
	if err := json.Unmarshal(b, &h.runs); err != nil {
		return nil, fmt.Errorf("read run history %s: %w", h.path, err)
	}
	return h, nil
}

// Add records a run and saves the history, keeping the last historyKeep
// runs of each job.
func (h *History) Add(r RunRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, r)
	count := map[string]int{}
	var kept []RunRecord
	for i := len(h.runs) - 1; i >= 0; i-- {
		if count[h.runs[i].Job]++; count[h.runs[i].Job] <= historyKeep {
			kept = append(kept, h.runs[i])
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Start.Before(kept[j].Start) })
	h.runs = kept
	b, err := json.MarshalIndent(h.runs, "", "  ")
	if err != nil {
		return err
	}
	if err := storage.WriteFileAtomic(h.path, b, 0o600); err != nil {
		return fmt.Errorf("save run history: %w", err)
	}
	return nil
}

// Runs returns the recorded runs of job ("" for all), oldest first.
func (h *History) Runs(job string) []RunRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []RunRecord
	for _, r := range h.runs {
		if job == "" || r.Job == job {
			out = append(out, r)
		}
	}
	return out
}

// Last returns the newest run of job, and the newest successful one.
func (h *History) Last(job string) (last, lastOK RunRecord, ok bool) {
	runs := h.Runs(job)
	if len(runs) == 0 {
		return RunRecord{}, RunRecord{}, false
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].OK() {
			lastOK = runs[i]
			break
		}
	}
	return runs[len(runs)-1], lastOK, true
}
