package scheduler

import (
	"fmt"
	"testing"
	"time"
)

func TestHistoryKeepsTheLastRunsOfEachJob(t *testing.T) {
	dir := t.TempDir()
	h, err := OpenHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range historyKeep + 10 {
		res := "ok"
		if i%7 == 0 {
			res = "failed"
		}
		if err := h.Add(RunRecord{Job: "offload", Start: t0.Add(time.Duration(i) * time.Hour), Result: res, Error: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Add(RunRecord{Job: "prune", Start: t0, Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	again, err := OpenHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.Runs("offload")); n != historyKeep {
		t.Errorf("the history keeps %d offload runs, want %d", n, historyKeep)
	}
	if n := len(again.Runs("prune")); n != 1 {
		t.Errorf("the history keeps %d prune runs, want 1: one job's runs must not push out another's", n)
	}
	last, lastOK, ok := again.Last("offload")
	if !ok || last.Error != fmt.Sprint(historyKeep+9) || lastOK.Error != fmt.Sprint(historyKeep+9) {
		t.Errorf("last offload %+v, last good %+v", last, lastOK)
	}
	runs := again.Runs("")
	for i := 1; i < len(runs); i++ {
		if runs[i].Start.Before(runs[i-1].Start) {
			t.Fatal("the history is not oldest first")
		}
	}
}
