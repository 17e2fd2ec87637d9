package scheduler

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"
)

// PageExtra is what the status page shows beside the status report:
// the points of each source by tier, the last runs and the throttle
// schedule. None of it is secret.
type PageExtra struct {
	Sources  []PageSource
	Runs     []RunRecord // newest first
	Throttle string      // the configuration's throttle: schedule, "" for none
}

// PageSource is one data source's points by tier.
type PageSource struct {
	Source string
	Points []PagePoint // oldest first
}

// PagePoint is one restore point on the page's timeline.
type PagePoint struct {
	Time time.Time
	// Tier is "local" (only in the store), "vault" (only in the vault),
	// "both", or "pending" (in the vault, its replication pending).
	Tier  string
	Bytes int64
}

// pageStatus is the part of 'tapeless status --json' the page shows; it
// is decoded from the same JSON /api/status serves.
type pageStatus struct {
	Config             string `json:"config"`
	Store              string `json:"store"`
	Vault              string `json:"vault"`
	Replication        string `json:"replication"`
	LocalPoints        int    `json:"local_points"`
	LocalBytes         int64  `json:"local_source_bytes"`
	Archived           int    `json:"archived_points"`
	Uploading          int    `json:"uploading_points"`
	Expired            int    `json:"expired_points"`
	PendingReplication *struct {
		Points  int       `json:"points"`
		Objects int       `json:"objects"`
		Bytes   int64     `json:"stored_bytes"`
		Oldest  time.Time `json:"oldest"`
	} `json:"pending_replication"`
	LastOffload  *time.Time `json:"last_offload"`
	CatalogError string     `json:"catalog_error"`
	StoreBytes   int64      `json:"store_disk_bytes"`
	Jobs         []struct {
		Job           string     `json:"job"`
		Schedule      string     `json:"schedule"`
		ScheduleError string     `json:"schedule_error"`
		NextRun       *time.Time `json:"next_run"`
		Last          *struct {
			Start  time.Time `json:"start"`
			End    time.Time `json:"end"`
			Result string    `json:"result"`
			Error  string    `json:"error"`
		} `json:"last"`
		LastSuccess *time.Time `json:"last_success"`
	} `json:"jobs"`
	HistoryError string    `json:"history_error"`
	Warnings     []Warning `json:"warnings"`
}

// pageView is what the template renders.
type pageView struct {
	Now       time.Time
	Status    pageStatus
	StatusErr string
	Extra     PageExtra
	ExtraErr  string
	Tiers     map[string]int // points per tier over every source
}

//go:embed page.html.tmpl
var pageTemplate string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "never"
			}
			return v.Local().Format("2006-01-02 15:04")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "never"
			}
			return v.Local().Format("2006-01-02 15:04")
		}
		return ""
	},
	"bytes": pageBytes,
	"count": func(tier string, pts []PagePoint) int {
		n := 0
		for _, p := range pts {
			if p.Tier == tier {
				n++
			}
		}
		return n
	},
}).Parse(pageTemplate))

// pageBytes writes n in binary units, as a person reads them.
func pageBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// servePage renders the status page from the status report (the func
// /api/status serves) and the page's extra data.
func (c HTTPConfig) servePage(w http.ResponseWriter, r *http.Request) {
	v := pageView{Now: time.Now(), Tiers: map[string]int{}}
	if st, _, err := c.Status(r.Context()); err != nil {
		v.StatusErr = oneLine(err.Error())
	} else if err := json.Unmarshal(st, &v.Status); err != nil {
		v.StatusErr = fmt.Sprintf("read the status report: %v", err)
	}
	if c.Page != nil {
		ex, err := c.Page(r.Context())
		if err != nil {
			v.ExtraErr = oneLine(err.Error())
		}
		v.Extra = ex
	}
	sort.SliceStable(v.Extra.Sources, func(i, j int) bool { return v.Extra.Sources[i].Source < v.Extra.Sources[j].Source })
	for _, s := range v.Extra.Sources {
		for _, p := range s.Points {
			v.Tiers[p.Tier]++
		}
	}
	// Rendered to a buffer first: a template error is a 500, not half a
	// page.
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, v); err != nil {
		http.Error(w, "render the status page: "+oneLine(err.Error()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}
