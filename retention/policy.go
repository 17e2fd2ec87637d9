package retention

import (
	"errors"
	"fmt"
	"time"
)

// MaxYearly is the largest yearly count a policy may hold (99 years, the
// reference product's limit).
const MaxYearly = 99

// ErrInvalidPolicy is wrapped by every error Validate returns.
var ErrInvalidPolicy = errors.New("invalid retention policy")

// Policy is the retention policy of every data source.
type Policy struct {
	Local LocalPolicy `json:"local"`
	Vault VaultPolicy `json:"vault"`
}

// LocalPolicy is the short-term policy: which points stay on local disk.
// A zero LocalPolicy offloads every point that is not in the future.
type LocalPolicy struct {
	// KeepWithin keeps points younger than this, counted from now.
	KeepWithin time.Duration `json:"keep_within"`
	// KeepLast keeps at least this many newest points on local disk.
	KeepLast int `json:"keep_last"`
}

// VaultPolicy is the long-term policy: each count keeps the newest point
// of that many of the newest calendar buckets that hold a point.
// A zero VaultPolicy expires nothing.
type VaultPolicy struct {
	Daily   int `json:"daily"`
	Weekly  int `json:"weekly"`
	Monthly int `json:"monthly"`
	Yearly  int `json:"yearly"`
}

// IsEmpty reports whether every count is zero, in which case Apply
// expires nothing. A caller may want to say so when it prunes.
func (v VaultPolicy) IsEmpty() bool { return v == VaultPolicy{} }

// Validate reports every field that is out of range, joined, each wrapping
// ErrInvalidPolicy.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...))
	}
	if p.Local.KeepWithin < 0 {
		bad("local keep_within is negative (%s)", p.Local.KeepWithin)
	}
	if p.Local.KeepLast < 0 {
		bad("local keep_last is negative (%d)", p.Local.KeepLast)
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"daily", p.Vault.Daily}, {"weekly", p.Vault.Weekly}, {"monthly", p.Vault.Monthly}, {"yearly", p.Vault.Yearly}} {
		if c.n < 0 {
			bad("vault %s count is negative (%d)", c.name, c.n)
		}
	}
	if p.Vault.Yearly > MaxYearly {
		bad("vault yearly count %d exceeds the maximum of %d years", p.Vault.Yearly, MaxYearly)
	}
	return errors.Join(errs...)
}
