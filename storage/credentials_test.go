package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
)

const (
	expiredText = "Vault credentials file provided has expired"
	invalidText = "Invalid vault credentials provided"
)

func mustIssue(t *testing.T, v *storage.Vault, keys storage.AccessKeys, now time.Time) []byte {
	t.Helper()
	c, file, err := v.IssueCredentials(context.Background(), keys, now)
	if err != nil {
		t.Fatalf("IssueCredentials: %v", err)
	}
	if c.ExpiresAt.Sub(c.IssuedAt) != 48*time.Hour {
		t.Fatalf("validity %v, want 48h", c.ExpiresAt.Sub(c.IssuedAt))
	}
	return file
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrCredentialsInvalid) || !strings.Contains(err.Error(), invalidText) {
		t.Errorf("%s: %v, want %q", what, err, invalidText)
	}
}

func TestCredentialsFileName(t *testing.T) {
	got := storage.CredentialsFileName("Backup-1", time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC))
	if want := "Backup-1_2026-03-04.VaultCredentials"; got != want {
		t.Errorf("CredentialsFileName = %q, want %q", got, want)
	}
}

func TestCredentialsExpiry(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, storage.CreateVaultOptions{Name: "exp", Replication: storage.LRS})
		file := mustIssue(t, v, storage.AccessKeys{}, t0)

		if _, err := v.CheckCredentials(ctx, file, t0); err != nil {
			t.Errorf("fresh file: %v", err)
		}
		if _, err := v.CheckCredentials(ctx, file, t0.Add(48*time.Hour-time.Second)); err != nil {
			t.Errorf("at 48h - 1s: %v, want valid", err)
		}
		_, err := v.CheckCredentials(ctx, file, t0.Add(48*time.Hour+time.Second))
		if !errors.Is(err, storage.ErrCredentialsExpired) || !strings.HasPrefix(err.Error(), expiredText) ||
			!strings.Contains(err.Error(), "tapeless vault credentials exp --url "+v.Config.PrimaryURL) {
			t.Errorf("at 48h + 1s: %v, want %q and how to get a new file", err, expiredText)
		}
		// The same through the URL inside the file.
		_, w, err := storage.ValidateCredentials(ctx, file, t0.Add(48*time.Hour-time.Second), a.Options)
		if err != nil {
			t.Errorf("ValidateCredentials at 48h - 1s: %v", err)
		} else {
			w.Close()
		}
		if _, _, err := storage.ValidateCredentials(ctx, file, t0.Add(48*time.Hour+time.Second), a.Options); !errors.Is(err, storage.ErrCredentialsExpired) {
			t.Errorf("ValidateCredentials at 48h + 1s: %v", err)
		}
	})
}

func TestCredentialsSuperseded(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, storage.CreateVaultOptions{Name: "twice", Replication: storage.LRS})
		first := mustIssue(t, v, storage.AccessKeys{}, t0)
		second := mustIssue(t, v, storage.AccessKeys{}, t0) // two quick downloads
		_, _, err := storage.ValidateCredentials(ctx, first, t0.Add(time.Second), a.Options)
		wantInvalid(t, "first of two quick issues", err)
		_, w, err := storage.ValidateCredentials(ctx, second, t0.Add(time.Second), a.Options)
		if err != nil {
			t.Fatalf("second of two quick issues: %v", err)
		}
		w.Close()
		// Superseded wins over expired: the file is invalid whatever its age.
		_, err = v.CheckCredentials(ctx, first, t0.Add(72*time.Hour))
		wantInvalid(t, "superseded and expired", err)
	})
}

func TestCredentialsFlippedByte(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, storage.CreateVaultOptions{Name: "flip", Replication: storage.LRS})
		file := mustIssue(t, v, storage.AccessKeys{AccessKey: "AKIAFLIP", SecretKey: "flip-secret"}, t0)
		// Every byte, flipped in two different bits, makes the file invalid.
		for i := range file {
			for _, bit := range []byte{0x01, 0x20} {
				bad := append([]byte(nil), file...)
				bad[i] ^= bit
				if _, err := v.CheckCredentials(ctx, bad, t0); !errors.Is(err, storage.ErrCredentialsInvalid) {
					t.Fatalf("byte %d (%q) xor %#x: %v, want %q", i, file[i], bit, err, invalidText)
				}
			}
		}
		// Once through the full path with the vault named by the file.
		bad := append([]byte(nil), file...)
		bad[len(bad)/2] ^= 0x01
		_, _, err := storage.ValidateCredentials(ctx, bad, t0, a.Options)
		wantInvalid(t, "flipped byte via ValidateCredentials", err)
		// Truncated and empty files too.
		_, _, err = storage.ValidateCredentials(ctx, file[:len(file)-10], t0, a.Options)
		wantInvalid(t, "truncated", err)
		_, _, err = storage.ValidateCredentials(ctx, nil, t0, a.Options)
		wantInvalid(t, "empty", err)
	})
}

func TestCredentialsTamperedWithNewChecksum(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, storage.CreateVaultOptions{Name: "tamper", Replication: storage.LRS})
		file := mustIssue(t, v, storage.AccessKeys{}, t0)
		// Someone extends the validity and fixes up the checksum: the
		// signature, which needs the vault's key, still gives it away.
		c, err := storage.ParseCredentials(file)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpiresAt = c.ExpiresAt.Add(365 * 24 * time.Hour)
		forged := reseal(t, c)
		if _, err := storage.ParseCredentials(forged); err != nil {
			t.Fatalf("resealed file fails offline: %v", err)
		}
		_, err = v.CheckCredentials(ctx, forged, t0)
		wantInvalid(t, "tampered expiry", err)
	})
}

// reseal re-encodes c with a correct checksum but the old signature, as a
// forger without the vault's signing key could.
func reseal(t *testing.T, c *storage.Credentials) []byte {
	t.Helper()
	cp := *c
	cp.Checksum, cp.Signature = "", ""
	content, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	c.Checksum = sha256Hex(content)
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCredentialsOfAnotherVault(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		va := mustCreate(t, a, storage.CreateVaultOptions{Name: "vault-a", Replication: storage.LRS})
		vb := mustCreate(t, a, storage.CreateVaultOptions{Name: "vault-b", Replication: storage.LRS})
		fileA := mustIssue(t, va, storage.AccessKeys{}, t0)
		mustIssue(t, vb, storage.AccessKeys{}, t0)

		_, err := vb.CheckCredentials(ctx, fileA, t0)
		wantInvalid(t, "file of vault A on vault B", err)
		// Renamed to B with a fixed checksum: B's signing key refuses it.
		c, err := storage.ParseCredentials(fileA)
		if err != nil {
			t.Fatal(err)
		}
		c.Vault = "vault-b"
		_, _, err = storage.ValidateCredentials(ctx, reseal(t, c), t0, a.Options)
		wantInvalid(t, "file of vault A renamed to vault B", err)
		// Same name in another account: another signing key.
		other := k.account(t, "primary")
		vo := mustCreate(t, other, storage.CreateVaultOptions{Name: "vault-a", Replication: storage.LRS})
		mustIssue(t, vo, storage.AccessKeys{}, t0)
		_, err = vo.CheckCredentials(ctx, fileA, t0)
		wantInvalid(t, "file of vault-a on a same-named vault elsewhere", err)
		// A file whose vault does not exist.
		c, _ = storage.ParseCredentials(fileA)
		c.Vault = "vault-gone"
		_, _, err = storage.ValidateCredentials(ctx, reseal(t, c), t0, a.Options)
		wantInvalid(t, "file naming a missing vault", err)
	})
}

func TestCredentialsCarryLocationsAndKeys(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		p, s := k.account(t, "primary"), k.account(t, "secondary")
		v := mustCreate(t, p, storage.CreateVaultOptions{Name: "carry", Secondary: &s})
		keys := storage.AccessKeys{AccessKey: p.Options.AccessKey, SecretKey: p.Options.SecretKey}
		file := mustIssue(t, v, keys, t0)
		// No keys from the caller or the environment: the file's own keys
		// must be enough.
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		c, w, err := storage.ValidateCredentials(ctx, file, t0, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if c.PrimaryURL != v.Config.PrimaryURL || c.SecondaryURL != v.Config.SecondaryURL || c.Replication != storage.GRS || c.SecretKey != keys.SecretKey {
			t.Errorf("credentials carry %+v", c)
		}
		if w.Secondary() == nil {
			t.Errorf("vault opened from credentials has no secondary")
		}
		st, err := w.Status(ctx, t0.Add(time.Hour))
		if err != nil || !st.IssueValid || st.LatestIssue.Serial != c.Serial {
			t.Errorf("Status after issue = %+v, %v", st, err)
		}
		// The issue record is on both copies and holds no key.
		for _, cp := range v.Copies() {
			names := listNames(t, cp, "credentials/")
			if len(names) != 2 { // signing key + one record
				t.Errorf("%s credentials/: %v", cp.Location(), names)
			}
			rec := readAll(t, cp, "credentials/00000000000000000001.json")
			if keys.SecretKey != "" && strings.Contains(string(rec), keys.SecretKey) {
				t.Errorf("issue record holds the secret key")
			}
		}
	})
}

// TestCredentialsCarrySecondaryKeys: keys given for the GRS copy travel in
// the file and are the ones used to reach it. The test MinIO servers share
// one root user, so "other keys" are shown by a wrong secondary secret: the
// vault opened from that file cannot reach its second copy, while the
// primary (with its own, right keys) still works.
func TestCredentialsCarrySecondaryKeys(t *testing.T) {
	ctx := context.Background()
	pu, po := minio(t, "primary")
	su, so := minio(t, "secondary")
	p := storage.Account{URL: pu, Options: po}
	s := storage.Account{URL: su, Options: so}
	v := mustCreate(t, p, storage.CreateVaultOptions{Name: "carry2", Secondary: &s})
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	for _, c := range []struct {
		name        string
		secret      string
		secondaryOK bool
	}{
		{"right secondary keys", so.SecretKey, true},
		{"wrong secondary secret", "not-the-secondary-secret", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := storage.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey,
				SecondaryAccessKey: so.AccessKey, SecondarySecretKey: c.secret}
			file := mustIssue(t, v, keys, t0)
			cred, w, err := storage.ValidateCredentials(ctx, file, t0, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if cred.SecondaryAccessKey != so.AccessKey || cred.SecondarySecretKey != c.secret {
				t.Errorf("file carries secondary keys %q/%q, want %q/%q", cred.SecondaryAccessKey, cred.SecondarySecretKey, so.AccessKey, c.secret)
			}
			if o := cred.SecondaryOptions(storage.Options{Proxy: "http://proxy:3128"}); o == nil || o.SecretKey != c.secret || o.Proxy != "http://proxy:3128" {
				t.Errorf("SecondaryOptions = %+v, want the file's secondary keys and the base proxy", o)
			}
			st, err := w.Status(ctx, t0.Add(time.Hour))
			if err != nil {
				t.Fatalf("Status = %v", err)
			}
			if st.SecondaryOK != c.secondaryOK {
				t.Errorf("second copy reachable = %v (%v), want %v", st.SecondaryOK, st.SecondaryErr, c.secondaryOK)
			}
		})
	}

	// Without secondary keys the file has none, and the second copy is
	// reached with the primary's keys.
	file := mustIssue(t, v, storage.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey}, t0)
	if bytes.Contains(file, []byte("secondary_access_key")) {
		t.Errorf("file without secondary keys names them:\n%s", file)
	}
	cred, err := storage.ParseCredentials(file)
	if err != nil {
		t.Fatal(err)
	}
	if o := cred.SecondaryOptions(storage.Options{}); o != nil {
		t.Errorf("SecondaryOptions = %+v, want nil", o)
	}

	// An LRS vault's file never carries secondary keys.
	l := mustCreate(t, p, storage.CreateVaultOptions{Name: "carry-lrs", Replication: storage.LRS})
	file = mustIssue(t, l, storage.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey,
		SecondaryAccessKey: "x", SecondarySecretKey: "y"}, t0)
	if bytes.Contains(file, []byte("secondary_")) {
		t.Errorf("LRS file carries secondary keys:\n%s", file)
	}
}
