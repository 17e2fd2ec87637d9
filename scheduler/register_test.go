package scheduler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage/vault"
)

// registerVault is an LRS vault on a file:// account with a credentials
// file issued at testNow.
func registerVault(t *testing.T) (*vault.Vault, []byte, string) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	primary := vault.Account{URL: "file://" + filepath.Join(root, "vault")}
	if err := os.MkdirAll(strings.TrimPrefix(primary.URL, "file://"), 0o700); err != nil {
		t.Fatal(err)
	}
	v, err := vault.CreateVault(ctx, primary, vault.CreateVaultOptions{Name: "register-test", Replication: vault.LRS}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	_, creds, err := v.IssueCredentials(ctx, vault.AccessKeys{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return v, creds, root
}

func registerRequest(creds []byte, root, name string, pass []byte) RegisterRequest {
	return RegisterRequest{
		Credentials: creds, Server: name, Passphrase: pass,
		Store: filepath.Join(root, name, "store"), Staging: filepath.Join(root, name, "staging"),
		Version: "test", Now: func() time.Time { return testNow.Add(time.Minute) },
	}
}

func registrations(t *testing.T, v *vault.Vault) []vault.Registration {
	t.Helper()
	regs, err := v.Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return regs
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a refused registration (%v)", path, err)
	}
}

func TestRegisterCreatesStoreEnvelopeAndRecord(t *testing.T) {
	ctx := context.Background()
	v, creds, root := registerVault(t)
	pass := []byte("web1's passphrase, 16+ characters")
	req := registerRequest(creds, root, "web1", pass)
	var saved *Registered
	req.Save = func(r *Registered) error { saved = r; return nil }
	r, err := Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if saved != r || r.Server != "web1" || r.Vault.Name != "register-test" || r.KeyFingerprint == "" || r.TakeOver {
		t.Fatalf("registered %+v (saved %p), want web1 in register-test, Save called with it", r, saved)
	}
	s, err := archive.OpenStore(ctx, req.Store)
	if err != nil {
		t.Fatalf("the new store does not open: %v", err)
	}
	if got := s.PublicKeys().Fingerprint; got != r.KeyFingerprint {
		t.Errorf("store sealed to key %s, registered %s", got, r.KeyFingerprint)
	}
	s.Close()
	if fi, err := os.Stat(req.Staging); err != nil || !fi.IsDir() {
		t.Errorf("staging folder: %v", err)
	}
	env, _, err := v.LoadKeyEnvelope(ctx, r.KeyFingerprint)
	if err != nil {
		t.Fatalf("the vault holds no envelope of the new key: %v", err)
	}
	if _, err := archive.UnwrapKeys(env, pass); err != nil {
		t.Errorf("the vault's envelope does not open with the passphrase: %v", err)
	}
	regs := registrations(t, v)
	if len(regs) != 1 || regs[0].Server != "web1" || regs[0].KeyFingerprint != r.KeyFingerprint ||
		regs[0].CredentialsSerial != r.Credentials.Serial || regs[0].Version != "test" || regs[0].TakeOver {
		t.Errorf("registrations %+v, want web1's with its key", regs)
	}
}

func TestRegisterRefusedLeavesNoStore(t *testing.T) {
	ctx := context.Background()
	v, creds, root := registerVault(t)
	if _, err := Register(ctx, registerRequest(creds, root, "web1", []byte("web1's passphrase, 16+ characters"))); err != nil {
		t.Fatal(err)
	}

	// The name is taken (in another case): refused before a passphrase
	// is made or anything is written.
	req := registerRequest(creds, root, "WEB1", nil)
	req.NewPassphrase = func() ([]byte, error) {
		t.Error("a passphrase was made for a refused registration")
		return []byte("a generated passphrase of 16+ characters"), nil
	}
	_, err := Register(ctx, req)
	if err == nil || !strings.Contains(err.Error(), `server "web1" is already registered to vault "register-test"`) {
		t.Fatalf("second registration of web1: %v", err)
	}
	mustNotExist(t, filepath.Join(root, "WEB1"))

	// A failure after the store is made (the caller's Save) removes it
	// again; an empty store folder that was there stays, empty.
	req = registerRequest(creds, root, "web2", []byte("web2's passphrase, 16+ characters"))
	if err := os.MkdirAll(req.Store, 0o700); err != nil {
		t.Fatal(err)
	}
	req.Save = func(*Registered) error { return errors.New("config not written") }
	if _, err := Register(ctx, req); err == nil || err.Error() != "config not written" {
		t.Fatalf("registration whose Save fails: %v", err)
	}
	if entries, err := os.ReadDir(req.Store); err != nil || len(entries) != 0 {
		t.Errorf("store folder after a failed registration: %d entries, %v; want it empty", len(entries), err)
	}

	// A folder that is not empty is refused at once.
	if err := os.WriteFile(filepath.Join(req.Store, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Register(ctx, req); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("registration into a folder that is not empty: %v", err)
	}
	if n := len(registrations(t, v)); n != 2 {
		t.Errorf("%d registrations, want web1's and web2's (recorded before its Save failed)", n)
	}
}

func TestRegisterTakeOver(t *testing.T) {
	ctx := context.Background()
	v, creds, root := registerVault(t)
	pass := []byte("web1's passphrase, 16+ characters")
	old, err := Register(ctx, registerRequest(creds, root, "Web1", pass))
	if err != nil {
		t.Fatal(err)
	}
	fps, err := v.KeyFingerprints(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The wrong passphrase: refused, nothing written.
	req := registerRequest(creds, root, "web1", []byte("not web1's passphrase at all"))
	req.TakeOver = true
	_, err = Register(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "take over Web1: the passphrase does not open its key") ||
		!strings.Contains(err.Error(), "nothing was registered") {
		t.Fatalf("take-over with the wrong passphrase: %v", err)
	}
	mustNotExist(t, filepath.Join(root, "web1"))
	if n := len(registrations(t, v)); n != 1 {
		t.Errorf("%d registrations after a refused take-over, want 1", n)
	}
	if after, err := v.KeyFingerprints(ctx); err != nil || len(after) != len(fps) {
		t.Errorf("key envelopes after a refused take-over: %v, %v; before %v", after, err, fps)
	}

	// web1's passphrase: this machine becomes Web1, with its key.
	req.Passphrase = pass
	req.Now = func() time.Time { return testNow.Add(time.Hour) }
	r, err := Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != "Web1" || r.KeyFingerprint != old.KeyFingerprint || !r.TakeOver {
		t.Errorf("take-over registered %+v, want Web1 with key %s", r, old.KeyFingerprint)
	}
	regs := registrations(t, v)
	if len(regs) != 2 || !regs[1].TakeOver || regs[1].KeyFingerprint != old.KeyFingerprint {
		t.Errorf("registrations %+v, want the take-over recorded with web1's key", regs)
	}
	s, err := archive.OpenStore(ctx, req.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PublicKeys().Fingerprint != old.KeyFingerprint {
		t.Errorf("the new store is sealed to %s, want web1's key %s", s.PublicKeys().Fingerprint, old.KeyFingerprint)
	}
}
