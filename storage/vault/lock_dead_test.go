package vault

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
)

func TestReleaseDeadLock(t *testing.T) {
	ctx := context.Background()
	b, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	// A PID that surely is gone: a child that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead := cmd.Process.Pid
	now := time.Now()
	for i, tc := range []struct {
		name     string
		rec      LockRecord
		released bool
	}{
		{"live holder on this host", LockRecord{State: lockHeld, Holder: "prune", Host: host, PID: os.Getpid(), Time: now, TTL: time.Hour}, false},
		{"holder on another host", LockRecord{State: lockHeld, Holder: "prune", Host: host + "-other", PID: dead, Time: now, TTL: time.Hour}, false},
		{"dead holder on this host", LockRecord{State: lockHeld, Holder: "prune", Host: host, PID: dead, Time: now, TTL: time.Hour}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "lock" + string(rune('a'+i))
			if err := writeRecord(ctx, b, name, 1, tc.rec); err != nil {
				t.Fatal(err)
			}
			got, err := ReleaseDeadLock(ctx, b, name)
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.released {
				t.Fatalf("ReleaseDeadLock released %v, want %v", got != nil, tc.released)
			}
			_, err = AcquireLock(ctx, b, name, "prune", time.Hour, now)
			if tc.released && err != nil {
				t.Errorf("AcquireLock after releasing a dead holder: %v", err)
			}
			if !tc.released && !errors.Is(err, ErrLockHeld) {
				t.Errorf("AcquireLock with the holder kept: %v, want ErrLockHeld", err)
			}
		})
	}
}
