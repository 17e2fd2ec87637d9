package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// CredentialsValidity is how long a vault credentials file is valid after
// it is issued.
const CredentialsValidity = 48 * time.Hour

// CredentialsFormat marks a vault credentials file and its version.
const CredentialsFormat = "tapeless-vault-credentials/2"

// credentialsFormatV1 is the signed format of earlier versions; such files
// are refused with a hint to issue a new one (they lived 48 h at most).
const credentialsFormatV1 = "tapeless-vault-credentials/1"

// issueClockSkew is how far in the future of the validating computer's
// clock an issue record may be dated: the issuer's clock may run a little
// ahead. A record dated further ahead would stretch the 48 hours.
const issueClockSkew = 5 * time.Minute

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
// a server needs to reach the vault and a random secret. The vault's issue
// record holds only the file's checksum, which covers the secret, so the
// vault holds nothing from which a file could be made, and the record, not
// the file, says when the file was issued. The file is the canonical JSON
// encoding of this struct (two-space indent, trailing newline); any other
// byte sequence is refused, so no change can slip past the checksum through
// JSON leniency.
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
	SecondaryAccessKey string `json:"secondary_access_key,omitempty"`
	SecondarySecretKey string `json:"secondary_secret_key,omitempty"`
	Serial             string `json:"serial"`
	// Secret is 32 random bytes in hex. It is in the file only: the issue
	// record stores the checksum over it, from which it cannot be had.
	Secret   string    `json:"secret"`
	IssuedAt time.Time `json:"issued_at"`
	// ExpiresAt is IssuedAt + 48 h, for the reader; validation takes the
	// window from the vault's issue record.
	ExpiresAt time.Time `json:"expires_at"`
	// Checksum is SHA-256 over the canonical content without Checksum: it
	// finds corruption offline, and the issue record holds it, so a file
	// changed in any way (and checksummed again) no longer matches.
	Checksum string `json:"checksum"`
}

// CredentialsIssue is an issue record (credentials/<seq>.json). Only the
// newest record is valid, which is how a new file supersedes all earlier
// ones; the file it names is valid for CredentialsValidity from IssuedAt.
type CredentialsIssue struct {
	Serial   string    `json:"serial"`
	IssuedAt time.Time `json:"issued_at"`
	// ExpiresAt is stored for readers of the record; LatestCredentialsIssue
	// sets it to IssuedAt + CredentialsValidity whatever the object says.
	ExpiresAt time.Time `json:"expires_at"`
	// FileChecksum is the issued file's Checksum. Records written by
	// earlier versions (signed files) have none.
	FileChecksum string `json:"file_checksum,omitempty"`
	Seq          uint64 `json:"-"`
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

// checkedContent is the canonical content covered by the checksum.
func (c Credentials) checkedContent() ([]byte, error) {
	c.Checksum = ""
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

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCredentialsInvalid, fmt.Sprintf(format, a...))
}

// ParseCredentials decodes a credentials file and checks, offline, that it
// is the canonical encoding with a matching checksum. Every failure wraps
// ErrCredentialsInvalid. It does not check the issue record or the expiry:
// those need the vault (see ValidateCredentials).
func ParseCredentials(data []byte) (*Credentials, error) {
	var head struct {
		Format string `json:"format"`
		Vault  string `json:"vault"`
		URL    string `json:"primary_url"`
	}
	if json.Unmarshal(data, &head) == nil && head.Format == credentialsFormatV1 {
		return nil, invalid("the file is of the signed format %s of an earlier tapeless version, which this one no longer accepts: issue a new one with 'tapeless vault credentials %s --url %s'", credentialsFormatV1, head.Vault, head.URL)
	}
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
	content, err := c.checkedContent()
	if err != nil {
		return nil, invalid("the file is corrupted")
	}
	if hexSHA256(content) != c.Checksum {
		return nil, invalid("the file was modified or corrupted (checksum mismatch)")
	}
	if err := ValidateVaultName(c.Vault); err != nil {
		return nil, invalid("%v", err)
	}
	if b, err := hex.DecodeString(c.Secret); err != nil || len(b) != 32 || hex.EncodeToString(b) != c.Secret {
		return nil, invalid("the file has no valid secret")
	}
	return &c, nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// IssueCredentials writes a new issue record, which supersedes every file
// issued before, and returns the new file's content. keys, when not empty,
// are copied into the file for the registering server.
func (v *Vault) IssueCredentials(ctx context.Context, keys AccessKeys, now time.Time) (*Credentials, []byte, error) {
	serial, err := randomBytes(16)
	if err != nil {
		return nil, nil, err
	}
	secret, err := randomBytes(32)
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
		Secret:        hex.EncodeToString(secret),
		IssuedAt:      issued,
		ExpiresAt:     issued.Add(CredentialsValidity),
	}
	if v.Config.Replication == GRS {
		// An LRS vault has no second copy to reach: keys for it would
		// only be one more secret in the file.
		c.SecondaryAccessKey, c.SecondarySecretKey = keys.SecondaryAccessKey, keys.SecondarySecretKey
	}
	content, err := c.checkedContent()
	if err != nil {
		return nil, nil, err
	}
	c.Checksum = hexSHA256(content)
	file, err := c.Encode()
	if err != nil {
		return nil, nil, err
	}

	rec := CredentialsIssue{Serial: c.Serial, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, FileChecksum: c.Checksum}
	recb, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	// The record must be stored before the file is handed out: it is what
	// makes the file valid and every earlier one invalid. Two issuers racing
	// for one sequence number: the loser's Save fails with ErrExists and it
	// takes the next number.
	for attempt := 0; ; attempt++ {
		_, seq, _, err := newestSeq(ctx, v.primary, VaultCredentialsPrefix, ".json")
		if err != nil {
			return nil, nil, err
		}
		name := seqName(VaultCredentialsPrefix, seq+1, ".json")
		err = saveBytes(ctx, v.primary, name, recb)
		if errors.Is(err, storage.ErrExists) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("record credentials issue in vault %q: %w", v.Name(), err)
		}
		if v.secondary != nil {
			if err := saveBytes(ctx, v.secondary, name, recb); err != nil && !errors.Is(err, storage.ErrExists) {
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
	name, seq, found, err := newestSeq(ctx, v.primary, VaultCredentialsPrefix, ".json")
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
	// The window follows from the issue time alone, never from a stored
	// end that could say otherwise.
	rec.ExpiresAt = rec.IssuedAt.Add(CredentialsValidity)
	return &rec, nil
}

// CheckCredentials validates a credentials file against this vault at now:
// parse and checksum → vault name → newest issue record (same serial, same
// checksum, same issue time) → expiry, 48 h from the record's issue time.
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
	latest, err := v.LatestCredentialsIssue(ctx)
	if err != nil {
		return err
	}
	if latest == nil {
		return invalid("vault %q at %s has no record of issuing this file (issued by another vault of that name?)", v.Name(), v.Config.PrimaryURL)
	}
	if latest.Serial != c.Serial {
		return invalid("a newer credentials file was issued at %s, which replaces this one", latest.IssuedAt.Format(time.RFC3339))
	}
	// The checksum covers the secret and every field, so only the very file
	// that was issued matches; the record alone does not give the secret.
	if subtle.ConstantTimeCompare([]byte(latest.FileChecksum), []byte(c.Checksum)) != 1 {
		return invalid("the file does not match vault %q's record of issuing it (changed after issue, or issued by another vault)", v.Name())
	}
	// The record's issue time is the one the checksum was made over: a
	// copy of the record dated later does not stretch the window.
	if !latest.IssuedAt.Equal(c.IssuedAt) {
		return invalid("vault %q's issue record is dated %s, the file %s: the record was altered", v.Name(), latest.IssuedAt.Format(time.RFC3339), c.IssuedAt.Format(time.RFC3339))
	}
	if latest.IssuedAt.After(now.Add(issueClockSkew)) {
		return invalid("the file was issued at %s, later than this computer's time %s: check both clocks, or issue a new file", latest.IssuedAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Before(latest.ExpiresAt) {
		return fmt.Errorf("%w - issue a new one with 'tapeless vault credentials %s --url %s'", ErrCredentialsExpired, c.Vault, c.PrimaryURL)
	}
	return nil
}

// ValidateCredentials checks a credentials file completely: offline parse
// and checksum, then it opens the vault the file names (with the file's
// access keys when it has them, else o's; o also gives the proxy) and
// checks it against the newest issue record and the expiry at now. On
// success the open vault is returned and the caller closes it.
func ValidateCredentials(ctx context.Context, data []byte, now time.Time, o storage.Options) (*Credentials, *Vault, error) {
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
func (c *Credentials) Options(base storage.Options) storage.Options {
	if c.AccessKey != "" || c.SecretKey != "" {
		base.AccessKey, base.SecretKey = c.AccessKey, c.SecretKey
	}
	return base
}

// SecondaryOptions returns base with the file's secondary keys filled in,
// or nil when the file carries none: the GRS copy is then reached with the
// primary's keys (see OpenVault).
func (c *Credentials) SecondaryOptions(base storage.Options) *storage.Options {
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
