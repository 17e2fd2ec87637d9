package retention

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zoneinfo
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/retention")

const day = 24 * time.Hour

// ts parses "2006-01-02 15:04 -0700"; the explicit offset pins instants in
// the repeated hour of a DST change.
func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04 -0700", s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	if name == "" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load location %s: %v", name, err)
	}
	return loc
}

// pt is a test point: id, time, tier and optional state; source "home"
// unless the id carries "src/".
type pt struct {
	id    string
	time  string
	tier  Tier
	state State
}

type applyCase struct {
	name   string
	loc    string // "" passes a nil location
	now    string
	policy Policy
	points []pt
	// want is the action of every point.
	want map[string]Action
	// reasons are the exact reasons of selected points.
	reasons map[string][]string
}

func applyCases() []applyCase {
	return []applyCase{
		{
			// Mar 29 2026 has 23 hours in Berlin. e and f are one UTC day
			// apart from their local days, so UTC buckets would differ.
			name:   "berlin spring forward",
			loc:    "Europe/Berlin",
			now:    "2026-04-01 12:00 +0200",
			policy: Policy{Vault: VaultPolicy{Daily: 3}},
			points: []pt{
				{"g", "2026-03-27 12:00 +0100", Vault, 0},
				{"a", "2026-03-28 23:30 +0100", Vault, 0},
				{"b", "2026-03-29 00:30 +0100", Vault, 0},
				{"c", "2026-03-29 01:59 +0100", Vault, 0},
				{"d", "2026-03-29 03:00 +0200", Vault, 0},
				{"e", "2026-03-29 23:30 +0200", Vault, 0},
				{"f", "2026-03-30 00:30 +0200", Vault, 0},
			},
			want: map[string]Action{"f": KeepInVault, "e": KeepInVault, "a": KeepInVault,
				"b": Expire, "c": Expire, "d": Expire, "g": Expire},
			reasons: map[string][]string{
				"f": {"daily 2026-03-30 (1 of 3)"},
				"e": {"daily 2026-03-29 (2 of 3)"},
				"a": {"daily 2026-03-28 (3 of 3)"},
				"b": {ReasonNotKept},
			},
		},
		{
			// The same instants with a nil location: days are UTC days,
			// so e and f share Mar 29 and a and b share Mar 28.
			name:   "nil location is utc",
			loc:    "",
			now:    "2026-04-01 12:00 +0200",
			policy: Policy{Vault: VaultPolicy{Daily: 3}},
			points: []pt{
				{"g", "2026-03-27 12:00 +0100", Vault, 0},
				{"a", "2026-03-28 23:30 +0100", Vault, 0},
				{"b", "2026-03-29 00:30 +0100", Vault, 0},
				{"e", "2026-03-29 23:30 +0200", Vault, 0},
				{"f", "2026-03-30 00:30 +0200", Vault, 0},
			},
			want: map[string]Action{"f": KeepInVault, "e": Expire, "b": KeepInVault, "a": Expire, "g": KeepInVault},
			reasons: map[string][]string{
				"f": {"daily 2026-03-29 (1 of 3)"},
				"b": {"daily 2026-03-28 (2 of 3)"},
				"g": {"daily 2026-03-27 (3 of 3)"},
			},
		},
		{
			// Oct 25 2026 has 25 hours in Berlin: e at 23:30 CET is still
			// Oct 25 although it is 25.5 hours after midnight CEST.
			name:   "berlin fall back 25-hour day",
			loc:    "Europe/Berlin",
			now:    "2026-11-01 12:00 +0100",
			policy: Policy{Vault: VaultPolicy{Daily: 3, Weekly: 2}},
			points: []pt{
				{"a", "2026-10-24 23:30 +0200", Vault, 0},
				{"b", "2026-10-25 00:15 +0200", Vault, 0},
				{"e", "2026-10-25 23:30 +0100", Vault, 0},
				{"f", "2026-10-26 00:30 +0100", Vault, 0},
			},
			want: map[string]Action{"f": KeepInVault, "e": KeepInVault, "a": KeepInVault, "b": Expire},
			reasons: map[string][]string{
				"f": {"daily 2026-10-26 (1 of 3)", "weekly 2026-W44 (1 of 2)"},
				"e": {"daily 2026-10-25 (2 of 3)", "weekly 2026-W43 (2 of 2)"},
				"a": {"daily 2026-10-24 (3 of 3)"},
			},
		},
		{
			// 02:30 happens twice on Oct 25 2026 in Berlin; the second
			// one (CET) is the newer and is the one the day keeps.
			name:   "berlin fall back repeated hour",
			loc:    "Europe/Berlin",
			now:    "2026-11-01 12:00 +0100",
			policy: Policy{Vault: VaultPolicy{Daily: 5}},
			points: []pt{
				{"cet", "2026-10-25 02:30 +0100", Vault, 0},
				{"cest", "2026-10-25 02:30 +0200", Vault, 0},
				{"before", "2026-10-24 23:30 +0200", Vault, 0},
			},
			want: map[string]Action{"cet": KeepInVault, "cest": Expire, "before": KeepInVault},
		},
		{
			// Mar 8 2026, New York springs forward; 23:30 EST on Mar 7 is
			// Mar 8 in UTC, 00:30 EDT on Mar 9 is still Mar 9 04:30 UTC.
			name:   "new york spring forward",
			loc:    "America/New_York",
			now:    "2026-03-10 12:00 -0400",
			policy: Policy{Vault: VaultPolicy{Daily: 2}},
			points: []pt{
				{"a", "2026-03-07 23:30 -0500", Vault, 0},
				{"b", "2026-03-08 00:30 -0500", Vault, 0},
				{"c", "2026-03-08 03:30 -0400", Vault, 0},
				{"d", "2026-03-08 23:30 -0400", Vault, 0},
				{"e", "2026-03-09 00:30 -0400", Vault, 0},
			},
			want: map[string]Action{"e": KeepInVault, "d": KeepInVault, "a": Expire, "b": Expire, "c": Expire},
		},
		{
			// Sunday Nov 1 2026 23:30 EST (the fall-back day) is Monday in
			// UTC; its ISO week is the local week 44.
			name:   "new york weeks across fall back",
			loc:    "America/New_York",
			now:    "2026-11-10 12:00 -0500",
			policy: Policy{Vault: VaultPolicy{Weekly: 3}},
			points: []pt{
				{"a", "2026-10-31 20:00 -0400", Vault, 0},
				{"b", "2026-11-01 23:30 -0500", Vault, 0},
				{"c", "2026-11-02 00:30 -0500", Vault, 0},
				{"d", "2026-11-08 22:00 -0500", Vault, 0},
				{"e", "2026-11-09 01:00 -0500", Vault, 0},
			},
			want: map[string]Action{"e": KeepInVault, "d": KeepInVault, "b": KeepInVault, "a": Expire, "c": Expire},
			reasons: map[string][]string{
				"e": {"weekly 2026-W46 (1 of 3)"},
				"d": {"weekly 2026-W45 (2 of 3)"},
				"b": {"weekly 2026-W44 (3 of 3)"},
			},
		},
		{
			// Buckets are calendar months, never "now minus a month", so
			// Mar 31 does not step over February.
			name:   "month ends",
			loc:    "Europe/Berlin",
			now:    "2026-04-15 12:00 +0200",
			policy: Policy{Vault: VaultPolicy{Monthly: 3}},
			points: []pt{
				{"jan31", "2026-01-31 23:00 +0100", Vault, 0},
				{"feb01", "2026-02-01 00:30 +0100", Vault, 0},
				{"feb28", "2026-02-28 22:00 +0100", Vault, 0},
				{"mar01", "2026-03-01 01:00 +0100", Vault, 0},
				{"mar31", "2026-03-31 23:59 +0200", Vault, 0},
				{"apr01", "2026-04-01 00:00 +0200", Vault, 0},
			},
			want: map[string]Action{"apr01": KeepInVault, "mar31": KeepInVault, "feb28": KeepInVault,
				"mar01": Expire, "feb01": Expire, "jan31": Expire},
			reasons: map[string][]string{
				"apr01": {"monthly 2026-04 (1 of 3)"},
				"mar31": {"monthly 2026-03 (2 of 3)"},
				"feb28": {"monthly 2026-02 (3 of 3)"},
			},
		},
		{
			name:   "leap year",
			loc:    "UTC",
			now:    "2028-03-02 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Daily: 3, Monthly: 2, Yearly: 2}},
			points: []pt{
				{"2027-02-28", "2027-02-28 12:00 +0000", Vault, 0},
				{"2027-12-31", "2027-12-31 12:00 +0000", Vault, 0},
				{"2028-02-28", "2028-02-28 12:00 +0000", Vault, 0},
				{"2028-02-29", "2028-02-29 12:00 +0000", Vault, 0},
				{"2028-03-01", "2028-03-01 12:00 +0000", Vault, 0},
			},
			want: map[string]Action{"2028-03-01": KeepInVault, "2028-02-29": KeepInVault, "2028-02-28": KeepInVault,
				"2027-12-31": KeepInVault, "2027-02-28": Expire},
			reasons: map[string][]string{
				"2028-03-01": {"daily 2028-03-01 (1 of 3)", "monthly 2028-03 (1 of 2)", "yearly 2028 (1 of 2)"},
				"2028-02-29": {"daily 2028-02-29 (2 of 3)", "monthly 2028-02 (2 of 2)"},
				"2028-02-28": {"daily 2028-02-28 (3 of 3)"},
				"2027-12-31": {"yearly 2027 (2 of 2)"},
			},
		},
		{
			// Jan 1-3 2027 belong to ISO week 2026-W53.
			name:   "iso week 53 across new year",
			loc:    "UTC",
			now:    "2027-01-10 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Weekly: 3}},
			points: []pt{
				{"dec27", "2026-12-27 12:00 +0000", Vault, 0},
				{"dec31", "2026-12-31 12:00 +0000", Vault, 0},
				{"jan01", "2027-01-01 12:00 +0000", Vault, 0},
				{"jan03", "2027-01-03 12:00 +0000", Vault, 0},
				{"jan04", "2027-01-04 12:00 +0000", Vault, 0},
			},
			want: map[string]Action{"jan04": KeepInVault, "jan03": KeepInVault, "dec27": KeepInVault,
				"jan01": Expire, "dec31": Expire},
			reasons: map[string][]string{
				"jan04": {"weekly 2027-W01 (1 of 3)"},
				"jan03": {"weekly 2026-W53 (2 of 3)"},
				"dec27": {"weekly 2026-W52 (3 of 3)"},
			},
		},
		{
			// A count means buckets that hold points: after
			// a 17-day gap the three newest days with points are kept,
			// not the three calendar days before now, which are empty.
			name:   "gaps of missing days",
			loc:    "UTC",
			now:    "2026-11-25 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Daily: 3}},
			points: []pt{
				{"nov01", "2026-11-01 01:00 +0000", Vault, 0},
				{"nov02", "2026-11-02 01:00 +0000", Vault, 0},
				{"nov03", "2026-11-03 01:00 +0000", Vault, 0},
				{"nov20", "2026-11-20 01:00 +0000", Vault, 0},
				{"nov21", "2026-11-21 01:00 +0000", Vault, 0},
			},
			want: map[string]Action{"nov21": KeepInVault, "nov20": KeepInVault, "nov03": KeepInVault,
				"nov02": Expire, "nov01": Expire},
		},
		{
			// Future points stay where they are and take neither the
			// keep-last slot nor a daily bucket.
			name: "points stamped in the future",
			loc:  "UTC",
			now:  "2026-11-26 06:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepWithin: day, KeepLast: 1},
				Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"future-local", "2026-11-27 00:00 +0000", Local, 0},
				{"future-vault", "2026-12-01 00:00 +0000", Vault, 0},
				{"future-both", "2026-11-26 07:00 +0000", Both, ReplicationPending},
				{"l1", "2026-11-20 00:00 +0000", Local, 0},
				{"l2", "2026-11-19 00:00 +0000", Local, 0},
				{"v1", "2026-11-18 00:00 +0000", Vault, 0},
			},
			want: map[string]Action{"future-local": KeepLocal, "future-vault": KeepInVault, "future-both": KeepLocal,
				"l1": KeepLocal, "l2": Offload, "v1": Expire},
			reasons: map[string][]string{
				"future-local": {ReasonFuture},
				"future-vault": {ReasonFuture},
				"future-both":  {ReasonFuture},
				"l1":           {"keep-last 1"},
				"l2":           {"older than 1d", "not among the 1 newest on disk", "daily 2026-11-19 (1 of 1)"},
			},
		},
		{
			name: "multiple sources are independent",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepLast: 1},
				Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"db/d0", "2026-11-22 06:00 +0000", Vault, 0},
				{"home/h3", "2026-11-25 01:00 +0000", Local, 0},
				{"db/d1", "2026-11-22 12:00 +0000", Vault, 0},
				{"home/h1", "2026-11-20 01:00 +0000", Vault, 0},
				{"db/d2", "2026-11-23 01:00 +0000", Local, 0},
				{"home/h2", "2026-11-24 01:00 +0000", Local, 0},
			},
			want: map[string]Action{"home/h3": KeepLocal, "home/h2": Offload, "home/h1": Expire,
				"db/d2": KeepLocal, "db/d1": KeepInVault, "db/d0": Expire},
			reasons: map[string][]string{
				"home/h2": {"not among the 1 newest on disk", "daily 2026-11-24 (1 of 1)"},
				"db/d1":   {"daily 2026-11-22 (1 of 1)"},
			},
		},
		{
			// Backups stopped a month ago: keep-within keeps nothing, so
			// keep-last holds the two newest on disk.
			name: "keep-last overrides keep-within",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepWithin: 14 * day, KeepLast: 2},
				Vault: VaultPolicy{Daily: 30}},
			points: []pt{
				{"oct20", "2026-10-20 01:00 +0000", Local, 0},
				{"oct21", "2026-10-21 01:00 +0000", Local, 0},
				{"oct22", "2026-10-22 01:00 +0000", Local, 0},
				{"oct23", "2026-10-23 01:00 +0000", Local, 0},
			},
			want: map[string]Action{"oct23": KeepLocal, "oct22": KeepLocal, "oct21": Offload, "oct20": Offload},
			reasons: map[string][]string{
				"oct23": {"keep-last 2"},
				"oct21": {"older than 14d", "not among the 2 newest on disk", "daily 2026-10-21 (1 of 30)"},
			},
		},
		{
			// Younger than KeepWithin stays; exactly KeepWithin old goes.
			name: "keep-within boundary and keep-last together",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepWithin: 36 * time.Hour, KeepLast: 1},
				Vault: VaultPolicy{Daily: 7}},
			points: []pt{
				{"newest", "2026-11-26 11:00 +0000", Local, 0},
				{"just-within", "2026-11-25 00:01 +0000", Local, 0},
				{"exactly", "2026-11-25 00:00 +0000", Local, 0},
			},
			want: map[string]Action{"newest": KeepLocal, "just-within": KeepLocal, "exactly": Offload},
			reasons: map[string][]string{
				"newest":      {"keep-within 36h0m0s", "keep-last 1"},
				"just-within": {"keep-within 36h0m0s"},
				"exactly":     {"older than 36h0m0s", "not among the 1 newest on disk", "daily 2026-11-25 (1 of 7)"},
			},
		},
		{
			// The offloaded point is about to be in the vault: it takes
			// the Nov 10 bucket from the older vault point. The local
			// point that stays does not take a bucket.
			name: "offloads count for vault buckets",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepWithin: 3 * day},
				Vault: VaultPolicy{Daily: 2}},
			points: []pt{
				{"local-nov25", "2026-11-25 01:00 +0000", Local, 0},
				{"local-nov10", "2026-11-10 18:00 +0000", Local, 0},
				{"vault-nov10", "2026-11-10 06:00 +0000", Vault, 0},
				{"vault-nov09", "2026-11-09 06:00 +0000", Vault, 0},
				{"vault-nov08", "2026-11-08 06:00 +0000", Vault, 0},
			},
			want: map[string]Action{"local-nov25": KeepLocal, "local-nov10": Offload, "vault-nov10": Expire,
				"vault-nov09": KeepInVault, "vault-nov08": Expire},
		},
		{
			// A local point leaves disk only through the vault, even one
			// the vault policy does not want; prune expires it later.
			name:   "offloaded points the vault does not keep",
			loc:    "UTC",
			now:    "2026-11-26 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"nov10-18", "2026-11-10 18:00 +0000", Local, 0},
				{"nov10-06", "2026-11-10 06:00 +0000", Local, 0},
			},
			want: map[string]Action{"nov10-18": Offload, "nov10-06": Offload},
			reasons: map[string][]string{
				"nov10-18": {ReasonNoShortTerm, "daily 2026-11-10 (1 of 1)"},
				"nov10-06": {ReasonNoShortTerm, ReasonExpiresLater},
			},
		},
		{
			name:   "replication pending is never expired",
			loc:    "UTC",
			now:    "2026-11-26 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"kept", "2026-11-20 01:00 +0000", Vault, 0},
				{"pending", "2026-11-19 01:00 +0000", Vault, ReplicationPending},
				{"old", "2026-11-18 01:00 +0000", Vault, 0},
			},
			want: map[string]Action{"kept": KeepInVault, "pending": KeepInVault, "old": Expire},
			reasons: map[string][]string{
				"pending": {ReasonNotKept, ReasonPending},
			},
		},
		{
			name:   "empty vault policy expires nothing",
			loc:    "UTC",
			now:    "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepLast: 1}},
			points: []pt{
				{"newest", "2026-11-25 01:00 +0000", Local, 0},
				{"older", "2026-11-01 01:00 +0000", Local, 0},
				{"ancient", "2020-01-01 01:00 +0000", Vault, 0},
				{"ancient-too", "2020-01-01 00:00 +0000", Vault, 0},
			},
			want: map[string]Action{"newest": KeepLocal, "older": Offload, "ancient": KeepInVault, "ancient-too": KeepInVault},
			reasons: map[string][]string{
				"older":   {"not among the 1 newest on disk", ReasonEmptyVault},
				"ancient": {ReasonEmptyVault},
			},
		},
		{
			// A point in both tiers is on disk: it takes a keep-last slot,
			// stays while short-term keeps it and is otherwise offloaded
			// (the move is finished) and bucketed.
			name: "points in both tiers",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepWithin: 7 * day, KeepLast: 1},
				Vault: VaultPolicy{Daily: 2}},
			points: []pt{
				{"both-young", "2026-11-25 01:00 +0000", Both, 0},
				{"local-old", "2026-11-12 01:00 +0000", Local, 0},
				{"both-old", "2026-11-10 01:00 +0000", Both, ReplicationPending},
				{"vault", "2026-11-09 01:00 +0000", Vault, 0},
			},
			want: map[string]Action{"both-young": KeepLocal, "local-old": Offload, "both-old": Offload, "vault": Expire},
			reasons: map[string][]string{
				"both-young": {"keep-within 7d", "keep-last 1"},
				"both-old":   {"older than 7d", "not among the 1 newest on disk", "daily 2026-11-10 (2 of 2)"},
			},
		},
		{
			// Keep-last counts points on disk: a newer point that is only
			// in the vault cannot be restored fast, so it takes no slot.
			name: "vault points do not use keep-last",
			loc:  "UTC",
			now:  "2026-11-26 12:00 +0000",
			policy: Policy{Local: LocalPolicy{KeepLast: 1},
				Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"vault-new", "2026-11-20 01:00 +0000", Vault, 0},
				{"local", "2026-11-15 01:00 +0000", Local, 0},
			},
			want: map[string]Action{"vault-new": KeepInVault, "local": KeepLocal},
			reasons: map[string][]string{
				"local": {"keep-last 1"},
			},
		},
		{
			// Equal times sort by ID, so the plan is the same whatever
			// order the points come in.
			name:   "equal times are ordered by id",
			loc:    "UTC",
			now:    "2026-11-26 12:00 +0000",
			policy: Policy{Vault: VaultPolicy{Daily: 1}},
			points: []pt{
				{"b", "2026-11-20 01:00 +0000", Vault, 0},
				{"a", "2026-11-20 01:00 +0000", Vault, 0},
			},
			want: map[string]Action{"a": KeepInVault, "b": Expire},
		},
		yearly99(),
	}
}

// yearly99 has one vault point per year 1920-2026 plus a second, older
// one in 2026: yearly 99 keeps 1928-2026 and expires 1920-1927.
func yearly99() applyCase {
	c := applyCase{
		name:   "yearly 99",
		loc:    "UTC",
		now:    "2026-11-26 12:00 +0000",
		policy: Policy{Vault: VaultPolicy{Yearly: 99}},
		points: []pt{{"2026-jan", "2026-01-15 12:00 +0000", Vault, 0}},
		want:   map[string]Action{"2026-jan": Expire},
		reasons: map[string][]string{
			"2026": {"yearly 2026 (1 of 99)"},
			"1928": {"yearly 1928 (99 of 99)"},
			"1927": {ReasonNotKept},
		},
	}
	for y := 1920; y <= 2026; y++ {
		id := fmt.Sprint(y)
		c.points = append(c.points, pt{id, id + "-07-01 12:00 +0000", Vault, 0})
		c.want[id] = KeepInVault
		if y < 1928 {
			c.want[id] = Expire
		}
	}
	return c
}

func (c applyCase) build(t *testing.T) ([]Point, time.Time, *time.Location) {
	t.Helper()
	var points []Point
	for _, p := range c.points {
		src := "home"
		if s, _, ok := strings.Cut(p.id, "/"); ok {
			src = s
		}
		points = append(points, Point{ID: p.id, Source: src, Time: ts(t, p.time), Tier: p.tier, State: p.state})
	}
	return points, ts(t, c.now), mustLoad(t, c.loc)
}

func TestApply(t *testing.T) {
	for _, c := range applyCases() {
		t.Run(c.name, func(t *testing.T) {
			points, now, loc := c.build(t)
			plan, err := Apply(points, c.policy, now, loc)
			if err != nil {
				t.Fatalf("Apply() error %v", err)
			}
			if got, want := len(plan.Decisions), len(points); got != want {
				t.Fatalf("Apply() made %d decisions, want %d", got, want)
			}
			for _, d := range plan.Decisions {
				if want, ok := c.want[d.Point.ID]; !ok || d.Action != want {
					t.Errorf("Apply() %s: %s %q, want %s", d.Point.ID, d.Action, d.Reasons, want)
				}
				if want, ok := c.reasons[d.Point.ID]; ok && !slices.Equal(d.Reasons, want) {
					t.Errorf("Apply() %s reasons %q, want %q", d.Point.ID, d.Reasons, want)
				}
				if len(d.Reasons) == 0 {
					t.Errorf("Apply() %s: %s without a reason", d.Point.ID, d.Action)
				}
			}
			// Input order must not matter.
			slices.Reverse(points)
			again, err := Apply(points, c.policy, now, loc)
			if err != nil {
				t.Fatalf("Apply() reversed error %v", err)
			}
			if !jsonEqual(t, again, plan) {
				t.Errorf("Apply() on reversed input made a different plan")
			}
			golden(t, strings.ReplaceAll(c.name, " ", "-")+".json", goldenPlan(t, c, plan))
		})
	}
}

// TestApplyDoesNotModifyInput proves Apply sorts a copy.
func TestApplyDoesNotModifyInput(t *testing.T) {
	c := applyCases()[0]
	points, now, loc := c.build(t)
	before := slices.Clone(points)
	if _, err := Apply(points, c.policy, now, loc); err != nil {
		t.Fatalf("Apply() error %v", err)
	}
	if !slices.Equal(points, before) {
		t.Errorf("Apply() reordered its input")
	}
}

func TestApplyRefuses(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ok := Point{ID: "a", Source: "home", Time: now.Add(-day), Tier: Local}
	with := func(f func(*Point)) []Point {
		p := ok
		f(&p)
		return []Point{p}
	}
	cases := []struct {
		name   string
		points []Point
		policy Policy
		want   string
	}{
		{"invalid policy", []Point{ok}, Policy{Vault: VaultPolicy{Yearly: 100}}, "vault yearly count 100 exceeds the maximum of 99 years"},
		{"empty id", with(func(p *Point) { p.ID = "" }), Policy{}, `point of source "home" at 2026-11-25 12:00:00 +0000 UTC has no ID`},
		{"listed twice", []Point{ok, ok}, Policy{}, "point a listed twice"},
		{"zero tier", with(func(p *Point) { p.Tier = 0 }), Policy{}, "point a: unknown tier 0"},
		{"unknown state", with(func(p *Point) { p.State = 7 }), Policy{}, "point a: unknown state 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := Apply(c.points, c.policy, now, time.UTC)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply() error %v, want one containing %q", err, c.want)
			}
			if len(plan.Decisions) != 0 {
				t.Errorf("Apply() returned %d decisions with an error", len(plan.Decisions))
			}
		})
	}
}

func TestApplyEmpty(t *testing.T) {
	plan, err := Apply(nil, Policy{}, time.Now(), nil)
	if err != nil || len(plan.Decisions) != 0 {
		t.Errorf("Apply(nil) = %d decisions, %v; want none, nil", len(plan.Decisions), err)
	}
}

// goldenPlan is the golden file's content: the inputs that matter for
// reading it, then the plan.
func goldenPlan(t *testing.T, c applyCase, plan Plan) []byte {
	t.Helper()
	v := struct {
		Location  string      `json:"location"`
		Now       time.Time   `json:"now"`
		KeepWith  string      `json:"keep_within"`
		KeepLast  int         `json:"keep_last"`
		Vault     VaultPolicy `json:"vault"`
		Decisions []Decision  `json:"decisions"`
	}{c.loc, ts(t, c.now), days(c.policy.Local.KeepWithin), c.policy.Local.KeepLast, c.policy.Vault, plan.Decisions}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal plan: %v", err)
	}
	return append(b, '\n')
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return bytes.Equal(ja, jb)
}

// golden compares got with testdata/retention/name, or rewrites the file
// when the test runs with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "retention", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test ./retention -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./retention -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
