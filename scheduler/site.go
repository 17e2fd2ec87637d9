package scheduler

import (
	"errors"
	"time"

	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// ErrNotRegistered means a job needs the vault and the server is not
// registered to one.
var ErrNotRegistered = errors.New("this server is not registered to a vault: run 'tapeless register --credentials FILE' first")

// Site is what the jobs know about this server: where its store and
// staging folder are, how to reach its vault, its retention policy and
// its clock. The CLI builds it from the configuration file, and so will
// the daemon; the jobs never read that file themselves.
type Site struct {
	Store   string // the store folder
	Staging string // where vault downloads are staged ("" = next to the store)
	// Throttle is the vault bandwidth schedule ("" = unlimited), in
	// storage.ParseThrottle's syntax.
	Throttle string
	Vault    *VaultSpec // nil: not registered
	Policy   retention.Policy

	// Now is the clock (time.Now when nil), Loc the zone of retention's
	// calendar buckets (time.Local when nil).
	Now func() time.Time
	Loc *time.Location

	// Note receives one-line notes a user should see (a read that fell
	// back to the secondary copy, a listing that came back short); nil
	// drops them.
	Note func(msg string)
	// VaultOpened is called with the vault's own settings each time a job
	// opens it, so the caller can bring a cached copy up to date.
	VaultOpened func(vault.VaultConfig)
}

// VaultSpec is how to reach the vault this server is registered to.
type VaultSpec struct {
	Name    string
	Primary vault.Account
	// Secondary holds the keys of the secondary endpoint when they differ
	// from the primary's (nil: the same keys).
	Secondary *storage.Options
	// SecondaryURL is the locally cached location of the GRS second copy
	// ("" for LRS): restore reads from it when the primary cannot even be
	// opened.
	SecondaryURL   string
	ImmutableDays  int
	KeyFingerprint string // this server's key as registered
}

func (s *Site) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Site) clock() func() time.Time {
	if s.Now == nil {
		return time.Now
	}
	return s.Now
}

func (s *Site) loc() *time.Location {
	if s.Loc == nil {
		return time.Local
	}
	return s.Loc
}

func (s *Site) note(msg string) {
	if s.Note != nil {
		s.Note(msg)
	}
}

// registered reports whether the site has a vault.
func (s *Site) registered() bool { return s.Vault != nil && s.Vault.Name != "" }
