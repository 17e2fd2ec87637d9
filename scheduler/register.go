package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

// RegisterRequest is a registration of this server to a vault: the
// caller has checked its own inputs (the server name, the folders, the
// passphrase's source) and read the credentials file.
type RegisterRequest struct {
	// Credentials is the content of a vault credentials file; Proxy the
	// http(s) proxy for vault traffic ("" for none).
	Credentials []byte
	Proxy       string
	// Server is the name to register under. With TakeOver it is the lost
	// server whose key this machine takes over, and the registration
	// takes that server's spelling from the vault.
	Server   string
	TakeOver bool
	// Store is the new store's folder, missing or empty; Staging the
	// staging folder, created when missing. Both absolute.
	Store, Staging string
	// Passphrase wraps the new key or, with TakeOver, opens the lost
	// server's. When nil, NewPassphrase is called once the vault has
	// accepted the registration and before anything is written; a
	// caller that writes the passphrase somewhere undoes that itself
	// when Register returns an error.
	Passphrase    []byte
	NewPassphrase func() ([]byte, error)
	// Save, when set, is called last, once the registration is
	// recorded (the CLI writes its configuration); its error undoes the
	// local writes like any other failure.
	Save func(*Registered) error
	// Version is recorded with the registration (the tapeless version).
	Version string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Registered is a registration done: where the vault is and how this
// server reaches it.
type Registered struct {
	Vault          vault.VaultConfig  // the vault's own settings
	Credentials    *vault.Credentials // the file's access keys
	Server         string             // as registered
	KeyFingerprint string
	TakeOver       bool
	// Adopted is what a take-over learned of the vault's packs of its
	// key for deduplication; AdoptErr why it could not (the registration
	// stands: the store then stores that data again).
	Adopted  archive.AdoptStats
	AdoptErr error
}

// Register registers this server to the vault a credentials file names.
// Everything that can be refused is refused before anything is written:
// the store folder, the credentials against the vault, and the server
// name (free, or with TakeOver a key the passphrase opens). Then it makes
// the key pair (or uses the taken-over one), creates the store and the
// staging folder, stores the key envelope in the vault and records the
// registration; on failure the store is removed again, so that the
// registration can simply be run again.
func Register(ctx context.Context, req RegisterRequest) (*Registered, error) {
	storeExisted, err := CheckNewStore(req.Store)
	if err != nil {
		return nil, err
	}
	if req.Passphrase != nil {
		if err := archive.ValidatePassphrase(req.Passphrase); err != nil {
			return nil, fmt.Errorf("%w; nothing was registered", err)
		}
	} else if req.TakeOver || req.NewPassphrase == nil {
		return nil, errors.New("registration needs a passphrase (a take-over the lost server's); nothing was registered")
	}
	now := req.Now
	if now == nil {
		now = time.Now
	}
	creds, v, err := vault.ValidateCredentials(ctx, req.Credentials, now(), storage.Options{Proxy: req.Proxy})
	if err != nil {
		return nil, err
	}
	defer v.Close()
	r := &Registered{Vault: v.Config, Credentials: creds, Server: req.Server, TakeOver: req.TakeOver}
	var taken *archive.Keys
	var takenEnv []byte
	if req.TakeOver {
		if taken, takenEnv, err = takeOverKeys(ctx, v, req.Server, req.Passphrase); err != nil {
			return nil, err
		}
		r.Server = takenServer(ctx, v, req.Server)
	} else if err := checkServerNameFree(ctx, v, req.Server); err != nil {
		return nil, err
	}
	w := &registration{req: req, r: r, v: v, now: now, keys: taken, env: takenEnv}
	if err := w.write(ctx, storeExisted); err != nil {
		return nil, err
	}
	return r, nil
}

// registration is the writing half of Register.
type registration struct {
	req  RegisterRequest
	r    *Registered
	v    *vault.Vault
	now  func() time.Time
	keys *archive.Keys // the taken-over key, else made by write
	env  []byte
}

// write makes the key pair unless one was taken over, then creates the
// store and the staging folder, stores the envelope and records the
// registration. A failure removes the store again (its folder itself
// when it did not exist).
func (w *registration) write(ctx context.Context, storeExisted bool) (err error) {
	taken := w.keys != nil
	if w.keys == nil {
		pass := w.req.Passphrase
		if pass == nil {
			if pass, err = w.req.NewPassphrase(); err != nil {
				return err
			}
		}
		if w.keys, err = archive.GenerateKeys(); err != nil {
			return err
		}
		if w.env, err = archive.WrapKeys(w.keys, pass); err != nil {
			return fmt.Errorf("wrap keys: %w", err)
		}
	}
	fp := w.keys.Fingerprint
	w.r.KeyFingerprint = fp
	store := w.req.Store
	defer func() {
		if err != nil {
			removeNewStore(store, storeExisted)
		}
	}()
	if err := archive.InitStore(ctx, store, w.keys.PublicKeys, w.env); err != nil {
		return fmt.Errorf("create store %s: %w", store, err)
	}
	if err := os.MkdirAll(w.req.Staging, 0o700); err != nil {
		return fmt.Errorf("create staging folder: %w", err)
	}
	if !taken { // a taken-over key's envelope is already in the vault
		if _, err := w.v.SaveKeyEnvelope(ctx, fp, w.env); err != nil {
			return err
		}
	}
	if err := w.v.Register(ctx, vault.Registration{
		Server: w.r.Server, RegisteredAt: w.now(), KeyFingerprint: fp, CredentialsSerial: w.r.Credentials.Serial,
		Version: w.req.Version, TakeOver: taken,
	}); err != nil {
		return err
	}
	if taken {
		w.adopt(ctx)
	}
	if w.req.Save != nil {
		return w.req.Save(w.r)
	}
	return nil
}

// adopt fills the new store's dedup index from the vault's index objects
// of the taken-over key, so the first backup continues the lost server's
// history instead of sending everything again. It is best effort: a store
// that could not adopt them still works, it stores that data again.
func (w *registration) adopt(ctx context.Context) {
	s, err := archive.OpenStore(ctx, w.req.Store)
	if err != nil {
		w.r.AdoptErr = err
		return
	}
	defer s.Close()
	var read storage.Backend = w.v.Primary()
	if sec := w.v.Secondary(); sec != nil {
		read = storage.Replicated(w.v.Primary(), sec, storage.WithContentHash(ObjectHashFromName),
			storage.WithFallbackReport(func(storage.Fallback) {}))
	}
	w.r.Adopted, w.r.AdoptErr = archive.AdoptVault(ctx, s, read, w.keys)
}

// CheckNewStore reports whether dir can become a new store: it must be
// missing or empty. existed says it is there (and empty).
func CheckNewStore(dir string) (existed bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store folder: %w", err)
	}
	if len(entries) > 0 {
		return true, fmt.Errorf("store folder %s is not empty; registration creates a new store (choose another --store)", dir)
	}
	return true, nil
}

// removeNewStore undoes a store made by Register: an empty folder that
// existed is emptied again, one that did not is removed.
func removeNewStore(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// checkServerNameFree refuses a second registration under a name the vault
// already knows: two servers of one name would show as one in the vault's
// list and their points could not be told apart.
func checkServerNameFree(ctx context.Context, v *vault.Vault, server string) error {
	regs, err := v.Registrations(ctx)
	if err != nil {
		return err
	}
	for _, r := range regs {
		if strings.EqualFold(r.Server, server) {
			return fmt.Errorf("server %q is already registered to vault %q (since %s, key %s); nothing was registered: register this server under another name with --server NAME",
				r.Server, v.Name(), r.RegisteredAt.Local().Format("2006-01-02 15:04"), r.KeyFingerprint)
		}
	}
	return nil
}

// takeOverKeys opens the key envelope of the lost server's current key
// from the vault with its passphrase. Nothing is written.
func takeOverKeys(ctx context.Context, v *vault.Vault, server string, pass []byte) (*archive.Keys, []byte, error) {
	regs, err := v.Registrations(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, err := vault.ServerKey(regs, server)
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: %w", server, err)
	}
	env, _, err := v.LoadKeyEnvelope(ctx, r.KeyFingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: its key envelope (key %s): %w", r.Server, r.KeyFingerprint, err)
	}
	k, err := archive.UnwrapKeys(env, pass)
	if errors.Is(err, archive.ErrWrongPassphrase) {
		return nil, nil, fmt.Errorf("take over %s: the passphrase does not open its key (key %s): give the passphrase of %s, not of this machine; nothing was registered", r.Server, r.KeyFingerprint, r.Server)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: %w", r.Server, err)
	}
	return k, env, nil
}

// takenServer is the lost server's name as registered (its case).
func takenServer(ctx context.Context, v *vault.Vault, server string) string {
	if regs, err := v.Registrations(ctx); err == nil {
		if r, err := vault.ServerKey(regs, server); err == nil {
			return r.Server
		}
	}
	return server
}
