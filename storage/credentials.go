package storage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CredentialsValidity is how long a vault credentials file is valid after
// it is issued.
const CredentialsValidity = 48 * time.Hour

// CredentialsFormat marks a vault credentials file and its version.
const CredentialsFormat = "tapeless-vault-credentials/1"

// CredentialsFileExt is the extension of a vault credentials file.
const CredentialsFileExt = ".VaultCredentials"

// credError is a sentinel whose text is fixed by the reference product, so
// it keeps its capital letter.
type credError string

func (e credError) Error() string { return string(e) }

// Errors of credentials validation. Their texts are the reference
// product's and scripts match them exactly; wrapped errors add a hint after
// " - " or ": ".
var (
	// ErrCredentialsExpired means the file is older than CredentialsValidity.
	ErrCredentialsExpired error = credError("Vault credentials file provided has expired")
	// ErrCredentialsInvalid means the file is superseded by a newer one,
	// corrupted, tampered with, or belongs to another vault.
	ErrCredentialsInvalid error = credError("Invalid vault credentials provided")
)

// Credentials is the content of a vault credentials file. It carries what
// a server needs to reach the vault and a signature made with the vault's
// signing key. The file is the canonical JSON encoding of this struct
// (two-space indent, trailing newline); any other byte sequence is refused,
// so no change can slip past the checksum through JSON leniency.
type Credentials struct {
	Format        string      `json:"format"`
	Vault         string      `json:"vault"`
	Replication   Replication `json:"replication"`
	PrimaryURL    string      `json:"primary_url"`
	SecondaryURL  string      `json:"secondary_url,omitempty"`
	ImmutableDays int         `json:"immutable_days,omitempty"`
	// AccessKey and SecretKey are present when the issuer supplied them.
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	// SecondaryAccessKey and SecondarySecretKey are the GRS copy's keys,
	// present when the issuer gave keys that differ from the primary's.
	SecondaryAccessKey string    `json:"secondary_access_key,omitempty"`
	SecondarySecretKey string    `json:"secondary_secret_key,omitempty"`
	Serial             string    `json:"serial"`
	IssuedAt           time.Time `json:"issued_at"`
	ExpiresAt          time.Time `json:"expires_at"`
	// Checksum is SHA-256 over the canonical content without Checksum and
	// Signature: it finds corruption offline, before any network access.
	Checksum string `json:"checksum"`
	// Signature is HMAC-SHA256 over the same bytes with the vault's
	// signing key: only someone with access to the vault can issue a file.
	Signature string `json:"signature"`
}

// CredentialsIssue is an issue record (credentials/<seq>.json). Only the
// newest record's serial is valid, which is how a new file supersedes all
// earlier ones.
type CredentialsIssue struct {
	Serial    string    `json:"serial"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Seq       uint64    `json:"-"`
}

// AccessKeys are S3 keys an issuer puts into a credentials file: the
// primary's and, when the GRS copy needs other keys, the secondary's.
type AccessKeys struct {
	AccessKey, SecretKey                   string
	SecondaryAccessKey, SecondarySecretKey string
}

// CredentialsFileName is the default file name: NAME_YYYY-MM-DD.VaultCredentials
// with the issue date in UTC.
func CredentialsFileName(vault string, issued time.Time) string {
	return vault + "_" + issued.UTC().Format("2006-01-02") + CredentialsFileExt
}

// signedContent is the canonical content covered by checksum and signature.
func (c Credentials) signedContent() ([]byte, error) {
	c.Checksum, c.Signature = "", ""
	return json.Marshal(c)
}

// Encode returns the canonical file bytes.
func (c *Credentials) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Expired reports whether the file is expired at now: valid strictly before
// ExpiresAt.
func (c *Credentials) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCredentialsInvalid, fmt.Sprintf(format, a...))
}

// ParseCredentials decodes a credentials file and checks, offline, that it
// is the canonical encoding with a matching checksum. Every failure wraps
// ErrCredentialsInvalid. It does not check the signature, the serial or
// the expiry: those need the vault (see ValidateCredentials).
func ParseCredentials(data []byte) (*Credentials, error) {
	var c Credentials
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("the file is not a tapeless vault credentials file or is corrupted")
	}
	if c.Format != CredentialsFormat {
		return nil, invalid("unknown format %q (want %s)", c.Format, CredentialsFormat)
	}
	canon, err := c.Encode()
	if err != nil || !bytes.Equal(canon, data) {
		return nil, invalid("the file was modified or corrupted")
	}
	content, err := c.signedContent()
	if err != nil {
		return nil, invalid("the file is corrupted")
	}
	sum := sha256.Sum256(content)
	if !hmac.Equal([]byte(hex.EncodeToString(sum[:])), []byte(c.Checksum)) {
		return nil, invalid("the file was modified or corrupted (checksum mismatch)")
	}
	if err := ValidateVaultName(c.Vault); err != nil {
		return nil, invalid("%v", err)
	}
	return &c, nil
}

// IssueCredentials writes a new issue record, which supersedes every file
// issued before, and returns the new file's content. keys, when not empty,
// are copied into the file for the registering server.
func (v *Vault) IssueCredentials(ctx context.Context, keys AccessKeys, now time.Time) (*Credentials, []byte, error) {
	key, err := v.signingKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomBytes(16)
	if err != nil {
		return nil, nil, err
	}
	issued := now.UTC()
	c := &Credentials{
		Format:        CredentialsFormat,
		Vault:         v.Name(),
		Replication:   v.Config.Replication,
		PrimaryURL:    v.Config.PrimaryURL,
		SecondaryURL:  v.Config.SecondaryURL,
		ImmutableDays: v.Config.ImmutableDays,
		AccessKey:     keys.AccessKey,
		SecretKey:     keys.SecretKey,
		Serial:        hex.EncodeToString(serial),
		IssuedAt:      issued,
		ExpiresAt:     issued.Add(CredentialsValidity),
	}
	if v.Config.Replication == GRS {
		// An LRS vault has no second copy to reach: keys for it would
		// only be one more secret in the file.
		c.SecondaryAccessKey, c.SecondarySecretKey = keys.SecondaryAccessKey, keys.SecondarySecretKey
	}
	content, err := c.signedContent()
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(content)
	c.Checksum = hex.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, key)
	mac.Write(content)
	c.Signature = hex.EncodeToString(mac.Sum(nil))
	file, err := c.Encode()
	if err != nil {
		return nil, nil, err
	}

	rec := CredentialsIssue{Serial: c.Serial, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}
	recb, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	// The record must be stored before the file is handed out: it is what
	// makes the file valid and every earlier one invalid. Two issuers racing
	// for one sequence number: the loser's Save fails with ErrExists and it
	// takes the next number.
	for attempt := 0; ; attempt++ {
		_, seq, _, err := newestSeq(ctx, v.primary, VaultCredentialsPrefix)
		if err != nil {
			return nil, nil, err
		}
		name := seqName(VaultCredentialsPrefix, seq+1, ".json")
		err = saveBytes(ctx, v.primary, name, recb)
		if errors.Is(err, ErrExists) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("record credentials issue in vault %q: %w", v.Name(), err)
		}
		if v.secondary != nil {
			if err := saveBytes(ctx, v.secondary, name, recb); err != nil && !errors.Is(err, ErrExists) {
				return nil, nil, fmt.Errorf("record credentials issue in the secondary copy of vault %q: %w", v.Name(), err)
			}
		}
		break
	}
	return c, file, nil
}

// LatestCredentialsIssue returns the newest issue record, or nil when no
// file was ever issued.
func (v *Vault) LatestCredentialsIssue(ctx context.Context) (*CredentialsIssue, error) {
	name, seq, found, err := newestSeq(ctx, v.primary, VaultCredentialsPrefix)
	if err != nil || !found {
		return nil, err
	}
	b, err := loadBytes(ctx, v.primary, name)
	if err != nil {
		return nil, fmt.Errorf("read credentials issue record: %w", err)
	}
	var rec CredentialsIssue
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("parse credentials issue record %s: %w", name, err)
	}
	rec.Seq = seq
	return &rec, nil
}

func (v *Vault) signingKey(ctx context.Context) ([]byte, error) {
	key, err := loadBytes(ctx, v.primary, signingKeyName)
	if err != nil {
		return nil, fmt.Errorf("read the credentials signing key of vault %q: %w", v.Name(), err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("the credentials signing key of vault %q is damaged (%d bytes)", v.Name(), len(key))
	}
	return key, nil
}

// CheckCredentials validates a credentials file against this vault at now:
// parse and checksum → vault name → signature → newest issue → expiry.
// Failures wrap ErrCredentialsInvalid or ErrCredentialsExpired.
func (v *Vault) CheckCredentials(ctx context.Context, data []byte, now time.Time) (*Credentials, error) {
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, err
	}
	return c, v.checkParsed(ctx, c, now)
}

func (v *Vault) checkParsed(ctx context.Context, c *Credentials, now time.Time) error {
	if !strings.EqualFold(c.Vault, v.Name()) {
		return invalid("the file is for vault %q, not %q", c.Vault, v.Name())
	}
	key, err := v.signingKey(ctx)
	if err != nil {
		return err
	}
	content, err := c.signedContent()
	if err != nil {
		return invalid("the file is corrupted")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(content)
	// Compare the hex text, not decoded bytes: hex decoding ignores letter
	// case, and a changed byte must never pass.
	if !hmac.Equal([]byte(c.Signature), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return invalid("the signature does not match vault %q at %s (tampered, or issued by another vault)", v.Name(), v.Config.PrimaryURL)
	}
	latest, err := v.LatestCredentialsIssue(ctx)
	if err != nil {
		return err
	}
	if latest == nil || latest.Serial != c.Serial {
		when := ""
		if latest != nil {
			when = " at " + latest.IssuedAt.Format(time.RFC3339)
		}
		return invalid("a newer credentials file was issued%s, which replaces this one", when)
	}
	if c.Expired(now) {
		return fmt.Errorf("%w - issue a new one with 'tapeless vault credentials %s --url %s'", ErrCredentialsExpired, c.Vault, c.PrimaryURL)
	}
	return nil
}

// ValidateCredentials checks a credentials file completely: offline parse
// and checksum, then it opens the vault the file names (with the file's
// access keys when it has them, else o's; o also gives the proxy) and
// checks signature, supersession and expiry at now. On success the open
// vault is returned and the caller closes it.
func ValidateCredentials(ctx context.Context, data []byte, now time.Time, o Options) (*Credentials, *Vault, error) {
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, nil, err
	}
	v, err := OpenVault(ctx, Account{URL: c.PrimaryURL, Options: c.Options(o)}, c.Vault, c.SecondaryOptions(o))
	if errors.Is(err, ErrVaultNotFound) {
		return nil, nil, invalid("%v", err)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := v.checkParsed(ctx, c, now); err != nil {
		v.Close()
		return nil, nil, err
	}
	return c, v, nil
}

// Options returns base with the file's access keys filled in when the file
// carries them.
func (c *Credentials) Options(base Options) Options {
	if c.AccessKey != "" || c.SecretKey != "" {
		base.AccessKey, base.SecretKey = c.AccessKey, c.SecretKey
	}
	return base
}

// SecondaryOptions returns base with the file's secondary keys filled in,
// or nil when the file carries none: the GRS copy is then reached with the
// primary's keys (see OpenVault).
func (c *Credentials) SecondaryOptions(base Options) *Options {
	if c.SecondaryAccessKey == "" && c.SecondarySecretKey == "" {
		return nil
	}
	base.AccessKey, base.SecretKey = c.SecondaryAccessKey, c.SecondarySecretKey
	return &base
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random bytes: %w", err)
	}
	return b, nil
}
