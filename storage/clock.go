package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapeless/tapeless/storage/humanize"
)

// MaxClockSkew is how far the local clock may be from the vault's before
// age-based actions (offload, local delete, prune) refuse to run: their
// decisions compare this machine's times with the server's (object times,
// lock ages, retention dates).
const MaxClockSkew = 5 * time.Minute

// ErrClockSkew means the local clock and a backend server's clock differ by
// more than allowed. Errors wrapping it are *ClockSkewError.
var ErrClockSkew = errors.New("storage: clock skew")

// ServerTimer is implemented by backends that can read their server's
// clock: *S3 (from the Date header). Backends on local disk share this
// machine's clock and do not implement it.
type ServerTimer interface {
	ServerTime(ctx context.Context) (time.Time, error)
}

// Multi is implemented by backends made of several others, such as the
// replicated backend; helpers that must reach every server use it.
type Multi interface {
	Copies() []Backend
}

// ClockSkewError reports a clock too far from a server's.
type ClockSkewError struct {
	Location string        // the backend whose server disagrees
	Skew     time.Duration // server time minus local time
	Max      time.Duration
}

func (e *ClockSkewError) Error() string {
	skew, side := e.Skew, "behind"
	if skew < 0 {
		skew, side = -skew, "ahead of"
	}
	return fmt.Sprintf("clock skew of %s between this machine and %s exceeds %s (this machine's clock is %s the server's): fix the clock (NTP) before offload, local delete or prune",
		humanize.Duration(skew), e.Location, humanize.Duration(e.Max), side)
}

// Unwrap returns ErrClockSkew.
func (e *ClockSkewError) Unwrap() error { return ErrClockSkew }

// CheckClockSkew compares now (the local clock; pass time.Now()) with the
// clock of every server behind b — both copies of a replicated backend,
// through wrappers that implement Unwrapper — and returns a
// *ClockSkewError for the first that differs by more than max. Backends
// without a server clock (file) are skipped. An error reading a server's
// clock is returned as it is: the check did not pass.
func CheckClockSkew(ctx context.Context, b Backend, now time.Time, max time.Duration) error {
	var err error
	visitServers(b, func(b Backend) bool {
		st, ok := b.(ServerTimer)
		if !ok {
			return true
		}
		var t time.Time
		t, err = st.ServerTime(ctx)
		if err != nil {
			err = fmt.Errorf("check the clock against %s: %w", b.Location(), err)
			return false
		}
		if skew := t.Sub(now).Round(time.Second); skew > max || -skew > max {
			err = &ClockSkewError{Location: b.Location(), Skew: skew, Max: max}
			return false
		}
		return true
	})
	return err
}

// visitServers calls fn for b and everything it is made of: the copies of
// a Multi and what wrappers unwrap to, depth first, until fn returns false.
func visitServers(b Backend, fn func(Backend) bool) bool {
	if !fn(b) {
		return false
	}
	if m, ok := b.(Multi); ok {
		for _, c := range m.Copies() {
			if !visitServers(c, fn) {
				return false
			}
		}
		return true
	}
	if u, ok := b.(Unwrapper); ok {
		return visitServers(u.Unwrap(), fn)
	}
	return true
}

// Unwrap returns the backend being throttled, so helpers such as
// CheckClockSkew reach the server behind it.
func (t *throttled) Unwrap() Backend { return t.Backend }
