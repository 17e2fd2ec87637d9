package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// RepairKeysHint is what to do about a store whose key files are damaged.
const RepairKeysHint = "rebuild the store's key files from the passphrase-wrapped key envelope with 'tapeless configure --repair-keys' (needs the passphrase)"

// CheckVaultEnvelope refuses to offload points the vault could never give
// back: the vault must hold the key envelope of the key the store seals
// to, and it must be that very public key.
func CheckVaultEnvelope(ctx context.Context, v *vault.Vault, pub archive.PublicKeys) error {
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
			pub.Fingerprint, v.Name(), err, RepairKeysHint)
	}
	if vpub != pub.Public {
		return fmt.Errorf("%w: the key envelope of key %s in vault %q holds another public key than the store's; nothing was offloaded; %s",
			archive.ErrKeyMismatch, pub.Fingerprint, v.Name(), RepairKeysHint)
	}
	return nil
}

// RepairKeys rebuilds the store's key files from a key envelope the
// passphrase opens: the store's own, else the vault's. The public-keys
// file is rewritten from the unwrapped keys (and its digest recorded); an
// unusable store envelope is replaced by the vault's, and a vault without
// a usable envelope of the key gets the store's. checkKey refuses a store
// key that is not the registered one; passphrase is asked only after it.
// It returns what it did, for the user.
func RepairKeys(ctx context.Context, site *Site, checkKey func(fp string) error, passphrase func() ([]byte, error)) (string, error) {
	view, err := archive.OpenStoreView(ctx, site.Store)
	if err != nil {
		return "", err
	}
	storeEnv, fp := view.Envelope, view.KeyFingerprint
	view.Close()
	if err := checkKey(fp); err != nil {
		return "", err
	}
	pass, err := passphrase()
	if err != nil {
		return "", err
	}
	defer clear(pass)

	var v *vault.Vault
	var vaultEnv []byte
	if site.registered() {
		if v, err = site.openStorageVault(ctx); err != nil {
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
	keys := unwrap(storeEnv)
	if keys == nil {
		keys = unwrap(vaultEnv)
	}
	if keys == nil {
		if wrong {
			return "", errors.New("the passphrase does not open the key envelope of the store or of the vault; nothing was changed")
		}
		return "", fmt.Errorf("neither the store nor the vault holds an intact key envelope of key %s: the keys cannot be rebuilt; nothing was changed", fp)
	}

	done := []string{"public-keys rebuilt (key " + fp + ")"}
	if err := archive.RebuildPublicKeys(ctx, site.Store, keys); err != nil {
		return "", err
	}
	if !belongs(storeEnv) {
		if err := replaceStoreEnvelope(ctx, site.Store, vaultEnv); err != nil {
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

// ChangePassphrase re-wraps the private key under a new passphrase: the
// vault gets the new envelope first (the next keys/<fp>/<seq>), then the
// store, then the vault's older envelopes are removed. A crash in between
// leaves one place with the old and one with the new passphrase; running
// it again with the old one finishes the change. Old envelopes that could
// not be removed are returned with the error, which is only a warning:
// the change itself is done.
func ChangePassphrase(ctx context.Context, site *Site, oldPass, newPass []byte) (fingerprint string, left []string, warn error, err error) {
	env, err := loadStoreEnvelope(ctx, site.Store)
	if err != nil {
		return "", nil, nil, err
	}
	keys, err := archive.UnwrapKeys(env, oldPass)
	if errors.Is(err, archive.ErrWrongPassphrase) {
		return "", nil, nil, errors.New("the current passphrase is wrong (it does not open the key envelope); nothing was changed")
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("open key envelope of store %s: %w", site.Store, err)
	}
	if site.Vault != nil && site.Vault.KeyFingerprint != "" && keys.Fingerprint != site.Vault.KeyFingerprint {
		return "", nil, nil, fmt.Errorf("the store's key %s is not the registered key %s", keys.Fingerprint, site.Vault.KeyFingerprint)
	}
	newEnv, err := archive.WrapKeys(keys, newPass)
	if err != nil {
		return "", nil, nil, fmt.Errorf("wrap keys: %w", err)
	}
	v, err := site.openStorageVault(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	defer v.Close()
	seq, err := v.SaveKeyEnvelope(ctx, keys.Fingerprint, newEnv)
	if err != nil {
		return "", nil, nil, err
	}
	if err := replaceStoreEnvelope(ctx, site.Store, newEnv); err != nil {
		return "", nil, nil, fmt.Errorf("the vault has the new envelope but the store does not (run the command again with the old passphrase): %w", err)
	}
	left, warn = v.RemoveOldKeyEnvelopes(ctx, keys.Fingerprint, seq)
	return keys.Fingerprint, left, warn, nil
}

// loadStoreEnvelope returns the key envelope kept in the store.
func loadStoreEnvelope(ctx context.Context, dir string) ([]byte, error) {
	s, err := archive.OpenStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Envelope(), nil
}

// replaceStoreEnvelope puts env into the store in place of the old one.
func replaceStoreEnvelope(ctx context.Context, dir string, env []byte) error {
	s, err := archive.OpenStore(ctx, dir)
	if err != nil {
		return err
	}
	if err := s.ReplaceEnvelope(env); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// UnknownServerError is the vault's answer to a server name no current
// registration has; its text names the registered servers.
type UnknownServerError struct{ Err error }

func (e *UnknownServerError) Error() string { return e.Err.Error() }
func (e *UnknownServerError) Unwrap() error { return e.Err }

// ServerKeys opens the keys of another server registered to the site's
// vault (the lost server of a disaster recovery): its current
// registration, that key's envelope from the vault, unwrapped with the
// passphrase. The vault is closed before passphrase is called, with the
// registration, so the caller can first check what needs no passphrase
// (and say whose passphrase it asks for); an error of passphrase is
// returned as it is.
func ServerKeys(ctx context.Context, site *Site, server string, passphrase func(vault.Registration) ([]byte, error)) (*archive.Keys, vault.Registration, error) {
	ov, err := site.OpenVaultForRead(ctx)
	if err != nil {
		return nil, vault.Registration{}, err
	}
	regs, err := ov.Vault.Registrations(ctx)
	if err != nil {
		ov.Close()
		return nil, vault.Registration{}, err
	}
	reg, err := vault.ServerKey(regs, server)
	if err != nil {
		ov.Close()
		return nil, vault.Registration{}, &UnknownServerError{err}
	}
	env, _, err := ov.Vault.LoadKeyEnvelope(ctx, reg.KeyFingerprint)
	ov.Close()
	if err != nil {
		return nil, reg, fmt.Errorf("server %s's key envelope (key %s): %w", reg.Server, reg.KeyFingerprint, err)
	}
	pass, err := passphrase(reg)
	if err != nil {
		return nil, reg, err
	}
	keys, err := archive.UnwrapKeys(env, pass)
	clear(pass)
	if errors.Is(err, archive.ErrWrongPassphrase) {
		return nil, reg, fmt.Errorf("the passphrase does not open server %s's key (key %s): give that server's passphrase; nothing was restored", reg.Server, reg.KeyFingerprint)
	}
	if err != nil {
		return nil, reg, fmt.Errorf("server %s's key: %w", reg.Server, err)
	}
	return keys, reg, nil
}
