package retention

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// formatPlan is a small plan over two sources with every action.
func formatPlan(t *testing.T) Plan {
	t.Helper()
	berlin := mustLoad(t, "Europe/Berlin")
	now := ts(t, "2026-11-26 06:00 +0100")
	points := []Point{
		{ID: "5e1f0c2a", Source: "home", Time: ts(t, "2026-11-25 01:00 +0100"), Tier: Local},
		{ID: "77b0d4e9", Source: "home", Time: ts(t, "2026-11-02 01:00 +0100"), Tier: Local},
		{ID: "0a9c3f11", Source: "home", Time: ts(t, "2026-10-20 01:00 +0200"), Tier: Vault},
		{ID: "c4d2e810", Source: "home", Time: ts(t, "2026-10-19 01:00 +0200"), Tier: Vault},
		{ID: "91aa7b03", Source: "home", Time: ts(t, "2026-10-18 01:00 +0200"), Tier: Vault, State: ReplicationPending},
		{ID: "e2f4a6c8", Source: "db", Time: ts(t, "2026-11-26 05:00 +0100"), Tier: Local},
		{ID: "3b5d7f90", Source: "db", Time: ts(t, "2027-01-01 00:00 +0100"), Tier: Vault},
	}
	p := Policy{Local: LocalPolicy{KeepWithin: 14 * day, KeepLast: 1}, Vault: VaultPolicy{Daily: 1, Monthly: 1}}
	plan, err := Apply(points, p, now, berlin)
	if err != nil {
		t.Fatalf("Apply() error %v", err)
	}
	return plan
}

func TestFormat(t *testing.T) {
	plan := formatPlan(t)
	var b bytes.Buffer
	if err := plan.Format(&b); err != nil {
		t.Fatalf("Format() error %v", err)
	}
	if !strings.Contains(b.String(), "7 points: 2 keep-local, 1 offload, 2 keep-in-vault, 2 expire\n") {
		t.Errorf("Format() summary wrong:\n%s", b.String())
	}
	golden(t, "format.txt", b.Bytes())
}

func TestFormatLocation(t *testing.T) {
	when := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	p := Plan{Decisions: []Decision{{Point: Point{ID: "x", Source: "s", Time: when, Tier: Local}, Action: KeepLocal}}}
	var b bytes.Buffer
	if err := p.Format(&b); err != nil {
		t.Fatalf("Format() error %v", err)
	}
	if !strings.Contains(b.String(), "2026-07-01 12:00:00 +00:00") {
		t.Errorf("Format() with no location did not print UTC:\n%s", b.String())
	}
	p.Location = mustLoad(t, "America/New_York")
	b.Reset()
	if err := p.Format(&b); err != nil {
		t.Fatalf("Format() error %v", err)
	}
	if !strings.Contains(b.String(), "2026-07-01 08:00:00 -04:00") {
		t.Errorf("Format() in New York did not print EDT:\n%s", b.String())
	}
}

// limitWriter accepts n bytes, then fails.
type limitWriter struct{ n int }

var errFull = errors.New("disk full")

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.n = 0
		return 0, errFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestFormatWriteErrors(t *testing.T) {
	plan := formatPlan(t)
	var b bytes.Buffer
	if err := plan.Format(&b); err != nil {
		t.Fatalf("Format() error %v", err)
	}
	table := strings.LastIndex(b.String(), "7 points")
	for _, n := range []int{0, table} {
		err := plan.Format(&limitWriter{n: n})
		if !errors.Is(err, errFull) || !strings.HasPrefix(err.Error(), "write plan: ") {
			t.Errorf("Format() into a writer full after %d bytes = %v, want a wrapped write error", n, err)
		}
	}
}

func TestPlanHelpers(t *testing.T) {
	plan := formatPlan(t)
	ids := func(ds []Decision) []string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Point.ID)
		}
		return s
	}
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		{"ByAction(KeepLocal)", ids(plan.ByAction(KeepLocal)), []string{"e2f4a6c8", "5e1f0c2a"}},
		{"ByAction(Offload)", ids(plan.ByAction(Offload)), []string{"77b0d4e9"}},
		{"ByAction(KeepInVault)", ids(plan.ByAction(KeepInVault)), []string{"3b5d7f90", "91aa7b03"}},
		{"ByAction(Expire)", ids(plan.ByAction(Expire)), []string{"0a9c3f11", "c4d2e810"}},
		{"BySource(db)", ids(plan.BySource("db")), []string{"3b5d7f90", "e2f4a6c8"}},
		{"BySource(none)", ids(plan.BySource("none")), nil},
		{"Sources()", plan.Sources(), []string{"db", "home"}},
	}
	for _, c := range cases {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
