package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// Registration is a registration record (servers/<server>-<time>.json):
// which server registered to the vault, when, and with which key pair.
// It holds no secret.
type Registration struct {
	Server         string    `json:"server"`
	RegisteredAt   time.Time `json:"registered_at"`
	KeyFingerprint string    `json:"key_fingerprint"`
	// CredentialsSerial is the serial of the credentials file used.
	CredentialsSerial string `json:"credentials_serial,omitempty"`
	Version           string `json:"version,omitempty"` // tapeless version
	// TakeOver marks a registration that continues an earlier server of
	// the same name and key on a new machine (disaster recovery): the
	// earlier records of that name are replaced by it.
	TakeOver bool `json:"take_over,omitempty"`
}

// CurrentRegistrations returns the newest registration of every server
// name (names compared without case), oldest first, and the earlier ones
// those replaced. regs is in Registrations order.
func CurrentRegistrations(regs []Registration) (current, replaced []Registration) {
	newest := map[string]int{}
	for i, r := range regs {
		newest[strings.ToLower(r.Server)] = i
	}
	for i, r := range regs {
		if newest[strings.ToLower(r.Server)] == i {
			current = append(current, r)
		} else {
			replaced = append(replaced, r)
		}
	}
	return current, replaced
}

// ServerKey returns the key fingerprint of the current registration of
// server, or an error naming the registered servers.
func ServerKey(regs []Registration, server string) (Registration, error) {
	current, _ := CurrentRegistrations(regs)
	var names []string
	for _, r := range current {
		if strings.EqualFold(r.Server, server) {
			return r, nil
		}
		names = append(names, r.Server)
	}
	if len(names) == 0 {
		return Registration{}, fmt.Errorf("no server %q is registered to this vault (none is)", server)
	}
	return Registration{}, fmt.Errorf("no server %q is registered to this vault; registered: %s", server, strings.Join(names, ", "))
}

// ValidateServerName checks a server name used in object names: 1–63
// letters, digits, dots, hyphens or underscores, starting with a letter or
// digit (host names fit).
func ValidateServerName(s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("invalid server name %q: it must have 1 to 63 characters", s)
	}
	for i, r := range s {
		ok := isASCIILetter(r) || (r >= '0' && r <= '9') || (i > 0 && (r == '.' || r == '-' || r == '_'))
		if !ok {
			return fmt.Errorf("invalid server name %q: use letters, digits, dots, hyphens and underscores, starting with a letter or digit", s)
		}
	}
	return nil
}

// checkFingerprint keeps a key fingerprint usable as one name element.
func checkFingerprint(fp string) error {
	if fp == "" || len(fp) > 128 || strings.ContainsAny(fp, "/\\\x00") || fp == "." || fp == ".." {
		return fmt.Errorf("invalid key fingerprint %q", fp)
	}
	return nil
}

// Register writes a registration record to every copy of the vault.
func (v *Vault) Register(ctx context.Context, r Registration) error {
	if err := ValidateServerName(r.Server); err != nil {
		return err
	}
	if err := checkFingerprint(r.KeyFingerprint); err != nil {
		return err
	}
	r.RegisteredAt = r.RegisteredAt.UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	name := VaultServersPrefix + r.Server + "-" + r.RegisteredAt.Format("20060102T150405.000000000Z") + ".json"
	if err := v.saveAll(ctx, name, b); err != nil {
		return fmt.Errorf("record registration of %s in vault %q: %w", r.Server, v.Name(), err)
	}
	return nil
}

// Registrations returns every registration record, oldest first.
func (v *Vault) Registrations(ctx context.Context) ([]Registration, error) {
	var names []string
	if err := v.primary.List(ctx, VaultServersPrefix, func(i storage.Info) error {
		if strings.HasSuffix(i.Name, ".json") {
			names = append(names, i.Name)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list registrations of vault %q: %w", v.Name(), err)
	}
	var out []Registration
	for _, n := range names {
		b, err := loadBytes(ctx, v.primary, n)
		if err != nil {
			return nil, fmt.Errorf("read registration %s: %w", n, err)
		}
		var r Registration
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("parse registration %s: %w", n, err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RegisteredAt.Before(out[j].RegisteredAt) })
	return out, nil
}

// Key envelopes: keys/<fingerprint>/<seq>. The envelope wraps the private
// key under the passphrase; changing the passphrase writes the next
// sequence number and then removes the older ones where the storage allows
// it (object lock keeps them until their retention ends).

// SaveKeyEnvelope stores env as the newest envelope of key fp on every copy
// and returns its sequence number.
func (v *Vault) SaveKeyEnvelope(ctx context.Context, fp string, env []byte) (uint64, error) {
	if err := checkFingerprint(fp); err != nil {
		return 0, err
	}
	dir := VaultKeysPrefix + fp + "/"
	_, seq, _, err := newestSeq(ctx, v.primary, dir, "")
	if err != nil {
		return 0, err
	}
	seq++
	if err := v.saveAll(ctx, seqName(dir, seq, ""), env); err != nil {
		return 0, fmt.Errorf("store key envelope in vault %q: %w", v.Name(), err)
	}
	return seq, nil
}

// LoadKeyEnvelope returns the newest envelope of key fp, or an error
// wrapping ErrNotFound.
func (v *Vault) LoadKeyEnvelope(ctx context.Context, fp string) ([]byte, uint64, error) {
	if err := checkFingerprint(fp); err != nil {
		return nil, 0, err
	}
	name, seq, found, err := newestSeq(ctx, v.primary, VaultKeysPrefix+fp+"/", "")
	if err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, fmt.Errorf("no key envelope for key %s in vault %q: %w", fp, v.Name(), storage.ErrNotFound)
	}
	b, err := loadBytes(ctx, v.primary, name)
	if err != nil {
		return nil, 0, fmt.Errorf("read key envelope %s: %w", name, err)
	}
	return b, seq, nil
}

// KeyFingerprints lists the keys that have an envelope in the vault.
func (v *Vault) KeyFingerprints(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := v.primary.List(ctx, VaultKeysPrefix, func(i storage.Info) error {
		fp, _, ok := strings.Cut(strings.TrimPrefix(i.Name, VaultKeysPrefix), "/")
		if ok && !seen[fp] {
			seen[fp] = true
			out = append(out, fp)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys of vault %q: %w", v.Name(), err)
	}
	return out, nil
}

// RemoveOldKeyEnvelopes removes every envelope of key fp older than keep,
// on every copy. It tries them all and returns the names it could not
// remove (object lock, permissions) with the joined errors.
func (v *Vault) RemoveOldKeyEnvelopes(ctx context.Context, fp string, keep uint64) ([]string, error) {
	if err := checkFingerprint(fp); err != nil {
		return nil, err
	}
	dir := VaultKeysPrefix + fp + "/"
	var left []string
	var errs []error
	for _, c := range v.Copies() {
		var old []string
		if err := c.List(ctx, dir, func(i storage.Info) error {
			if i.Name < seqName(dir, keep, "") {
				old = append(old, i.Name)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list key envelopes of vault %q: %w", v.Name(), err)
		}
		for _, n := range old {
			if err := c.Remove(ctx, n); err != nil && !errors.Is(err, storage.ErrNotFound) {
				left = append(left, c.Location()+"/"+n)
				errs = append(errs, err)
			}
		}
	}
	return left, errors.Join(errs...)
}

// VaultStatus summarises a vault for `tapeless vault status`.
type VaultStatus struct {
	Config       VaultConfig
	Servers      []Registration
	LatestIssue  *CredentialsIssue // nil: no credentials file issued yet
	IssueValid   bool              // the newest file is still within 48 h
	HasPoints    bool
	KeyEnvelopes int
	SecondaryOK  bool  // GRS: the secondary copy answered and has the same config
	SecondaryErr error // why not
	CheckedAt    time.Time
}

// Status reads the vault's state at now.
func (v *Vault) Status(ctx context.Context, now time.Time) (*VaultStatus, error) {
	s := &VaultStatus{Config: v.Config, CheckedAt: now.UTC()}
	var err error
	if s.Servers, err = v.Registrations(ctx); err != nil {
		return nil, err
	}
	if s.LatestIssue, err = v.LatestCredentialsIssue(ctx); err != nil {
		return nil, err
	}
	s.IssueValid = s.LatestIssue != nil && now.Before(s.LatestIssue.ExpiresAt)
	if s.HasPoints, err = v.HasPoints(ctx); err != nil {
		return nil, err
	}
	fps, err := v.KeyFingerprints(ctx)
	if err != nil {
		return nil, err
	}
	s.KeyEnvelopes = len(fps)
	if v.secondary != nil {
		cfg, err := readConfig(ctx, v.secondary)
		switch {
		case err != nil:
			s.SecondaryErr = err
		case cfg.Seq != v.Config.Seq:
			s.SecondaryErr = fmt.Errorf("the secondary copy has config %d, the primary %d", cfg.Seq, v.Config.Seq)
		default:
			s.SecondaryOK = true
		}
	}
	return s, nil
}
