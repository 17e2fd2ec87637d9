package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
)

// repairKeysHint is what to do about a store whose key files are damaged.
const repairKeysHint = scheduler.RepairKeysHint

// storeOpenError adds to a refused OpenStore what it means and what to do.
func storeOpenError(err error) error {
	if errors.Is(err, archive.ErrKeyMismatch) {
		return fmt.Errorf("%w; nothing was written (points sealed to a wrong key could never be restored): %s", err, repairKeysHint)
	}
	return err
}

// checkStoreKey refuses a store that is not the one this configuration was
// registered with: its key fingerprint differs from vault.key_fingerprint
// (for example 'store:' points at another server's store).
func checkStoreKey(g *globalOptions, cfg *config, storeFP string) error {
	if cfg.Vault == nil || cfg.Vault.KeyFingerprint == "" || cfg.Vault.KeyFingerprint == storeFP {
		return nil
	}
	return fmt.Errorf("store %s has key %s, but %s registered this server to vault %q with key %s: 'store:' names another server's store, or the file is not this store's configuration; set 'store:' to the store created at registration, or pass that store's own configuration with --config",
		cfg.Store, storeFP, g.configFile, cfg.Vault.Name, cfg.Vault.KeyFingerprint)
}

// repairKeys rebuilds the store's key files (scheduler.RepairKeys) for
// the store this configuration was registered with.
func repairKeys(ctx context.Context, g *globalOptions, cfg *config, passFile string) (string, error) {
	if cfg.Store == "" {
		return "", fmt.Errorf("no store configured in %s: set 'store:'", g.configFile)
	}
	return scheduler.RepairKeys(ctx, siteOf(g, cfg),
		func(fp string) error { return checkStoreKey(g, cfg, fp) },
		func() ([]byte, error) { return readPassphrasePrompt(g, passFile, "Passphrase", false) })
}
