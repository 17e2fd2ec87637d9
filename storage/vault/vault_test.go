package vault_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
	"github.com/tapeless/tapeless/storage/vault"
)

// kind makes accounts of one backend kind for the vault tests: every rule
// runs against file:// and against MinIO.
type kind struct {
	name string
	// account returns a fresh, empty account; which is "primary" or
	// "secondary" (another endpoint for MinIO, another folder for file).
	account func(t *testing.T, which string) vault.Account
	// lockAccount returns an account on an object-lock bucket, or nil when
	// the kind cannot lock.
	lockAccount func(t *testing.T, which string) *vault.Account
}

func kinds() []kind {
	return []kind{
		{
			name: "file",
			account: func(t *testing.T, which string) vault.Account {
				return vault.Account{URL: "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), which))}
			},
		},
		{
			name: "minio",
			account: func(t *testing.T, which string) vault.Account {
				u, o := minio(t, which)
				return vault.Account{URL: u, Options: o}
			},
			lockAccount: func(t *testing.T, which string) *vault.Account {
				u, o := minioLock(t, which)
				return &vault.Account{URL: u, Options: o}
			},
		},
	}
}

// forKinds runs f once per backend kind as a subtest.
func forKinds(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

var t0 = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

func mustCreate(t *testing.T, a vault.Account, o vault.CreateVaultOptions) *vault.Vault {
	t.Helper()
	v, err := vault.CreateVault(context.Background(), a, o, t0)
	if err != nil {
		t.Fatalf("CreateVault(%q): %v", o.Name, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func listNames(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error {
		out = append(out, i.Name)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func TestValidateVaultName(t *testing.T) {
	cases := []struct {
		name, vault, wantRule string // wantRule "" means valid
	}{
		{"two chars", "ab", ""},
		{"fifty chars", "a" + strings.Repeat("b", 49), ""},
		{"hyphens and digits", "Backup-Vault-01", ""},
		{"trailing hyphen", "vault-", ""},
		{"empty", "", "at least 2 characters"},
		{"one char", "a", "at least 2 characters"},
		{"fifty-one chars", "a" + strings.Repeat("b", 50), "at most 50 characters"},
		{"starts with digit", "1vault", "must start with a letter"},
		{"starts with hyphen", "-vault", "must start with a letter"},
		{"underscore", "my_vault", "only letters, digits and hyphens"},
		{"dot", "my.vault", "only letters, digits and hyphens"},
		{"space", "my vault", "only letters, digits and hyphens"},
		{"slash", "my/vault", "only letters, digits and hyphens"},
		{"non-ASCII letter", "vaulté", "only letters, digits and hyphens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := vault.ValidateVaultName(c.vault)
			if c.wantRule == "" {
				if err != nil {
					t.Fatalf("ValidateVaultName(%q) = %v, want nil", c.vault, err)
				}
				return
			}
			if err == nil || !errors.Is(err, vault.ErrInvalidVaultName) || !strings.Contains(err.Error(), c.wantRule) {
				t.Fatalf("ValidateVaultName(%q) = %v, want an error naming %q", c.vault, err, c.wantRule)
			}
		})
	}
}

func TestCreateVaultRules(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")

		if _, err := vault.CreateVault(ctx, a, vault.CreateVaultOptions{Name: "x"}, t0); err == nil || !strings.Contains(err.Error(), "at least 2 characters") {
			t.Errorf("create with a bad name: %v, want the name rule", err)
		}
		// GRS is the default and needs a second location.
		_, err := vault.CreateVault(ctx, a, vault.CreateVaultOptions{Name: "grs-vault"}, t0)
		if err == nil || !strings.Contains(err.Error(), "--secondary-url URL") || !strings.Contains(err.Error(), "--replication LRS") {
			t.Errorf("GRS without secondary: %v, want both ways out offered", err)
		}
		if got := listNames(t, mustOpenRoot(t, a), ""); len(got) != 0 {
			t.Errorf("refused creates wrote %v", got)
		}

		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "Alpha", Replication: vault.LRS})
		if v.Config.Replication != vault.LRS || v.Secondary() != nil {
			t.Errorf("LRS vault: replication %s, secondary %v", v.Config.Replication, v.Secondary())
		}
		for _, name := range []string{"Alpha", "alpha", "ALPHA"} {
			_, err := vault.CreateVault(ctx, a, vault.CreateVaultOptions{Name: name, Replication: vault.LRS}, t0)
			want := `vault "Alpha" already exists at ` + v.Config.PrimaryURL
			if !errors.Is(err, vault.ErrVaultExists) || !strings.Contains(err.Error(), want) {
				t.Errorf("second create of %q: %v, want %q", name, err, want)
			}
		}
		// The same name in another account is fine.
		mustCreate(t, k.account(t, "primary"), vault.CreateVaultOptions{Name: "Alpha", Replication: vault.LRS})

		// Opening by another letter case finds the vault.
		w, err := vault.OpenVault(ctx, a, "alpha", nil)
		if err != nil {
			t.Fatalf("OpenVault: %v", err)
		}
		w.Close()
		if w.Name() != "Alpha" {
			t.Errorf("OpenVault(alpha).Name() = %q, want Alpha", w.Name())
		}
		if _, err := vault.OpenVault(ctx, a, "missing", nil); !errors.Is(err, vault.ErrVaultNotFound) {
			t.Errorf("OpenVault(missing) = %v, want ErrVaultNotFound", err)
		}
	})
}

func mustOpenRoot(t *testing.T, a vault.Account) storage.Backend {
	t.Helper()
	b, err := storage.Open(context.Background(), a.URL, a.Options)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestCreateGRSWritesConfigToEveryCopy(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		p, s := k.account(t, "primary"), k.account(t, "secondary")
		v := mustCreate(t, p, vault.CreateVaultOptions{Name: "geo", Secondary: &s})
		if v.Config.Replication != vault.GRS {
			t.Errorf("default replication %s, want GRS", v.Config.Replication)
		}
		for _, b := range []storage.Backend{mustOpenRoot(t, p), mustOpenRoot(t, s)} {
			got := listNames(t, b, "vaults/geo/config/")
			if len(got) != 1 || got[0] != "vaults/geo/config/00000000000000000001.json" {
				t.Errorf("%s: config objects %v", b.Location(), got)
			}
		}
		// The name is taken in the secondary account as well.
		if _, err := vault.CreateVault(ctx, s, vault.CreateVaultOptions{Name: "geo", Replication: vault.LRS}, t0); !errors.Is(err, vault.ErrVaultExists) {
			t.Errorf("create in the secondary account: %v, want ErrVaultExists", err)
		}
		w, err := vault.OpenVault(ctx, p, "geo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if w.Secondary() == nil || w.Config.SecondaryURL != v.Config.SecondaryURL {
			t.Errorf("reopened GRS vault: secondary %v at %q", w.Secondary(), w.Config.SecondaryURL)
		}
		vs, err := vault.ListVaults(ctx, p)
		if err != nil || len(vs) != 1 || vs[0].Name != "geo" {
			t.Errorf("ListVaults = %v, %v", vs, err)
		}
	})
}

func TestImmutableDays(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		_, err := vault.CreateVault(ctx, a, vault.CreateVaultOptions{Name: "locked", Replication: vault.LRS, ImmutableDays: 30}, t0)
		want := "not created with object lock"
		if k.name == "file" {
			want = "cannot"
		}
		if err == nil || !strings.Contains(err.Error(), "object lock") || !strings.Contains(err.Error(), want) {
			t.Errorf("immutable vault on a bucket without lock: %v, want a refusal mentioning %q", err, want)
		}
		if k.lockAccount == nil {
			return
		}
		la := k.lockAccount(t, "primary")
		v := mustCreate(t, *la, vault.CreateVaultOptions{Name: "locked", Replication: vault.LRS, ImmutableDays: 1})
		if v.Config.ImmutableDays != 1 {
			t.Errorf("ImmutableDays = %d", v.Config.ImmutableDays)
		}
		// Objects are locked: the config cannot be removed.
		if err := v.Primary().Remove(ctx, "config/00000000000000000001.json"); err == nil {
			t.Errorf("removing a config object of an immutable vault succeeded")
		}
		w, err := vault.OpenVault(ctx, *la, "locked", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := w.SaveKeyEnvelope(ctx, "fp1", []byte("env")); err != nil {
			t.Fatal(err)
		}
		if err := w.Primary().Remove(ctx, "keys/fp1/00000000000000000001"); err == nil {
			t.Errorf("removing an object written after reopening an immutable vault succeeded")
		}
		// It carries a COMPLIANCE retention date ImmutableDays ahead.
		u, err := storage.ParseURL(la.URL)
		if err != nil {
			t.Fatal(err)
		}
		key := u.Prefix + "/vaults/locked/keys/fp1/00000000000000000001"
		mode, until, err := storagetest.Client(t, u.Host, la.Options).GetObjectRetention(ctx, u.Bucket, key, "")
		if err != nil {
			t.Fatalf("retention of %s: %v", key, err)
		}
		if mode == nil || *mode != miniogo.Compliance || until == nil ||
			until.Before(time.Now().Add(23*time.Hour)) || until.After(time.Now().Add(25*time.Hour)) {
			t.Errorf("retention of a vault object = %v until %v, want COMPLIANCE 1 day ahead", mode, until)
		}
	})
}

func TestSetReplication(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		p, s := k.account(t, "primary"), k.account(t, "secondary")
		v := mustCreate(t, p, vault.CreateVaultOptions{Name: "repl", Replication: vault.LRS})
		if err := v.SetReplication(ctx, vault.GRS, nil, t0); err == nil || !strings.Contains(err.Error(), "--secondary-url") {
			t.Errorf("LRS→GRS without secondary: %v", err)
		}
		if err := v.SetReplication(ctx, vault.GRS, &s, t0.Add(time.Minute)); err != nil {
			t.Fatalf("LRS→GRS: %v", err)
		}
		// Everything the primary held is on the secondary now.
		sroot := mustOpenRoot(t, s)
		if got, want := len(listNames(t, sroot, "vaults/repl/")), len(listNames(t, v.Primary(), "")); got != want {
			t.Errorf("secondary holds %d objects, primary %d", got, want)
		}
		w, err := vault.OpenVault(ctx, p, "repl", nil)
		if err != nil {
			t.Fatal(err)
		}
		if w.Config.Replication != vault.GRS || w.Secondary() == nil {
			t.Errorf("after LRS→GRS the vault reads %s", w.Config.Replication)
		}
		w.Close()
		if err := v.SetReplication(ctx, vault.LRS, nil, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("GRS→LRS: %v", err)
		}
		if err := v.SetReplication(ctx, vault.GRS, &s, t0.Add(3*time.Minute)); err != nil {
			t.Fatalf("LRS→GRS again: %v", err)
		}

		// The first archived point freezes the setting.
		if err := v.Primary().Save(ctx, "points/p1/manifest", bytes.NewReader([]byte("m")), 1); err != nil {
			t.Fatal(err)
		}
		err = v.SetReplication(ctx, vault.LRS, nil, t0.Add(4*time.Minute))
		if !errors.Is(err, vault.ErrReplicationFrozen) || !strings.Contains(err.Error(), "until the first one is archived") {
			t.Errorf("change after a point was archived: %v, want ErrReplicationFrozen with the reason", err)
		}
		w, err = vault.OpenVault(ctx, p, "repl", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if w.Config.Replication != vault.GRS {
			t.Errorf("refused change still changed replication to %s", w.Config.Replication)
		}
	})
}

func TestRegistrationAndKeyEnvelopes(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		p, s := k.account(t, "primary"), k.account(t, "secondary")
		v := mustCreate(t, p, vault.CreateVaultOptions{Name: "reg", Secondary: &s})
		r := vault.Registration{Server: "web-01.example", RegisteredAt: t0, KeyFingerprint: "abc123"}
		if err := v.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := v.Register(ctx, vault.Registration{Server: "bad/name", RegisteredAt: t0, KeyFingerprint: "x"}); err == nil {
			t.Errorf("Register accepted a server name with a slash")
		}
		regs, err := v.Registrations(ctx)
		if err != nil || len(regs) != 1 || regs[0].Server != r.Server || regs[0].KeyFingerprint != "abc123" {
			t.Errorf("Registrations = %+v, %v", regs, err)
		}
		for i, env := range []string{"first", "second"} {
			seq, err := v.SaveKeyEnvelope(ctx, "abc123", []byte(env))
			if err != nil || seq != uint64(i+1) {
				t.Fatalf("SaveKeyEnvelope #%d = %d, %v", i+1, seq, err)
			}
		}
		env, seq, err := v.LoadKeyEnvelope(ctx, "abc123")
		if err != nil || string(env) != "second" || seq != 2 {
			t.Errorf("LoadKeyEnvelope = %q, %d, %v; want the newest", env, seq, err)
		}
		left, err := v.RemoveOldKeyEnvelopes(ctx, "abc123", 2)
		if err != nil || len(left) != 0 {
			t.Errorf("RemoveOldKeyEnvelopes = %v, %v", left, err)
		}
		for _, c := range v.Copies() {
			if got := listNames(t, c, "keys/"); len(got) != 1 || !strings.HasSuffix(got[0], "00000000000000000002") {
				t.Errorf("%s keeps envelopes %v, want only the newest", c.Location(), got)
			}
		}
		if _, _, err := v.LoadKeyEnvelope(ctx, "nokey"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LoadKeyEnvelope(missing) = %v", err)
		}
		st, err := v.Status(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Servers) != 1 || st.LatestIssue != nil || st.IssueValid || st.KeyEnvelopes != 1 || !st.SecondaryOK {
			t.Errorf("Status = %+v", st)
		}
	})
}

// readAll is io.ReadAll for Load callbacks.
func readAll(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	var out []byte
	if err := b.Load(context.Background(), name, 0, -1, func(r io.Reader) (err error) {
		out, err = io.ReadAll(r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
