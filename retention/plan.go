package retention

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Decision is the action for one point and why.
type Decision struct {
	Point   Point    `json:"point"`
	Action  Action   `json:"action"`
	Reasons []string `json:"reasons"`
}

// Plan is the outcome of Apply: one decision per point, sorted by source,
// then newest first, then ID.
type Plan struct {
	Decisions []Decision `json:"decisions"`
	// Location is where Format shows times; nil means UTC.
	Location *time.Location `json:"-"`
}

// ByAction returns the decisions with action a, in plan order.
func (p Plan) ByAction(a Action) []Decision {
	return p.filter(func(d Decision) bool { return d.Action == a })
}

// BySource returns the decisions for points of the named source, in plan
// order.
func (p Plan) BySource(source string) []Decision {
	return p.filter(func(d Decision) bool { return d.Point.Source == source })
}

// Sources returns the names of the sources in the plan, sorted.
func (p Plan) Sources() []string {
	var s []string
	for _, d := range p.Decisions {
		s = append(s, d.Point.Source)
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func (p Plan) filter(keep func(Decision) bool) []Decision {
	var out []Decision
	for _, d := range p.Decisions {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// Format writes the plan as an aligned table (action, source, time, ID,
// reasons), one line per point, followed by a count per action: the text
// `offload --dry-run` and `prune --dry-run` print.
func (p Plan) Format(w io.Writer) error {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSOURCE\tTIME\tID\tREASONS")
	for _, d := range p.Decisions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Action, d.Point.Source,
			d.Point.Time.In(loc).Format("2006-01-02 15:04:05 -07:00"), d.Point.ID, strings.Join(d.Reasons, "; "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	var counts []string
	for _, a := range []Action{KeepLocal, Offload, KeepInVault, Expire} {
		counts = append(counts, fmt.Sprintf("%d %s", len(p.ByAction(a)), a))
	}
	if _, err := fmt.Fprintf(w, "%d points: %s\n", len(p.Decisions), strings.Join(counts, ", ")); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}
