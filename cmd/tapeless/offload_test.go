package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/scheduler"
)

var updateOffloadGolden = flag.Bool("update-offload", false, "rewrite testdata/offload-dry-run.golden")

// TestOffloadDryRunGolden pins the text of `offload --dry-run`: the plan
// with each local point's stored size and what an offload would send.
func TestOffloadDryRunGolden(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, loc)
	id := func(c string) string { return strings.Repeat(c, 64) }
	pts := []retention.Point{
		{ID: id("a"), Source: "home", Time: now.Add(-1 * time.Hour), Tier: retention.Local},
		{ID: id("b"), Source: "home", Time: now.Add(-20 * 24 * time.Hour), Tier: retention.Local},
		{ID: id("c"), Source: "home", Time: now.Add(-21 * 24 * time.Hour), Tier: retention.Both, State: retention.ReplicationPending},
		{ID: id("d"), Source: "home", Time: now.Add(-60 * 24 * time.Hour), Tier: retention.Vault},
		{ID: id("e"), Source: "db", Time: now.Add(-30 * 24 * time.Hour), Tier: retention.Local},
		{ID: id("f"), Source: "db", Time: now.Add(-40 * 24 * time.Hour), Tier: retention.Vault},
	}
	policy := retention.Policy{
		Local: retention.LocalPolicy{KeepWithin: 14 * 24 * time.Hour, KeepLast: 1},
		Vault: retention.VaultPolicy{Daily: 2, Monthly: 1},
	}
	plan, err := retention.Apply(pts, policy, now, loc)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[archive.ID]int64{}
	for i, c := range []string{"a", "b", "c", "e"} {
		pid, _ := archive.ParseID(id(c))
		stored[pid] = int64(i+1) * 1536 << 10
	}
	op := &scheduler.OffloadPlan{Plan: plan, Stored: stored, Upload: 9 << 20, Objects: 7}
	var buf bytes.Buffer
	if err := formatOffloadPlan(&buf, op, loc); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "offload-dry-run.golden")
	if *updateOffloadGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestOffloadDryRunGolden -update-offload to create it)", err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("offload --dry-run output changed:\n--- got\n%s--- want\n%s", got, want)
	}
}
