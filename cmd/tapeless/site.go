package main

import (
	"fmt"
	"time"

	"github.com/tapeless/tapeless/retention"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/vault"
)

// now is the clock of every command and of the jobs they run (Site.Now);
// tests move it to check expiry.
var now = time.Now

// siteOf is the configuration as the jobs see it. Notes go to g's stderr
// unless --quiet; g may be nil (no notes). The vault's settings that a job
// reads are copied back into the configuration file (syncVaultCache).
func siteOf(g *globalOptions, c *config) *scheduler.Site {
	s := &scheduler.Site{
		Store:    c.Store,
		Staging:  c.Staging,
		Throttle: c.Throttle,
		Policy:   policyFromConfig(c),
		Now:      now,
		Loc:      time.Local,
		VaultOpened: func(vc vault.VaultConfig) {
			// Best effort: the vault object is authoritative and was just
			// read, so a config that cannot be rewritten now (read-only,
			// or a racing 'configure') is only a stale copy, refreshed on
			// the next open.
			_, _ = syncVaultCache(c, vc)
		},
	}
	if g != nil && !g.quiet {
		s.Note = func(msg string) { fmt.Fprintf(g.stderr, "note: %s\n", msg) }
	}
	if c.Vault != nil && c.Vault.Name != "" {
		a, so := vaultAccounts(c)
		s.Vault = &scheduler.VaultSpec{Name: c.Vault.Name, Primary: a, Secondary: so, SecondaryURL: c.Vault.SecondaryURL,
			ImmutableDays: c.Vault.ImmutableDays, KeyFingerprint: c.Vault.KeyFingerprint}
	}
	return s
}

// policyFromConfig is the retention policy of the configuration.
func policyFromConfig(cfg *config) retention.Policy {
	r := cfg.Retention
	return retention.Policy{
		Local: retention.LocalPolicy{KeepWithin: time.Duration(r.Local.KeepWithin), KeepLast: r.Local.KeepLast},
		Vault: retention.VaultPolicy{Daily: r.Vault.Daily, Weekly: r.Vault.Weekly, Monthly: r.Vault.Monthly, Yearly: r.Vault.Yearly},
	}
}
