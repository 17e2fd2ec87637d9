package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

const (
	expiredText = "Vault credentials file provided has expired"
	invalidText = "Invalid vault credentials provided"
)

func mustIssue(t *testing.T, v *vault.Vault, keys vault.AccessKeys, now time.Time) []byte {
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
	if !errors.Is(err, vault.ErrCredentialsInvalid) || !strings.Contains(err.Error(), invalidText) {
		t.Errorf("%s: %v, want %q", what, err, invalidText)
	}
}

func TestCredentialsFileName(t *testing.T) {
	got := vault.CredentialsFileName("Backup-1", time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC))
	if want := "Backup-1_2026-03-04.VaultCredentials"; got != want {
		t.Errorf("CredentialsFileName = %q, want %q", got, want)
	}
}

func TestCredentialsExpiry(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "exp", Replication: vault.LRS})
		file := mustIssue(t, v, vault.AccessKeys{}, t0)

		if _, err := v.CheckCredentials(ctx, file, t0); err != nil {
			t.Errorf("fresh file: %v", err)
		}
		if _, err := v.CheckCredentials(ctx, file, t0.Add(48*time.Hour-time.Second)); err != nil {
			t.Errorf("at 48h - 1s: %v, want valid", err)
		}
		if _, err := v.CheckCredentials(ctx, file, t0.Add(48*time.Hour)); !errors.Is(err, vault.ErrCredentialsExpired) {
			t.Errorf("at 48h: %v, want %q", err, expiredText)
		}
		_, err := v.CheckCredentials(ctx, file, t0.Add(48*time.Hour+time.Second))
		if !errors.Is(err, vault.ErrCredentialsExpired) || !strings.HasPrefix(err.Error(), expiredText) ||
			!strings.Contains(err.Error(), "tapeless vault credentials exp --url "+v.Config.PrimaryURL) {
			t.Errorf("at 48h + 1s: %v, want %q and how to get a new file", err, expiredText)
		}
		// The same through the URL inside the file.
		_, w, err := vault.ValidateCredentials(ctx, file, t0.Add(48*time.Hour-time.Second), a.Options)
		if err != nil {
			t.Errorf("ValidateCredentials at 48h - 1s: %v", err)
		} else {
			w.Close()
		}
		if _, _, err := vault.ValidateCredentials(ctx, file, t0.Add(48*time.Hour+time.Second), a.Options); !errors.Is(err, vault.ErrCredentialsExpired) {
			t.Errorf("ValidateCredentials at 48h + 1s: %v", err)
		}
	})
}

func TestCredentialsSuperseded(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "twice", Replication: vault.LRS})
		first := mustIssue(t, v, vault.AccessKeys{}, t0)
		second := mustIssue(t, v, vault.AccessKeys{}, t0) // two quick downloads
		_, _, err := vault.ValidateCredentials(ctx, first, t0.Add(time.Second), a.Options)
		wantInvalid(t, "first of two quick issues", err)
		_, w, err := vault.ValidateCredentials(ctx, second, t0.Add(time.Second), a.Options)
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
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "flip", Replication: vault.LRS})
		file := mustIssue(t, v, vault.AccessKeys{AccessKey: "AKIAFLIP", SecretKey: "flip-secret"}, t0)
		// Every byte, flipped in two different bits, makes the file invalid.
		for i := range file {
			for _, bit := range []byte{0x01, 0x20} {
				bad := append([]byte(nil), file...)
				bad[i] ^= bit
				if _, err := v.CheckCredentials(ctx, bad, t0); !errors.Is(err, vault.ErrCredentialsInvalid) {
					t.Fatalf("byte %d (%q) xor %#x: %v, want %q", i, file[i], bit, err, invalidText)
				}
			}
		}
		// Once through the full path with the vault named by the file.
		bad := append([]byte(nil), file...)
		bad[len(bad)/2] ^= 0x01
		_, _, err := vault.ValidateCredentials(ctx, bad, t0, a.Options)
		wantInvalid(t, "flipped byte via ValidateCredentials", err)
		// Truncated and empty files too.
		_, _, err = vault.ValidateCredentials(ctx, file[:len(file)-10], t0, a.Options)
		wantInvalid(t, "truncated", err)
		_, _, err = vault.ValidateCredentials(ctx, nil, t0, a.Options)
		wantInvalid(t, "empty", err)
	})
}

func TestCredentialsTamperedWithNewChecksum(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "tamper", Replication: vault.LRS})
		file := mustIssue(t, v, vault.AccessKeys{}, t0)
		// Someone extends the validity and fixes up the checksum: the
		// vault's issue record holds the checksum of the file as issued.
		c, err := vault.ParseCredentials(file)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpiresAt = c.ExpiresAt.Add(365 * 24 * time.Hour)
		forged := reseal(t, c)
		if _, err := vault.ParseCredentials(forged); err != nil {
			t.Fatalf("resealed file fails offline: %v", err)
		}
		_, err = v.CheckCredentials(ctx, forged, t0)
		wantInvalid(t, "tampered expiry", err)
	})
}

// reseal re-encodes c with a correct checksum, as anyone can who reads
// docs/VAULT.md.
func reseal(t *testing.T, c *vault.Credentials) []byte {
	t.Helper()
	cp := *c
	cp.Checksum = ""
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
		va := mustCreate(t, a, vault.CreateVaultOptions{Name: "vault-a", Replication: vault.LRS})
		vb := mustCreate(t, a, vault.CreateVaultOptions{Name: "vault-b", Replication: vault.LRS})
		fileA := mustIssue(t, va, vault.AccessKeys{}, t0)
		mustIssue(t, vb, vault.AccessKeys{}, t0)

		_, err := vb.CheckCredentials(ctx, fileA, t0)
		wantInvalid(t, "file of vault A on vault B", err)
		// Renamed to B with a fixed checksum: B's issue record refuses it.
		c, err := vault.ParseCredentials(fileA)
		if err != nil {
			t.Fatal(err)
		}
		c.Vault = "vault-b"
		_, _, err = vault.ValidateCredentials(ctx, reseal(t, c), t0, a.Options)
		wantInvalid(t, "file of vault A renamed to vault B", err)
		// Same name in another account: another issue record.
		other := k.account(t, "primary")
		vo := mustCreate(t, other, vault.CreateVaultOptions{Name: "vault-a", Replication: vault.LRS})
		mustIssue(t, vo, vault.AccessKeys{}, t0)
		_, err = vo.CheckCredentials(ctx, fileA, t0)
		wantInvalid(t, "file of vault-a on a same-named vault elsewhere", err)
		// A file whose vault does not exist.
		c, _ = vault.ParseCredentials(fileA)
		c.Vault = "vault-gone"
		_, _, err = vault.ValidateCredentials(ctx, reseal(t, c), t0, a.Options)
		wantInvalid(t, "file naming a missing vault", err)
	})
}

func TestCredentialsCarryLocationsAndKeys(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		p, s := k.account(t, "primary"), k.account(t, "secondary")
		v := mustCreate(t, p, vault.CreateVaultOptions{Name: "carry", Secondary: &s})
		keys := vault.AccessKeys{AccessKey: p.Options.AccessKey, SecretKey: p.Options.SecretKey}
		file := mustIssue(t, v, keys, t0)
		// No keys from the caller or the environment: the file's own keys
		// must be enough.
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		c, w, err := vault.ValidateCredentials(ctx, file, t0, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if c.PrimaryURL != v.Config.PrimaryURL || c.SecondaryURL != v.Config.SecondaryURL || c.Replication != vault.GRS || c.SecretKey != keys.SecretKey {
			t.Errorf("credentials carry %+v", c)
		}
		if w.Secondary() == nil {
			t.Errorf("vault opened from credentials has no secondary")
		}
		st, err := w.Status(ctx, t0.Add(time.Hour))
		if err != nil || !st.IssueValid || st.LatestIssue.Serial != c.Serial {
			t.Errorf("Status after issue = %+v, %v", st, err)
		}
		// The issue record is on both copies and holds no key and not the
		// file's secret; nothing else is kept for credentials.
		for _, cp := range v.Copies() {
			names := listNames(t, cp, "credentials/")
			if len(names) != 1 {
				t.Errorf("%s credentials/: %v, want the one issue record", cp.Location(), names)
			}
			rec := readAll(t, cp, "credentials/00000000000000000001.json")
			if keys.SecretKey != "" && strings.Contains(string(rec), keys.SecretKey) {
				t.Errorf("issue record holds the secret key")
			}
			if !strings.Contains(string(rec), c.Checksum) || strings.Contains(string(rec), c.Secret) {
				t.Errorf("issue record holds the file's secret or not its checksum:\n%s", rec)
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
	p := vault.Account{URL: pu, Options: po}
	s := vault.Account{URL: su, Options: so}
	v := mustCreate(t, p, vault.CreateVaultOptions{Name: "carry2", Secondary: &s})
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
			keys := vault.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey,
				SecondaryAccessKey: so.AccessKey, SecondarySecretKey: c.secret}
			file := mustIssue(t, v, keys, t0)
			cred, w, err := vault.ValidateCredentials(ctx, file, t0, storage.Options{})
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
	file := mustIssue(t, v, vault.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey}, t0)
	if bytes.Contains(file, []byte("secondary_access_key")) {
		t.Errorf("file without secondary keys names them:\n%s", file)
	}
	cred, err := vault.ParseCredentials(file)
	if err != nil {
		t.Fatal(err)
	}
	if o := cred.SecondaryOptions(storage.Options{}); o != nil {
		t.Errorf("SecondaryOptions = %+v, want nil", o)
	}

	// An LRS vault's file never carries secondary keys.
	l := mustCreate(t, p, vault.CreateVaultOptions{Name: "carry-lrs", Replication: vault.LRS})
	file = mustIssue(t, l, vault.AccessKeys{AccessKey: po.AccessKey, SecretKey: po.SecretKey,
		SecondaryAccessKey: "x", SecondarySecretKey: "y"}, t0)
	if bytes.Contains(file, []byte("secondary_")) {
		t.Errorf("LRS file carries secondary keys:\n%s", file)
	}
}

// saveRecord writes an issue record under seq to every copy of v, as anyone
// holding the vault's S3 keys can.
func saveRecord(t *testing.T, v *vault.Vault, seq uint64, rec vault.CredentialsIssue) {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("credentials/%020d.json", seq)
	for _, cp := range v.Copies() {
		if err := cp.Save(context.Background(), name, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCredentialsResignedLaterExpiry: someone who can read the vault (every
// registered server has its S3 keys) takes the current file, moves
// expires_at a year ahead and makes every check a file allows pass again.
// The window comes from the vault's issue record, so it is refused, and
// the vault keeps nothing under credentials/ to sign a file with.
func TestCredentialsResignedLaterExpiry(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "resign", Replication: vault.LRS})
		file := mustIssue(t, v, vault.AccessKeys{}, t0)
		if names := listNames(t, v.Copies()[0], "credentials/"); len(names) != 1 {
			t.Errorf("credentials/ holds %v, want only the issue record", names)
		}
		c, err := vault.ParseCredentials(file)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpiresAt = c.ExpiresAt.Add(365 * 24 * time.Hour)
		forged := reseal(t, c)
		for _, at := range []time.Duration{time.Hour, 72 * time.Hour} {
			_, err := v.CheckCredentials(ctx, forged, t0.Add(at))
			wantInvalid(t, fmt.Sprintf("file with a later expires_at at %v", at), err)
			_, _, err = vault.ValidateCredentials(ctx, forged, t0.Add(at), a.Options)
			wantInvalid(t, fmt.Sprintf("file with a later expires_at via ValidateCredentials at %v", at), err)
		}
		// The file as issued still expires on the record's time.
		if _, err := v.CheckCredentials(ctx, file, t0.Add(72*time.Hour)); !errors.Is(err, vault.ErrCredentialsExpired) {
			t.Errorf("file as issued at 72 h: %v, want %q", err, expiredText)
		}
	})
}

// TestCredentialsForgedIssueRecords: issue records written by someone with
// the vault's S3 keys neither revive nor stretch a file.
func TestCredentialsForgedIssueRecords(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "records", Replication: vault.LRS})
		file := mustIssue(t, v, vault.AccessKeys{}, t0)
		c, err := vault.ParseCredentials(file)
		if err != nil {
			t.Fatal(err)
		}

		// A record older than the newest, for a file made to match it.
		late := *c
		late.IssuedAt, late.ExpiresAt = t0.Add(24*time.Hour), t0.Add(72*time.Hour)
		lateFile := reseal(t, &late)
		saveRecord(t, v, 0, vault.CredentialsIssue{Serial: late.Serial, IssuedAt: late.IssuedAt, ExpiresAt: late.ExpiresAt, FileChecksum: late.Checksum})
		_, err = v.CheckCredentials(ctx, lateFile, t0.Add(60*time.Hour))
		wantInvalid(t, "file of a record older than the newest", err)
		if _, err := v.CheckCredentials(ctx, file, t0.Add(time.Hour)); err != nil {
			t.Errorf("file as issued, with an older forged record: %v", err)
		}

		// The newest record copied as the next one, dated a day later:
		// the file's checksum covers its issue time, so the copy is seen.
		saveRecord(t, v, 2, vault.CredentialsIssue{Serial: c.Serial, IssuedAt: t0.Add(24 * time.Hour), FileChecksum: c.Checksum})
		for _, at := range []time.Duration{time.Hour, 60 * time.Hour} {
			_, err = v.CheckCredentials(ctx, file, t0.Add(at))
			wantInvalid(t, fmt.Sprintf("record copied with a later date, at %v", at), err)
		}

		// A file and record dated a year ahead (what issuing with a wrong
		// clock would give) are refused until that time is near.
		ahead := *c
		ahead.IssuedAt, ahead.ExpiresAt = t0.Add(365*24*time.Hour), t0.Add(367*24*time.Hour)
		aheadFile := reseal(t, &ahead)
		saveRecord(t, v, 3, vault.CredentialsIssue{Serial: ahead.Serial, IssuedAt: ahead.IssuedAt, FileChecksum: ahead.Checksum})
		_, err = v.CheckCredentials(ctx, aheadFile, t0.Add(time.Hour))
		wantInvalid(t, "record dated a year ahead", err)
		if err == nil || !strings.Contains(err.Error(), "check both clocks") {
			t.Errorf("record dated a year ahead: %v, want a hint about the clocks", err)
		}
		// Five minutes of clock difference are allowed.
		if _, err := v.CheckCredentials(ctx, aheadFile, ahead.IssuedAt.Add(-5*time.Minute)); err != nil {
			t.Errorf("record 5 minutes ahead of the clock: %v, want valid", err)
		}
		_, err = v.CheckCredentials(ctx, aheadFile, ahead.IssuedAt.Add(-5*time.Minute-time.Second))
		wantInvalid(t, "record 5 minutes 1 second ahead of the clock", err)
	})
}

// TestCredentialsTamperedSecret: a changed secret, even with a fixed
// checksum, makes the file invalid; a file without one is refused offline.
func TestCredentialsTamperedSecret(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "secret", Replication: vault.LRS})
		c, err := vault.ParseCredentials(mustIssue(t, v, vault.AccessKeys{}, t0))
		if err != nil {
			t.Fatal(err)
		}
		c.Secret = strings.Repeat("0", 64)
		_, err = v.CheckCredentials(ctx, reseal(t, c), t0)
		wantInvalid(t, "other secret", err)
		c.Secret = ""
		_, err = vault.ParseCredentials(reseal(t, c))
		wantInvalid(t, "no secret", err)
	})
}

// TestCredentialsVaultOfEarlierVersion: a vault made by an earlier version
// has a credentials/signing-key object and records without file_checksum,
// and its files are signed (format 1). Such a file is refused with what to
// do; the vault itself issues and validates new files, with or without the
// old signing key.
func TestCredentialsVaultOfEarlierVersion(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "older", Replication: vault.LRS})
		key := bytes.Repeat([]byte{7}, 32)
		for _, cp := range v.Copies() {
			if err := cp.Save(ctx, "credentials/signing-key", bytes.NewReader(key), int64(len(key))); err != nil {
				t.Fatal(err)
			}
		}
		serial := strings.Repeat("ab", 16)
		saveRecord(t, v, 1, vault.CredentialsIssue{Serial: serial, IssuedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)})
		old := fmt.Sprintf(`{
  "format": "tapeless-vault-credentials/1",
  "vault": "older",
  "replication": "LRS",
  "primary_url": %q,
  "serial": %q,
  "issued_at": "2026-11-26T06:00:00Z",
  "expires_at": "2026-11-28T06:00:00Z",
  "checksum": "%s",
  "signature": "%s"
}
`, v.Config.PrimaryURL, serial, strings.Repeat("1", 64), strings.Repeat("2", 64))
		_, err := v.CheckCredentials(ctx, []byte(old), t0.Add(time.Hour))
		wantInvalid(t, "file of format 1", err)
		if err == nil || !strings.Contains(err.Error(), "earlier tapeless version") ||
			!strings.Contains(err.Error(), "tapeless vault credentials older --url "+v.Config.PrimaryURL) {
			t.Errorf("file of format 1: %v, want why and how to get a new one", err)
		}

		file := mustIssue(t, v, vault.AccessKeys{}, t0.Add(time.Hour))
		if _, err := v.CheckCredentials(ctx, file, t0.Add(2*time.Hour)); err != nil {
			t.Errorf("new file on a vault of an earlier version: %v", err)
		}
		for _, cp := range v.Copies() {
			if err := cp.Remove(ctx, "credentials/signing-key"); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := vault.ValidateCredentials(ctx, file, t0.Add(2*time.Hour), a.Options); err != nil {
			t.Errorf("after removing the old signing key: %v", err)
		}
		next := mustIssue(t, v, vault.AccessKeys{}, t0.Add(3*time.Hour))
		_, w, err := vault.ValidateCredentials(ctx, next, t0.Add(3*time.Hour), a.Options)
		if err != nil {
			t.Fatalf("issue after removing the old signing key: %v", err)
		}
		defer w.Close()
		st, err := w.Status(ctx, t0.Add(3*time.Hour))
		if err != nil || !st.IssueValid || !st.LatestIssue.ExpiresAt.Equal(t0.Add(51*time.Hour)) {
			t.Errorf("Status = %+v, %v", st, err)
		}
	})
}

// emptyListing is a real backend whose listings come back empty.
type emptyListing struct{ storage.Backend }

func (emptyListing) List(context.Context, string, func(storage.Info) error) error { return nil }

// A credentials listing that comes back empty must not make a superseded
// file valid again (nor lose the newest record).
func TestCredentialsShortListingKeepsNewest(t *testing.T) {
	forKinds(t, func(t *testing.T, k kind) {
		ctx := context.Background()
		a := k.account(t, "primary")
		v := mustCreate(t, a, vault.CreateVaultOptions{Name: "listing", Replication: vault.LRS})
		first := mustIssue(t, v, vault.AccessKeys{}, t0)
		second := mustIssue(t, v, vault.AccessKeys{}, t0)
		defer storage.SetOpenHookForTesting(func(url string, b storage.Backend) storage.Backend { return emptyListing{b} })()
		_, _, err := vault.ValidateCredentials(ctx, first, t0.Add(time.Second), a.Options)
		wantInvalid(t, "first of two issues, listings empty", err)
		_, w, err := vault.ValidateCredentials(ctx, second, t0.Add(time.Second), a.Options)
		if err != nil {
			t.Fatalf("second of two issues with empty listings: %v", err)
		}
		defer w.Close()
		rec, err := w.LatestCredentialsIssue(ctx)
		if err != nil || rec == nil || rec.Serial == "" {
			t.Fatalf("LatestCredentialsIssue with empty listings = %+v, %v", rec, err)
		}
	})
}
