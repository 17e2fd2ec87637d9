package storage_test

import (
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// stepClock is a storage.Clock whose sleeps return at once and move time
// forward to the wake-up instant, so a throttled transfer of 100 MiB at a
// few MiB/s runs at MinIO's speed while the simulated elapsed time shows
// the pace the throttle imposed.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return nil
}

// heapPeak samples the live heap until stop is called and returns the
// highest value seen above the value at start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		if p := peak.Load(); p > base {
			return p - base
		}
		return 0
	}
}

// TestThrottledS3 runs the throttled wrapper over a real MinIO bucket with
// an injected clock: a 100 MiB save (multipart on S3) keeps the scheduled
// pace across a work-hours boundary, arrives intact, and never holds the
// whole object in memory although the wrapper hides io.Seeker and
// io.ReaderAt from the S3 backend (which reads parts into its own bounded
// buffers instead of letting minio-go buffer).
func TestThrottledS3(t *testing.T) {
	const (
		miB  = 1 << 20
		size = 100 * miB
	)
	ctx := context.Background()
	s3 := openMinIO(t, "primary")

	// Wednesday 17:59:50 in UTC: 10 s of work hours at 4 MiB/s (40 MiB,
	// less the first 100 ms burst), then off hours at 20 MiB/s for the
	// remaining ~60 MiB, about 3 s more.
	sched, err := storage.ParseThrottle("work=Mon-Fri 08:00-18:00 4MiB/s; off=20MiB/s")
	if err != nil {
		t.Fatal(err)
	}
	sched = sched.In(time.UTC)
	start := time.Date(2026, 11, 25, 17, 59, 50, 0, time.UTC)
	clock := &stepClock{now: start}
	tb := storage.Throttled(s3, sched, clock)

	stop := heapPeak()
	if err := tb.Save(ctx, "big", storagetest.Data(7, size), size); err != nil {
		stop()
		t.Fatalf("throttled Save of 100 MiB = %v", err)
	}
	peak := stop()

	// 40 MiB plus the 0.4 MiB first burst before the boundary, then
	// 59.6 MiB at 20 MiB/s; allow 100 ms either way for burst rounding at
	// the boundary.
	rest := float64(size - 40*miB - 4*miB/10)
	want := 10*time.Second + time.Duration(rest/(20*miB)*float64(time.Second))
	if got := clock.Now().Sub(start); got < want-100*time.Millisecond || got > want+100*time.Millisecond {
		t.Errorf("throttled Save took %v of simulated time, want about %v (4 MiB/s until 18:00, then 20 MiB/s)", got, want)
	}
	// The S3 backend holds at most (threads+1) parts of 16 MiB, 80 MiB;
	// buffering the whole object would need more than its 100 MiB.
	if peak >= size {
		t.Errorf("throttled Save of %d MiB raised the live heap by %d MiB: the object was buffered whole", size/miB, peak/miB)
	}
	t.Logf("live heap peak during the throttled 100 MiB save: +%d MiB", peak/miB)

	// Loading through the same wrapper is paced at the off-hours rate and
	// returns the saved bytes.
	from := clock.Now()
	want0 := sha256.New()
	io.Copy(want0, storagetest.Data(7, size))
	got := sha256.New()
	err = tb.Load(ctx, "big", 0, -1, func(r io.Reader) error {
		_, err := io.Copy(got, r)
		return err
	})
	if err != nil {
		t.Fatalf("throttled Load = %v", err)
	}
	if string(got.Sum(nil)) != string(want0.Sum(nil)) {
		t.Fatal("throttled Load returned other bytes than were saved")
	}
	wantLoad := 5 * time.Second // 100 MiB at 20 MiB/s, the bucket already full
	if d := clock.Now().Sub(from); d < wantLoad-200*time.Millisecond || d > wantLoad+100*time.Millisecond {
		t.Errorf("throttled Load took %v of simulated time, want about %v at 20 MiB/s", d, wantLoad)
	}

	// A range read through the wrapper.
	err = tb.Load(ctx, "big", 5*miB, 10, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		all := storagetest.Bytes(7, 5*miB+10)
		if string(b) != string(all[5*miB:]) {
			t.Errorf("range read through the throttle = %x, want %x", b, all[5*miB:])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("throttled range Load = %v", err)
	}
}
