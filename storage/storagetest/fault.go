package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// ErrInjected is the error Fault injects unless told otherwise.
var ErrInjected = errors.New("storage: injected fault")

// Fault wraps a real storage.Backend and injects failures, for tests of
// "the S3 call fails at the worst moment" and "the secondary region is
// down". All settings may change while calls run. Calls are counted and
// failed by the storage.Op of their method (storage.OpSave, ...).
//
// Injections: fail the Nth call of a method (FailNth), make every Save's
// reader fail after N bytes so the wrapped backend sees a source error
// midway (FailSaveAfter), delay every call (SetDelay), flip a byte of what
// Load returns (CorruptLoads), and take the whole backend down so every
// call fails like a refused connection (SetDown).
type Fault struct {
	b storage.Backend

	mu        sync.Mutex
	calls     map[storage.Op]int
	failAt    map[storage.Op]map[int]error
	saveAfter int64 // < 0: off
	delay     time.Duration
	corruptAt int64 // < 0: off
	down      bool
}

var _ storage.Backend = (*Fault)(nil)

// NewFault wraps b with no faults switched on.
func NewFault(b storage.Backend) *Fault {
	return &Fault{b: b, calls: map[storage.Op]int{}, failAt: map[storage.Op]map[int]error{}, saveAfter: -1, corruptAt: -1}
}

// Unwrap returns the wrapped backend.
func (f *Fault) Unwrap() storage.Backend { return f.b }

// FailNth makes the nth call (1-based, counting every call since NewFault
// or Reset) of op fail with err (ErrInjected when err is nil) without
// reaching the wrapped backend.
func (f *Fault) FailNth(op storage.Op, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAt[op] == nil {
		f.failAt[op] = map[int]error{}
	}
	f.failAt[op][n] = err
}

// FailSaveAfter makes the reader handed to the wrapped Save fail with
// ErrInjected after n bytes, for every later Save; n < 0 switches it off.
func (f *Fault) FailSaveAfter(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saveAfter = n
}

// SetDelay makes every call wait d (or until its context ends) first.
func (f *Fault) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// CorruptLoads flips every bit of the byte at offset at of each reader
// Load hands out (counted from the start of the requested range); at < 0
// switches it off.
func (f *Fault) CorruptLoads(at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corruptAt = at
}

// SetDown switches the whole backend off (every call fails with an error
// wrapping storage.ErrUnavailable, like a refused connection) or back on.
func (f *Fault) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Calls returns how many calls of op were made.
func (f *Fault) Calls(op storage.Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Reset switches every fault off and zeroes the call counts.
func (f *Fault) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[storage.Op]int{}
	f.failAt = map[storage.Op]map[int]error{}
	f.saveAfter, f.corruptAt, f.delay, f.down = -1, -1, 0, false
}

// enter counts the call, waits the delay and returns the injected error.
func (f *Fault) enter(ctx context.Context, op storage.Op) error {
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	err := f.failAt[op][n]
	delay, down := f.delay, f.down
	f.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if down {
		oe := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		return &downError{
			msg:  fmt.Sprintf("cannot reach %s: %v (injected: backend down)", f.b.Location(), oe),
			errs: []error{storage.ErrUnavailable, oe},
		}
	}
	if err != nil {
		return fmt.Errorf("%s (call %d) at %s: %w", op, n, f.b.Location(), err)
	}
	return nil
}

// Location returns the wrapped backend's location.
func (f *Fault) Location() string { return f.b.Location() }

// Save passes through, possibly failing or cutting the reader short.
func (f *Fault) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := f.enter(ctx, storage.OpSave); err != nil {
		return err
	}
	f.mu.Lock()
	after := f.saveAfter
	f.mu.Unlock()
	if after >= 0 {
		r = &failAfterReader{r: r, left: after}
	}
	return f.b.Save(ctx, name, r, size)
}

// Load passes through, possibly failing or corrupting the data.
func (f *Fault) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := f.enter(ctx, storage.OpLoad); err != nil {
		return err
	}
	f.mu.Lock()
	at := f.corruptAt
	f.mu.Unlock()
	if at < 0 {
		return f.b.Load(ctx, name, offset, length, fn)
	}
	return f.b.Load(ctx, name, offset, length, func(r io.Reader) error {
		return fn(&corruptReader{r: r, at: at})
	})
}

// Stat passes through unless a fault applies.
func (f *Fault) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := f.enter(ctx, storage.OpStat); err != nil {
		return storage.Info{}, err
	}
	return f.b.Stat(ctx, name)
}

// List passes through unless a fault applies.
func (f *Fault) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := f.enter(ctx, storage.OpList); err != nil {
		return err
	}
	return f.b.List(ctx, prefix, fn)
}

// Remove passes through unless a fault applies.
func (f *Fault) Remove(ctx context.Context, name string) error {
	if err := f.enter(ctx, storage.OpRemove); err != nil {
		return err
	}
	return f.b.Remove(ctx, name)
}

// Close closes the wrapped backend.
func (f *Fault) Close() error { return f.b.Close() }

type failAfterReader struct {
	r    io.Reader
	left int64
}

func (r *failAfterReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, fmt.Errorf("read source: %w", ErrInjected)
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	return n, err
}

type corruptReader struct {
	r      io.Reader
	at, no int64
}

func (r *corruptReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if i := r.at - r.no; i >= 0 && i < int64(n) {
		p[i] ^= 0xff
	}
	r.no += int64(n)
	return n, err
}

// downError is what a down backend returns: storage.ErrUnavailable and the
// network error beneath it, under one message, as the S3 backend's errors.
type downError struct {
	msg  string
	errs []error
}

func (e *downError) Error() string   { return e.msg }
func (e *downError) Unwrap() []error { return e.errs }
