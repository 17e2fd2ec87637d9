package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// A vault is a named area of an account: one storage URL (file:///dir or
// s3://host:port/bucket[/prefix]) reached with one set of keys. Its objects
// live under "vaults/NAME/" of the account, and every object is write-once,
// so state that changes (config, credential issues, key envelopes) is a
// sequence of objects in which the highest sequence number wins:
//
//	vault-names/<lowercase name>          claim that makes the name unique in the account
//	vaults/NAME/config/<seq>.json         VaultConfig, newest wins
//	vaults/NAME/credentials/<seq>.json    issue records; only the newest is valid
//	vaults/NAME/servers/<server>-<time>.json  registration records
//	vaults/NAME/keys/<fingerprint>/<seq>  wrapped key envelopes, newest wins
//	vaults/NAME/points/…                  archived recovery points (offload)
//
// Every metadata object is written to every copy (primary, and secondary for
// GRS) and read from the primary. docs/VAULT.md describes the layout.

// Replication is how many copies of the vault are kept.
type Replication string

// Replication settings. GRS is the default.
const (
	// GRS keeps a second copy on a second endpoint or bucket.
	GRS Replication = "GRS"
	// LRS keeps one copy: cheaper, less durable.
	LRS Replication = "LRS"
)

// ParseReplication accepts GRS or LRS in any letter case; "" means GRS.
func ParseReplication(s string) (Replication, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "GRS":
		return GRS, nil
	case "LRS":
		return LRS, nil
	}
	return "", fmt.Errorf("invalid replication %q: use GRS (two copies, the default) or LRS (one copy)", s)
}

// VaultFormat is the version of the vault layout and of its JSON objects.
const VaultFormat = 1

// Object name prefixes inside a vault (relative to vaults/NAME/).
const (
	VaultConfigPrefix      = "config/"
	VaultCredentialsPrefix = "credentials/"
	VaultServersPrefix     = "servers/"
	VaultKeysPrefix        = "keys/"
	// VaultPointsPrefix holds archived recovery points. Once anything exists
	// under it the replication setting is frozen.
	VaultPointsPrefix = "points/"

	vaultsPrefix     = "vaults/"
	vaultNamesPrefix = "vault-names/"
)

// Vault name rules (DESIGN.md, "Rules of the reference product").
const (
	MinVaultNameLen = 2
	MaxVaultNameLen = 50
)

// ErrInvalidVaultName is wrapped by every error of ValidateVaultName.
var ErrInvalidVaultName = errors.New("invalid vault name")

// ErrVaultNotFound means no vault of that name exists at the account.
var ErrVaultNotFound = errors.New("vault not found")

// ErrVaultExists means vault create found the name taken in the account.
// Its text reads as a phrase inside the full message: vault "x" already
// exists at URL.
var ErrVaultExists = errors.New("already exists")

// ErrReplicationFrozen means set-replication was refused because the vault
// already holds an archived recovery point.
var ErrReplicationFrozen = errors.New("replication can no longer be changed")

// ValidateVaultName checks the vault name rule: 2–50 characters, starting
// with a letter, made of ASCII letters, digits and hyphens only. The error
// names the rule that is broken, one message per rule.
func ValidateVaultName(name string) error {
	n := len([]rune(name))
	switch {
	case n < MinVaultNameLen:
		return fmt.Errorf("%w %q: a vault name must be at least %d characters long", ErrInvalidVaultName, name, MinVaultNameLen)
	case n > MaxVaultNameLen:
		return fmt.Errorf("%w %q: a vault name must be at most %d characters long (it has %d)", ErrInvalidVaultName, name, MaxVaultNameLen, n)
	case !isASCIILetter(rune(name[0])):
		return fmt.Errorf("%w %q: a vault name must start with a letter", ErrInvalidVaultName, name)
	}
	for _, r := range name {
		if !isASCIILetter(r) && !(r >= '0' && r <= '9') && r != '-' {
			return fmt.Errorf("%w %q: a vault name may contain only letters, digits and hyphens (found %q)", ErrInvalidVaultName, name, r)
		}
	}
	return nil
}

func isASCIILetter(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }

// VaultConfig is the vault's settings object (config/<seq>.json).
type VaultConfig struct {
	Format        int         `json:"format"`
	Name          string      `json:"name"`
	Replication   Replication `json:"replication"`
	PrimaryURL    string      `json:"primary_url"`
	SecondaryURL  string      `json:"secondary_url,omitempty"`
	ImmutableDays int         `json:"immutable_days,omitempty"`
	Created       time.Time   `json:"created"`
	Updated       time.Time   `json:"updated"`

	// Seq is the sequence number of the object the config was read from.
	Seq uint64 `json:"-"`
}

// Account is a storage URL plus how to reach it. A vault's primary and
// secondary copies each live in an account.
type Account struct {
	URL     string
	Options storage.Options
}

// open opens the account root. lockDays > 0 puts every object under
// retention (object lock) for that many days.
func (a Account) open(ctx context.Context, lockDays int) (storage.Backend, error) {
	o := a.Options
	o.ObjectLockDays = lockDays
	return storage.Open(ctx, a.URL, o)
}

// canonicalURL returns the account URL in the form ParseURL prints, so the
// same account is always named the same way.
func canonicalURL(raw string) (string, error) {
	u, err := storage.ParseURL(raw)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// objectLocker is implemented by backends that can tell whether their
// bucket has object lock (*S3).
type objectLocker interface {
	ObjectLockEnabled(ctx context.Context) (bool, error)
}

// checkLockable refuses --immutable-days where the account cannot lock.
func checkLockable(ctx context.Context, b storage.Backend, url string) error {
	l, ok := storage.Innermost(b).(objectLocker)
	if !ok {
		return fmt.Errorf("immutable days need an S3 bucket created with object lock; %s is a file URL, which cannot lock objects", url)
	}
	on, err := l.ObjectLockEnabled(ctx)
	if err != nil {
		return fmt.Errorf("check object lock at %s: %w", url, err)
	}
	if !on {
		return fmt.Errorf("immutable days need object lock, but the bucket of %s was not created with object lock enabled (it cannot be turned on later: create a new bucket with object lock, e.g. 'mc mb --with-lock')", url)
	}
	return nil
}

// Vault is an open vault: its config and a backend per copy, each rooted at
// vaults/NAME/ of its account.
type Vault struct {
	Config VaultConfig

	primary, secondary storage.Backend
	roots              []storage.Backend // account roots to close
}

// Name returns the vault name.
func (v *Vault) Name() string { return v.Config.Name }

// Primary returns the primary copy, rooted at vaults/NAME/.
func (v *Vault) Primary() storage.Backend { return v.primary }

// Secondary returns the GRS copy rooted at vaults/NAME/, or nil for LRS.
func (v *Vault) Secondary() storage.Backend { return v.secondary }

// Copies returns every copy the replication setting demands, primary first.
func (v *Vault) Copies() []storage.Backend {
	if v.secondary == nil {
		return []storage.Backend{v.primary}
	}
	return []storage.Backend{v.primary, v.secondary}
}

// Location names the vault for messages: its primary location.
func (v *Vault) Location() string { return v.primary.Location() }

// Close releases the backends.
func (v *Vault) Close() error {
	var errs []error
	for _, b := range v.roots {
		errs = append(errs, b.Close())
	}
	v.roots = nil
	return errors.Join(errs...)
}

// CreateVaultOptions are the settings of a new vault.
type CreateVaultOptions struct {
	Name        string
	Replication Replication // "" means GRS
	// Secondary is the account of the GRS copy; required for GRS.
	Secondary *Account
	// ImmutableDays > 0 writes every vault object under S3 object lock for
	// that many days; the buckets must have object lock.
	ImmutableDays int
}

// CreateVault creates vault o.Name in the primary account (and the
// secondary one for GRS): it claims the name and writes the first config
// object to every copy. No secret for credentials files is kept in the
// vault (see IssueCredentials).
func CreateVault(ctx context.Context, primary Account, o CreateVaultOptions, now time.Time) (*Vault, error) {
	if err := ValidateVaultName(o.Name); err != nil {
		return nil, err
	}
	repl := o.Replication
	if repl == "" {
		repl = GRS
	}
	if _, err := ParseReplication(string(repl)); err != nil {
		return nil, err
	}
	if o.ImmutableDays < 0 {
		return nil, fmt.Errorf("immutable days must be 0 (off) or more, not %d", o.ImmutableDays)
	}
	purl, err := canonicalURL(primary.URL)
	if err != nil {
		return nil, err
	}
	primary.URL = purl
	var secondary *Account
	switch repl {
	case GRS:
		if o.Secondary == nil || o.Secondary.URL == "" {
			return nil, fmt.Errorf("GRS replication keeps a second copy and needs its location: add --secondary-url URL (another endpoint or bucket), or choose --replication LRS for a single copy")
		}
		s := *o.Secondary
		if s.URL, err = canonicalURL(s.URL); err != nil {
			return nil, fmt.Errorf("secondary: %w", err)
		}
		if s.URL == primary.URL {
			return nil, fmt.Errorf("the secondary location %s is the primary one; GRS needs a second endpoint or bucket", s.URL)
		}
		secondary = &s
	case LRS:
		if o.Secondary != nil && o.Secondary.URL != "" {
			return nil, fmt.Errorf("LRS keeps a single copy: drop --secondary-url, or use --replication GRS")
		}
	}

	cfg := VaultConfig{
		Format:        VaultFormat,
		Name:          o.Name,
		Replication:   repl,
		PrimaryURL:    primary.URL,
		ImmutableDays: o.ImmutableDays,
		Created:       now.UTC(),
		Updated:       now.UTC(),
	}
	if secondary != nil {
		cfg.SecondaryURL = secondary.URL
	}
	v := &Vault{Config: cfg}
	ok := false
	defer func() {
		if !ok {
			v.Close()
		}
	}()
	accounts := []Account{primary}
	if secondary != nil {
		accounts = append(accounts, *secondary)
	}
	for i, a := range accounts {
		root, err := a.open(ctx, o.ImmutableDays)
		if err != nil {
			return nil, err
		}
		v.roots = append(v.roots, root)
		if o.ImmutableDays > 0 {
			if err := checkLockable(ctx, root, a.URL); err != nil {
				return nil, err
			}
		}
		b := storage.Prefixed(root, vaultsPrefix+o.Name)
		if i == 0 {
			v.primary = b
		} else {
			v.secondary = b
		}
	}
	// Claim the name in every account first: the claim is a write-once
	// object, so of two racing creates exactly one wins.
	for i, root := range v.roots {
		if err := claimName(ctx, root, o.Name, accounts[i].URL, nil); err != nil {
			return nil, err
		}
	}
	if err := v.writeConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("create vault %q: %w", o.Name, err)
	}
	ok = true
	return v, nil
}

// claimName writes vault-names/<lowercase name>. Names are unique without
// regard to letter case (file:// vaults on a case-insensitive file system
// would otherwise share a folder). A claim left by a create that crashed
// before writing the config is taken over, and so is the former second copy
// of owner (a vault going GRS again).
func claimName(ctx context.Context, root storage.Backend, name, url string, owner *VaultConfig) error {
	claim := vaultNamesPrefix + strings.ToLower(name)
	err := saveBytes(ctx, root, claim, []byte(name))
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("claim vault name %q at %s: %w", name, url, err)
	}
	existing, err := loadBytes(ctx, root, claim)
	if err != nil {
		return fmt.Errorf("read vault name claim at %s: %w", url, err)
	}
	if string(existing) == name {
		cfg, err := readConfig(ctx, storage.Prefixed(root, vaultsPrefix+name))
		if errors.Is(err, storage.ErrNotFound) {
			return nil // an interrupted create of the same name: finish it
		}
		if err != nil {
			return err
		}
		// A former second copy of this very vault (GRS → LRS → GRS).
		if owner != nil && cfg.PrimaryURL == owner.PrimaryURL && cfg.Created.Equal(owner.Created) {
			return nil
		}
	}
	return fmt.Errorf("vault %q %w at %s (vault names are unique per account, ignoring letter case)", string(existing), ErrVaultExists, url)
}

// OpenVault opens vault name at the primary account, reads its newest
// config and, for GRS, opens the secondary copy at the URL the config
// names. secondary gives the keys and proxy for it; nil means the
// primary's.
func OpenVault(ctx context.Context, primary Account, name string, secondary *storage.Options) (*Vault, error) {
	if err := ValidateVaultName(name); err != nil {
		return nil, err
	}
	purl, err := canonicalURL(primary.URL)
	if err != nil {
		return nil, err
	}
	primary.URL = purl
	root, err := primary.open(ctx, 0)
	if err != nil {
		return nil, err
	}
	// The name may be spelled in another letter case than at create.
	claimed, err := loadBytes(ctx, root, vaultNamesPrefix+strings.ToLower(name))
	if errors.Is(err, storage.ErrNotFound) {
		root.Close()
		return nil, fmt.Errorf("%w: no vault %q at %s: check the name and the URL ('tapeless vault list --url URL' shows the vaults of an account)", ErrVaultNotFound, name, purl)
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open vault %q at %s: %w", name, purl, err)
	}
	name = string(claimed)
	cfg, err := readConfig(ctx, storage.Prefixed(root, vaultsPrefix+name))
	if errors.Is(err, storage.ErrNotFound) {
		root.Close()
		return nil, fmt.Errorf("%w: vault %q at %s was never completely created (run 'tapeless vault create' again)", ErrVaultNotFound, name, purl)
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open vault %q at %s: %w", name, purl, err)
	}
	if cfg.ImmutableDays > 0 {
		// Reopen so that every object written from now on is locked.
		root.Close()
		if root, err = primary.open(ctx, cfg.ImmutableDays); err != nil {
			return nil, err
		}
	}
	v := &Vault{Config: cfg, primary: storage.Prefixed(root, vaultsPrefix+name), roots: []storage.Backend{root}}
	if cfg.Replication == GRS {
		so := primary.Options
		if secondary != nil {
			so = *secondary
		}
		sroot, err := Account{URL: cfg.SecondaryURL, Options: so}.open(ctx, cfg.ImmutableDays)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("open secondary copy of vault %q: %w", name, err)
		}
		v.roots = append(v.roots, sroot)
		v.secondary = storage.Prefixed(sroot, vaultsPrefix+name)
	}
	return v, nil
}

// ListVaults returns the config of every vault in the account, by name.
func ListVaults(ctx context.Context, a Account) ([]VaultConfig, error) {
	url, err := canonicalURL(a.URL)
	if err != nil {
		return nil, err
	}
	a.URL = url
	root, err := a.open(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var names []string
	err = root.List(ctx, vaultNamesPrefix, func(info storage.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list vaults at %s: %w", url, err)
	}
	var out []VaultConfig
	for _, n := range names {
		b, err := loadBytes(ctx, root, n)
		if err != nil {
			return nil, fmt.Errorf("list vaults at %s: %w", url, err)
		}
		cfg, err := readConfig(ctx, storage.Prefixed(root, vaultsPrefix+string(b)))
		if errors.Is(err, storage.ErrNotFound) {
			continue // an interrupted create
		}
		if err != nil {
			return nil, fmt.Errorf("list vaults at %s: %w", url, err)
		}
		out = append(out, cfg)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

// HasPoints reports whether any archived recovery point object exists.
func (v *Vault) HasPoints(ctx context.Context) (bool, error) {
	found := false
	err := v.primary.List(ctx, VaultPointsPrefix, func(storage.Info) error {
		found = true
		return errStopList
	})
	if err != nil && !errors.Is(err, errStopList) {
		return false, fmt.Errorf("look for archived points in vault %q: %w", v.Name(), err)
	}
	return found, nil
}

var errStopList = errors.New("stop listing")

// SetReplication changes GRS↔LRS. It is refused with ErrReplicationFrozen
// once any recovery point is archived, because points already written would
// then not match the setting (missing second copies, or copies nobody
// maintains). Going to GRS needs the secondary account; every object of the
// vault is copied there first, then the new config is written to every
// copy (to the old secondary too when going to LRS, so that it says it is
// no longer maintained).
func (v *Vault) SetReplication(ctx context.Context, r Replication, secondary *Account, now time.Time) error {
	if _, err := ParseReplication(string(r)); err != nil || r == "" {
		return fmt.Errorf("invalid replication %q: use GRS or LRS", r)
	}
	has, err := v.HasPoints(ctx)
	if err != nil {
		return err
	}
	if has {
		return fmt.Errorf("%w: vault %q already holds archived recovery points, and replication can be changed only until the first one is archived (it stays %s)", ErrReplicationFrozen, v.Name(), v.Config.Replication)
	}
	if r == v.Config.Replication {
		if r == LRS || secondary == nil || secondary.URL == "" {
			return nil
		}
		if u, err := canonicalURL(secondary.URL); err == nil && u == v.Config.SecondaryURL {
			return nil
		}
		return fmt.Errorf("vault %q is already GRS with its second copy at %s; moving the second copy is not supported", v.Name(), v.Config.SecondaryURL)
	}
	cfg := v.Config
	cfg.Replication = r
	cfg.Updated = now.UTC()
	switch r {
	case GRS:
		if secondary == nil || secondary.URL == "" {
			return fmt.Errorf("GRS replication keeps a second copy and needs its location: add --secondary-url URL")
		}
		s := *secondary
		if s.URL, err = canonicalURL(s.URL); err != nil {
			return fmt.Errorf("secondary: %w", err)
		}
		if s.URL == v.Config.PrimaryURL {
			return fmt.Errorf("the secondary location %s is the primary one; GRS needs a second endpoint or bucket", s.URL)
		}
		sroot, err := s.open(ctx, cfg.ImmutableDays)
		if err != nil {
			return err
		}
		if cfg.ImmutableDays > 0 {
			if err := checkLockable(ctx, sroot, s.URL); err != nil {
				sroot.Close()
				return err
			}
		}
		if err := claimName(ctx, sroot, v.Name(), s.URL, &v.Config); err != nil {
			sroot.Close()
			return err
		}
		sec := storage.Prefixed(sroot, vaultsPrefix+v.Name())
		if err := copyMissing(ctx, v.primary, sec); err != nil {
			sroot.Close()
			return fmt.Errorf("copy vault %q to %s: %w", v.Name(), s.URL, err)
		}
		v.roots = append(v.roots, sroot)
		v.secondary = sec
		cfg.SecondaryURL = s.URL
		return v.writeConfig(ctx, cfg)
	default: // LRS
		if err := v.writeConfig(ctx, cfg); err != nil {
			return err
		}
		v.secondary = nil
		return nil
	}
}

// copyMissing makes dst a copy of src: it copies every object dst lacks
// and removes what src no longer has (a key envelope superseded while the
// vault was LRS must not survive on a former second copy). Removal is best
// effort: object lock may forbid it.
func copyMissing(ctx context.Context, src, dst storage.Backend) error {
	var names []string
	have := map[string]bool{}
	if err := src.List(ctx, "", func(i storage.Info) error {
		names = append(names, i.Name)
		have[i.Name] = true
		return nil
	}); err != nil {
		return err
	}
	var extra []string
	if err := dst.List(ctx, "", func(i storage.Info) error {
		if !have[i.Name] {
			extra = append(extra, i.Name)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, n := range extra {
		_ = dst.Remove(ctx, n)
	}
	for _, n := range names {
		b, err := loadBytes(ctx, src, n)
		if err != nil {
			return err
		}
		if err := saveBytes(ctx, dst, n, b); err != nil && !errors.Is(err, storage.ErrExists) {
			return err
		}
	}
	return nil
}

// writeConfig writes cfg as the next config object to every copy, the
// primary first. The sequence number comes from the primary; a concurrent
// writer makes Save fail with ErrExists, which is reported, not retried:
// two people changing one vault at once should look again.
func (v *Vault) writeConfig(ctx context.Context, cfg VaultConfig) error {
	_, seq, _, err := newestSeq(ctx, v.primary, VaultConfigPrefix, ".json")
	if err != nil {
		return err
	}
	cfg.Seq = seq + 1
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	name := seqName(VaultConfigPrefix, cfg.Seq, ".json")
	copies := v.Copies()
	// When leaving GRS the old secondary learns it is no longer kept.
	if cfg.Replication == LRS && v.secondary != nil {
		copies = []storage.Backend{v.primary, v.secondary}
	}
	for _, c := range copies {
		if err := saveBytes(ctx, c, name, b); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return fmt.Errorf("write vault config: the vault changed concurrently, try again: %w", err)
			}
			return fmt.Errorf("write vault config to %s: %w", c.Location(), err)
		}
	}
	v.Config = cfg
	return nil
}

// maxSeqProbe bounds how many objects of a sequence newestSeq looks up by
// name beyond the listing.
const maxSeqProbe = 1000

// readConfig reads the newest config object of the vault at b.
func readConfig(ctx context.Context, b storage.Backend) (VaultConfig, error) {
	name, seq, found, err := newestSeq(ctx, b, VaultConfigPrefix, ".json")
	if err != nil {
		return VaultConfig{}, err
	}
	if !found {
		return VaultConfig{}, fmt.Errorf("no config object: %w", storage.ErrNotFound)
	}
	data, err := loadBytes(ctx, b, name)
	if err != nil {
		return VaultConfig{}, err
	}
	var cfg VaultConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return VaultConfig{}, fmt.Errorf("parse vault config %s: %w", name, err)
	}
	if cfg.Format < 1 || cfg.Format > VaultFormat {
		return VaultConfig{}, fmt.Errorf("vault config %s has format %d; this tapeless reads format 1 to %d (upgrade tapeless)", name, cfg.Format, VaultFormat)
	}
	cfg.Seq = seq
	return cfg, nil
}

// saveAll writes a new object to every copy, primary first.
func (v *Vault) saveAll(ctx context.Context, name string, data []byte) error {
	for _, c := range v.Copies() {
		if err := saveBytes(ctx, c, name, data); err != nil {
			return fmt.Errorf("write %s to %s: %w", name, c.Location(), err)
		}
	}
	return nil
}

// seqName is dir + the 20-digit sequence number + ext: lexical order is
// numeric order.
func seqName(dir string, seq uint64, ext string) string {
	return fmt.Sprintf("%s%020d%s", dir, seq, ext)
}

// newestSeq finds the object with the highest sequence number directly in
// dir (names made by seqName with any extension). Other names are ignored.
func newestSeq(ctx context.Context, b storage.Backend, dir, ext string) (name string, seq uint64, found bool, err error) {
	err = b.List(ctx, dir, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Name, dir)
		if len(rest) < 20 || strings.Contains(rest, "/") {
			return nil
		}
		n, perr := strconv.ParseUint(rest[:20], 10, 64)
		if perr != nil {
			return nil
		}
		if !found || n > seq {
			name, seq, found = i.Name, n, true
		}
		return nil
	})
	if err != nil {
		return "", 0, false, fmt.Errorf("list %s%s: %w", b.Location(), "/"+dir, err)
	}
	// Sequences are numbered 1, 2, … without gaps (a writer takes newest
	// + 1, a loser of a race the next): look for the next ones by name, so
	// that a listing that came back empty or short is never taken for an
	// older state — an older config, or a superseded credentials file
	// made valid again.
	for i := 0; i < maxSeqProbe; i++ {
		next := seqName(dir, seq+1, ext)
		if _, err := b.Stat(ctx, next); errors.Is(err, storage.ErrNotFound) {
			break
		} else if err != nil {
			return "", 0, false, fmt.Errorf("look for %s at %s: %w", next, b.Location(), err)
		}
		name, seq, found = next, seq+1, true
	}
	return name, seq, found, nil
}

func saveBytes(ctx context.Context, b storage.Backend, name string, data []byte) error {
	return b.Save(ctx, name, bytes.NewReader(data), int64(len(data)))
}

// maxMetaSize bounds metadata objects read into memory.
const maxMetaSize = 16 << 20

func loadBytes(ctx context.Context, b storage.Backend, name string) ([]byte, error) {
	var out []byte
	err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		out, err = io.ReadAll(io.LimitReader(r, maxMetaSize+1))
		if err == nil && len(out) > maxMetaSize {
			err = fmt.Errorf("object %s is larger than %d bytes", name, maxMetaSize)
		}
		return err
	})
	return out, err
}
