package vault

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// sealedCredentials encodes c with its checksum, as IssueCredentials does.
func sealedCredentials(tb testing.TB, c Credentials) []byte {
	tb.Helper()
	content, err := c.checkedContent()
	if err != nil {
		tb.Fatal(err)
	}
	c.Checksum = hexSHA256(content)
	b, err := c.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzParseCredentials: whatever ParseCredentials accepts is the canonical
// encoding of what it returns, with a checksum that matches and a valid
// vault name and secret; nothing else is accepted.
func FuzzParseCredentials(f *testing.F) {
	issued := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := Credentials{
		Format: CredentialsFormat, Vault: "offsite", Replication: GRS,
		PrimaryURL: "s3://a.example/bucket", SecondaryURL: "s3://b.example/bucket", ImmutableDays: 30,
		AccessKey: "AK", SecretKey: "SK", Serial: "0001",
		Secret:   hex.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		IssuedAt: issued, ExpiresAt: issued.Add(CredentialsValidity),
	}
	f.Add(sealedCredentials(f, base))
	lrs := base
	lrs.Replication, lrs.SecondaryURL, lrs.AccessKey, lrs.SecretKey = LRS, "", "", ""
	f.Add(sealedCredentials(f, lrs))
	f.Add([]byte(`{"format":"tapeless-vault-credentials/1","vault":"v","primary_url":"file:///x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data)
		if err != nil {
			return
		}
		enc, err := c.Encode()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("accepted a file that is not the canonical encoding (%v):\n%s\n%s", err, data, enc)
		}
		content, err := c.checkedContent()
		if err != nil || hexSHA256(content) != c.Checksum {
			t.Fatalf("accepted a file whose checksum does not match")
		}
		if ValidateVaultName(c.Vault) != nil || len(c.Secret) != 64 || c.Format != CredentialsFormat {
			t.Fatalf("accepted invalid credentials %+v", c)
		}
		if again, err := ParseCredentials(enc); err != nil || *again != *c {
			t.Fatalf("re-encoded credentials do not parse to the same: %v", err)
		}
	})
}
