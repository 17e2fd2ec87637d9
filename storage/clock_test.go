package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// serverClock is a real file backend whose "server" reads a clock set by
// the test, standing in for an S3 endpoint whose clock is off.
type serverClock struct {
	storage.Backend
	at  time.Time
	err error
}

func (s *serverClock) ServerTime(context.Context) (time.Time, error) { return s.at, s.err }

func TestCheckClockSkew(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		offset time.Duration
		want   string // "" = no error
	}{
		{"in step", 0, ""},
		{"ahead within limit", 4*time.Minute + 59*time.Second, ""},
		{"exactly the limit", 5 * time.Minute, ""},
		{"behind within limit", -5 * time.Minute, ""},
		{"server ahead", 7*time.Minute + 12*time.Second,
			"clock skew of 7m12s between this machine and SERVER exceeds 5m (this machine's clock is behind the server's): fix the clock (NTP) before offload, local delete or prune"},
		{"server behind", -(2*time.Hour + 30*time.Minute),
			"clock skew of 2h30m between this machine and SERVER exceeds 5m (this machine's clock is ahead of the server's): fix the clock (NTP) before offload, local delete or prune"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := &serverClock{Backend: newFile(t), at: now.Add(c.offset)}
			err := storage.CheckClockSkew(ctx, srv, now, storage.MaxClockSkew)
			if c.want == "" {
				if err != nil {
					t.Fatalf("CheckClockSkew = %v, want nil", err)
				}
				return
			}
			var ce *storage.ClockSkewError
			if !errors.As(err, &ce) || !errors.Is(err, storage.ErrClockSkew) {
				t.Fatalf("CheckClockSkew = %v, want a *ClockSkewError", err)
			}
			if ce.Skew != c.offset || ce.Location != srv.Location() {
				t.Errorf("skew = %v at %s, want %v at %s", ce.Skew, ce.Location, c.offset, srv.Location())
			}
			want := strings.ReplaceAll(c.want, "SERVER", srv.Location())
			if got := err.Error(); got != want {
				t.Errorf("error =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestCheckClockSkewReachesEveryServer: a skewed secondary behind
// wrappers is found; file backends are skipped; a clock that cannot be read
// fails the check without claiming a skew.
func TestCheckClockSkewReachesEveryServer(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	good := &serverClock{Backend: newFile(t), at: now}
	bad := &serverClock{Backend: newFile(t), at: now.Add(-10 * time.Minute)}
	sched, err := storage.ParseThrottle("work=Mon-Sun 00:00-23:59 1MiB/s; off=unlimited")
	if err != nil {
		t.Fatal(err)
	}
	vault := storage.Prefixed(storage.Replicated(
		storage.Throttled(good, sched, nil),
		storage.Throttled(storagetest.NewFault(bad), sched, nil),
	), "vaults/v1")
	err = storage.CheckClockSkew(ctx, vault, now, storage.MaxClockSkew)
	var ce *storage.ClockSkewError
	if !errors.As(err, &ce) || ce.Location != bad.Location() || ce.Skew != -10*time.Minute {
		t.Fatalf("CheckClockSkew through wrappers = %v, want the secondary's 10m skew", err)
	}

	if err := storage.CheckClockSkew(ctx, storage.Replicated(newFile(t), newFile(t)), now, time.Second); err != nil {
		t.Errorf("CheckClockSkew on file backends = %v, want nil (they share this clock)", err)
	}

	broken := &serverClock{Backend: newFile(t), err: storage.ErrUnavailable}
	err = storage.CheckClockSkew(ctx, broken, now, storage.MaxClockSkew)
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrClockSkew) {
		t.Errorf("CheckClockSkew with an unreadable clock = %v, want the read error", err)
	}
}

// TestCheckClockSkewMinIO reads the real server's clock: this machine runs
// it, so it agrees; a local clock 10 minutes slow is caught.
func TestCheckClockSkewMinIO(t *testing.T) {
	ctx := context.Background()
	g := newMinIOGRS(t)
	if err := storage.CheckClockSkew(ctx, g.grs, time.Now(), storage.MaxClockSkew); err != nil {
		t.Fatalf("CheckClockSkew against MinIO = %v", err)
	}
	err := storage.CheckClockSkew(ctx, g.grs, time.Now().Add(-10*time.Minute), storage.MaxClockSkew)
	var ce *storage.ClockSkewError
	if !errors.As(err, &ce) || ce.Skew < 9*time.Minute || ce.Skew > 11*time.Minute || ce.Location != g.primary.Location() {
		t.Errorf("CheckClockSkew with a slow local clock = %v, want about 10m at the primary", err)
	}
}
