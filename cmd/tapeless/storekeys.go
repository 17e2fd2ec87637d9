package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
)

// repairKeysHint is what to do about a store whose key files are damaged.
const repairKeysHint = "rebuild the store's key files from the passphrase-wrapped key envelope with 'tapeless configure --repair-keys' (needs the passphrase)"

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

// checkVaultEnvelope refuses to offload points the vault could never give
// back: the vault must hold the key envelope of the key the store seals
// to, and it must be that very public key.
func checkVaultEnvelope(ctx context.Context, v *storage.Vault, pub archive.PublicKeys) error {
	env, _, err := v.LoadKeyEnvelope(ctx, pub.Fingerprint)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("vault %q holds no key envelope for the store's key %s: points offloaded there would be unrecoverable from the vault, so nothing was offloaded; store it there again with 'tapeless configure --repair-keys' (needs the passphrase)",
			v.Name(), pub.Fingerprint)
	}
	if err != nil {
		return fmt.Errorf("check the vault's key envelope before offloading: %w", err)
	}
	vpub, err := archive.EnvelopePublicKey(env)
	if err != nil {
		return fmt.Errorf("the key envelope of key %s in vault %q is unusable (%w): points offloaded there would be unrecoverable from the vault, so nothing was offloaded; %s",
			pub.Fingerprint, v.Name(), err, repairKeysHint)
	}
	if vpub != pub.Public {
		return fmt.Errorf("%w: the key envelope of key %s in vault %q holds another public key than the store's; nothing was offloaded; %s",
			archive.ErrKeyMismatch, pub.Fingerprint, v.Name(), repairKeysHint)
	}
	return nil
}

// repairKeys rebuilds the store's key files from a key envelope the
// passphrase opens: the store's own, else the vault's. The public-keys
// file is rewritten from the unwrapped keys (and its digest recorded); an
// unusable store envelope is replaced by the vault's, and a vault without
// a usable envelope of the key gets the store's. The key must be the one
// the store was created for and the configuration registered.
func repairKeys(ctx context.Context, g *globalOptions, cfg *config, passFile string) (string, error) {
	if cfg.Store == "" {
		return "", fmt.Errorf("no store configured in %s: set 'store:'", g.configFile)
	}
	view, err := archive.OpenStoreView(ctx, cfg.Store)
	if err != nil {
		return "", err
	}
	storeEnv, fp := view.Envelope, view.KeyFingerprint
	view.Close()
	if err := checkStoreKey(g, cfg, fp); err != nil {
		return "", err
	}
	pass, err := readPassphrasePrompt(g, passFile, "Passphrase", false)
	if err != nil {
		return "", err
	}
	defer clear(pass)

	var v *storage.Vault
	var vaultEnv []byte
	if cfg.Vault != nil && cfg.Vault.Name != "" {
		if v, err = openConfiguredVault(ctx, cfg); err != nil {
			return "", err
		}
		defer v.Close()
		if vaultEnv, _, err = v.LoadKeyEnvelope(ctx, fp); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	// An envelope belongs when it is intact and of the store's key; one
	// that belongs but does not open is under another passphrase (a
	// passphrase change cut short) and is left alone.
	belongs := func(env []byte) bool {
		efp, err := archive.EnvelopeFingerprint(env)
		return env != nil && err == nil && efp == fp
	}
	var wrong bool
	unwrap := func(env []byte) *archive.Keys {
		if !belongs(env) {
			return nil
		}
		k, err := archive.UnwrapKeys(env, pass)
		if err != nil {
			wrong = wrong || errors.Is(err, archive.ErrWrongPassphrase)
			return nil
		}
		return k
	}
	storeKeys, vaultKeys := unwrap(storeEnv), unwrap(vaultEnv)
	keys := storeKeys
	if keys == nil {
		keys = vaultKeys
	}
	if keys == nil {
		if wrong {
			return "", errors.New("the passphrase does not open the key envelope of the store or of the vault; nothing was changed")
		}
		return "", fmt.Errorf("neither the store nor the vault holds an intact key envelope of key %s: the keys cannot be rebuilt; nothing was changed", fp)
	}

	done := []string{"public-keys rebuilt (key " + fp + ")"}
	if err := archive.RebuildPublicKeys(ctx, cfg.Store, keys); err != nil {
		return "", err
	}
	if !belongs(storeEnv) {
		if err := replaceStoreEnvelope(ctx, cfg.Store, vaultEnv); err != nil {
			return "", err
		}
		done = append(done, "the store's key envelope replaced by the vault's")
	}
	if v != nil && !belongs(vaultEnv) {
		if _, err := v.SaveKeyEnvelope(ctx, fp, storeEnv); err != nil {
			return "", err
		}
		done = append(done, "the key envelope stored in vault "+v.Name())
	}
	return strings.Join(done, "; "), nil
}
