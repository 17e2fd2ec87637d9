package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

func init() { addCommand(newVaultCmd) }

func newVaultCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:     "vault",
		Short:   "Create and inspect vaults, issue vault credentials files",
		GroupID: groupVault,
		Long: `A vault is a named area of a storage account (a file:// folder or an S3
bucket) that holds archived recovery points, with one copy (LRS) or a
second copy on another endpoint or bucket (GRS, the default).

The usual order is: vault create, vault credentials, then 'tapeless register'
on each server with the credentials file.

S3 keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`,
		Example: `  tapeless vault create backups --url file:///srv/vault --replication LRS
  tapeless vault credentials backups --url file:///srv/vault
  tapeless vault list --url file:///srv/vault
  tapeless vault status`,
	}
	c.AddCommand(newVaultCreateCmd(g), newVaultCredentialsCmd(g), newVaultSetReplicationCmd(g),
		newVaultListCmd(g), newVaultStatusCmd(g), newVaultRepackEstimateCmd(g), newVaultRepairCmd(g))
	return c
}

// checkURLFlag makes a missing, empty or malformed --url a usage error.
func checkURLFlag(url string) error {
	if url == "" {
		return usageError{errors.New("--url is required: the account the vault lives in, e.g. file:///srv/vault or s3://host:9000/bucket")}
	}
	if _, err := storage.ParseURL(url); err != nil {
		return usageError{fmt.Errorf("--url: %w", err)}
	}
	return nil
}

// checkSecondaryURLFlag makes a malformed --secondary-url a usage error.
func checkSecondaryURLFlag(url string) error {
	if url == "" {
		return nil
	}
	if _, err := storage.ParseURL(url); err != nil {
		return usageError{fmt.Errorf("--secondary-url: %w", err)}
	}
	return nil
}

// Environment variables that give the GRS copy's S3 keys when they differ
// from the primary's, so the secret need not appear on a command line.
const (
	envSecondaryAccessKey = "TAPELESS_SECONDARY_ACCESS_KEY"
	envSecondarySecretKey = "TAPELESS_SECONDARY_SECRET_KEY"
)

// secondaryKeys are the S3 keys of a vault's second copy, from
// --secondary-access-key/--secondary-secret-key or the environment. Empty
// means the second copy is reached with the primary's keys.
type secondaryKeys struct{ access, secret string }

func (k *secondaryKeys) addFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&k.access, "secondary-access-key", "", "S3 access key of the second copy when it differs from the primary's (default $"+envSecondaryAccessKey+")")
	f.StringVar(&k.secret, "secondary-secret-key", "", "S3 secret key of the second copy (default $"+envSecondarySecretKey+")")
}

// resolve fills unset keys from the environment and checks that they come
// as a pair.
func (k secondaryKeys) resolve() (secondaryKeys, error) {
	if k.access == "" && k.secret == "" {
		k.access, k.secret = os.Getenv(envSecondaryAccessKey), os.Getenv(envSecondarySecretKey)
	}
	if (k.access == "") != (k.secret == "") {
		return k, usageError{errors.New("the second copy's keys go together: give both --secondary-access-key and --secondary-secret-key (or " +
			envSecondaryAccessKey + " and " + envSecondarySecretKey + "), or neither to use the primary's keys")}
	}
	return k, nil
}

// options returns the storage options for the second copy, or nil when
// the primary's apply.
func (k secondaryKeys) options() *storage.Options {
	if k.access == "" {
		return nil
	}
	return &storage.Options{AccessKey: k.access, SecretKey: k.secret}
}

// account returns the second copy's account at url.
func (k secondaryKeys) account(url string) *vault.Account {
	if url == "" {
		return nil
	}
	a := &vault.Account{URL: url}
	if o := k.options(); o != nil {
		a.Options = *o
	}
	return a
}

type vaultCreateOptions struct {
	url, secondaryURL, replication string
	immutableDays                  int
	secondary                      secondaryKeys
}

func newVaultCreateCmd(g *globalOptions) *cobra.Command {
	var o vaultCreateOptions
	c := &cobra.Command{
		Use:   "create NAME --url URL [--secondary-url URL] [--replication GRS|LRS] [--immutable-days N]",
		Short: "Create a vault",
		Long: `Create vault NAME in the account at --url.

Vault names have 2 to 50 characters, start with a letter, and contain only
letters, digits and hyphens; they are unique within the account (ignoring
letter case).

Replication is GRS by default: a second copy at --secondary-url (another
endpoint or bucket). --replication LRS keeps a single copy. The setting can
be changed with 'vault set-replication' until the first recovery point is
archived.

--immutable-days N writes every vault object under S3 object lock
(COMPLIANCE) for N days; the bucket must have been created with object lock.
A file:// vault cannot lock objects.

S3 keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; when the
second copy needs other keys, give them with --secondary-access-key and
--secondary-secret-key, or TAPELESS_SECONDARY_ACCESS_KEY and
TAPELESS_SECONDARY_SECRET_KEY.`,
		Example: `  tapeless vault create backups --url file:///tmp/tapeless-demo/vault --replication LRS
  tapeless vault create backups --url s3://10.0.0.5:9000/vault --secondary-url s3://10.1.0.5:9000/vault
  TAPELESS_SECONDARY_ACCESS_KEY=… TAPELESS_SECONDARY_SECRET_KEY=… \
      tapeless vault create backups --url s3://10.0.0.5:9000/vault --secondary-url s3://s3.other-region.example.com/vault
  tapeless vault create locked --url s3://s3.example.com/locked-bucket --replication LRS --immutable-days 365`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVaultCreate(cmd.Context(), g, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVar(&o.url, "url", "", "account URL: file:///dir or s3://host:port/bucket[/prefix][?insecure=1]")
	f.StringVar(&o.secondaryURL, "secondary-url", "", "account URL of the second copy (GRS)")
	f.StringVar(&o.replication, "replication", "GRS", "GRS (two copies) or LRS (one copy)")
	f.IntVar(&o.immutableDays, "immutable-days", 0, "keep every vault object under object lock for N days (S3 with object lock only)")
	o.secondary.addFlags(c)
	return c
}

func runVaultCreate(ctx context.Context, g *globalOptions, o vaultCreateOptions, name string) error {
	if err := checkURLFlag(o.url); err != nil {
		return err
	}
	if err := checkSecondaryURLFlag(o.secondaryURL); err != nil {
		return err
	}
	if err := vault.ValidateVaultName(name); err != nil {
		return usageError{err}
	}
	repl, err := vault.ParseReplication(o.replication)
	if err != nil {
		return usageError{err}
	}
	if o.immutableDays < 0 {
		return usageError{fmt.Errorf("--immutable-days must be 0 (off) or more, not %d", o.immutableDays)}
	}
	if repl == vault.GRS && o.secondaryURL == "" {
		return usageError{errors.New("GRS replication keeps a second copy and needs its location: add --secondary-url URL (another endpoint or bucket), or choose --replication LRS for a single copy")}
	}
	sk, err := o.secondary.resolve()
	if err != nil {
		return err
	}
	co := vault.CreateVaultOptions{Name: name, Replication: repl, ImmutableDays: o.immutableDays,
		Secondary: sk.account(o.secondaryURL)}
	v, err := vault.CreateVault(ctx, vault.Account{URL: o.url}, co, now())
	if err != nil {
		return err
	}
	defer v.Close()
	cfg := v.Config
	if g.json {
		return writeJSON(g.stdout, vaultJSON(cfg))
	}
	if g.quiet {
		return nil
	}
	fmt.Fprintf(g.stdout, "Created vault %q (%s) at %s\n", cfg.Name, cfg.Replication, cfg.PrimaryURL)
	if cfg.SecondaryURL != "" {
		fmt.Fprintf(g.stdout, "Second copy at %s\n", cfg.SecondaryURL)
	}
	if cfg.ImmutableDays > 0 {
		fmt.Fprintf(g.stdout, "Every object is locked for %d days after it is written.\n", cfg.ImmutableDays)
	}
	fmt.Fprintf(g.stdout, "Next: tapeless vault credentials %s --url %s\n", cfg.Name, shellQuote(cfg.PrimaryURL))
	return nil
}

// vaultListJSON is the JSON of `vault list`.
type vaultListJSON struct {
	Vaults []vaultInfo `json:"vaults"`
}

// vaultInfo is the JSON shape of a vault in list, create and status output.
type vaultInfo struct {
	Name          string    `json:"name"`
	Replication   string    `json:"replication"`
	PrimaryURL    string    `json:"primary_url"`
	SecondaryURL  string    `json:"secondary_url,omitempty"`
	ImmutableDays int       `json:"immutable_days"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

func vaultJSON(c vault.VaultConfig) vaultInfo {
	return vaultInfo{
		Name: c.Name, Replication: string(c.Replication), PrimaryURL: c.PrimaryURL,
		SecondaryURL: c.SecondaryURL, ImmutableDays: c.ImmutableDays, Created: c.Created.UTC(), Updated: c.Updated.UTC(),
	}
}

type vaultCredentialsOptions struct {
	url, output          string
	accessKey, secretKey string
	secondary            secondaryKeys
}

func newVaultCredentialsCmd(g *globalOptions) *cobra.Command {
	var o vaultCredentialsOptions
	c := &cobra.Command{
		Use:   "credentials NAME --url URL [-o FILE]",
		Short: "Issue a vault credentials file for registering servers",
		Long: `Write a vault credentials file, NAME_YYYY-MM-DD.VaultCredentials in the
current folder (or -o FILE), mode 0600. A server registers to the vault with
it ('tapeless register --credentials FILE').

The file is valid for 48 hours, and issuing a new one invalidates every
earlier file of the vault. It names the vault's locations and, for S3, holds
the access keys given with --access-key/--secret-key, or else those in
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: keep it as safe as those keys.
When a GRS vault's second copy needs other keys, --secondary-access-key and
--secondary-secret-key (or TAPELESS_SECONDARY_ACCESS_KEY and
TAPELESS_SECONDARY_SECRET_KEY) put them in the file too.`,
		Example: `  tapeless vault credentials backups --url file:///tmp/tapeless-demo/vault
  tapeless vault credentials backups --url s3://10.0.0.5:9000/vault -o /root/backups.VaultCredentials`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVaultCredentials(cmd.Context(), g, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVar(&o.url, "url", "", "account URL the vault lives in")
	f.StringVarP(&o.output, "output", "o", "", "file to write (default NAME_YYYY-MM-DD.VaultCredentials)")
	f.StringVar(&o.accessKey, "access-key", "", "S3 access key to put in the file for the servers (default AWS_ACCESS_KEY_ID)")
	f.StringVar(&o.secretKey, "secret-key", "", "S3 secret key to put in the file (default AWS_SECRET_ACCESS_KEY)")
	o.secondary.addFlags(c)
	return c
}

func runVaultCredentials(ctx context.Context, g *globalOptions, o vaultCredentialsOptions, name string) error {
	if err := checkURLFlag(o.url); err != nil {
		return err
	}
	if err := vault.ValidateVaultName(name); err != nil {
		return usageError{err}
	}
	if (o.accessKey == "") != (o.secretKey == "") {
		return usageError{errors.New("--access-key and --secret-key go together")}
	}
	keys := vault.AccessKeys{AccessKey: o.accessKey, SecretKey: o.secretKey}
	u, err := storage.ParseURL(o.url)
	if err != nil {
		return usageError{err}
	}
	if keys.AccessKey == "" && u.Scheme == "s3" {
		keys = vault.AccessKeys{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	}
	sk, err := o.secondary.resolve()
	if err != nil {
		return err
	}
	keys.SecondaryAccessKey, keys.SecondarySecretKey = sk.access, sk.secret
	acct := vault.Account{URL: o.url, Options: storage.Options{AccessKey: keys.AccessKey, SecretKey: keys.SecretKey}}
	v, err := vault.OpenVault(ctx, acct, name, sk.options())
	if err != nil {
		return err
	}
	defer v.Close()
	t := now()
	c, data, err := v.IssueCredentials(ctx, keys, t)
	if err != nil {
		return err
	}
	path := o.output
	if path == "" {
		path = vault.CredentialsFileName(v.Name(), t)
	}
	if err := storage.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	if g.json {
		return writeJSON(g.stdout, credentialsJSON{File: path, Vault: c.Vault, Serial: c.Serial,
			IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, HasAccessKeys: c.AccessKey != ""})
	}
	if g.quiet {
		return nil
	}
	fmt.Fprintf(g.stdout, "Wrote %s (mode 0600) for vault %q.\n", path, c.Vault)
	fmt.Fprintf(g.stdout, "It is valid until %s (48 hours) and replaces every earlier credentials file of this vault.\n", c.ExpiresAt.Local().Format("2006-01-02 15:04 MST"))
	if c.SecondaryAccessKey != "" {
		fmt.Fprintf(g.stdout, "It holds the S3 access keys (%s, second copy %s): keep it safe and delete it after registering.\n", c.AccessKey, c.SecondaryAccessKey)
	} else if c.AccessKey != "" {
		fmt.Fprintf(g.stdout, "It holds the S3 access keys (%s): keep it safe and delete it after registering.\n", c.AccessKey)
	} else if u.Scheme == "s3" {
		fmt.Fprintf(g.stdout, "It holds no S3 access keys: registering servers need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\n")
	}
	fmt.Fprintf(g.stdout, "Next, on each server: tapeless register --credentials %s --generate-passphrase FILE\n", shellQuote(path))
	return nil
}

// credentialsJSON is the JSON of `vault credentials`; the file's secrets
// are never printed.
type credentialsJSON struct {
	File          string    `json:"file"`
	Vault         string    `json:"vault"`
	Serial        string    `json:"serial"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	HasAccessKeys bool      `json:"has_access_keys"`
}

func newVaultSetReplicationCmd(g *globalOptions) *cobra.Command {
	var url, secondaryURL string
	var secondary secondaryKeys
	c := &cobra.Command{
		Use:   "set-replication NAME GRS|LRS --url URL [--secondary-url URL]",
		Short: "Change a vault between GRS and LRS before anything is archived",
		Long: `Change the replication of vault NAME. This works only until the first
recovery point is archived in the vault; afterwards it is refused, because
points already archived would not match the new setting.

Going to GRS needs --secondary-url: the vault's objects are copied there
(with --secondary-access-key/--secondary-secret-key when that endpoint needs
other keys). A server registered to this vault picks up the new setting
from the vault the next time it opens it.`,
		Example: `  tapeless vault set-replication backups LRS --url file:///tmp/tapeless-demo/vault
  tapeless vault set-replication backups GRS --url file:///tmp/tapeless-demo/vault --secondary-url file:///tmp/tapeless-demo/vault2`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkURLFlag(url); err != nil {
				return err
			}
			if err := checkSecondaryURLFlag(secondaryURL); err != nil {
				return err
			}
			r, err := vault.ParseReplication(args[1])
			if err != nil || args[1] == "" {
				return usageError{fmt.Errorf("invalid replication %q: use GRS or LRS", args[1])}
			}
			sk, err := secondary.resolve()
			if err != nil {
				return err
			}
			v, err := vault.OpenVault(cmd.Context(), vault.Account{URL: url}, args[0], sk.options())
			if err != nil {
				return err
			}
			defer v.Close()
			sec := sk.account(secondaryURL)
			before := v.Config.Replication
			if err := v.SetReplication(cmd.Context(), r, sec, now()); err != nil {
				return err
			}
			// When this machine is itself registered to the vault, its
			// config follows at once (others follow when they next open it).
			if cfg, err := loadConfig(g.configFile); err == nil && cfg.Vault != nil && cfg.Vault.URL == v.Config.PrimaryURL {
				if _, err := syncVaultCache(cfg, v.Config); err != nil {
					return fmt.Errorf("vault %q is now %s, but updating %s failed: %w", v.Name(), r, g.configFile, err)
				}
			}
			if g.json {
				return writeJSON(g.stdout, vaultJSON(v.Config))
			}
			if !g.quiet {
				if before == r {
					fmt.Fprintf(g.stdout, "Vault %q is already %s.\n", v.Name(), r)
				} else {
					fmt.Fprintf(g.stdout, "Vault %q is now %s (was %s).\n", v.Name(), r, before)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&url, "url", "", "account URL the vault lives in")
	c.Flags().StringVar(&secondaryURL, "secondary-url", "", "account URL of the second copy (when going to GRS)")
	secondary.addFlags(c)
	return c
}

func newVaultListCmd(g *globalOptions) *cobra.Command {
	var url string
	c := &cobra.Command{
		Use:   "list --url URL",
		Short: "List the vaults of an account",
		Long:  `List every vault in the account at --url with its replication and immutability.`,
		Example: `  tapeless vault list --url file:///tmp/tapeless-demo/vault
  tapeless vault list --url s3://10.0.0.5:9000/vault --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkURLFlag(url); err != nil {
				return err
			}
			vs, err := vault.ListVaults(cmd.Context(), vault.Account{URL: url})
			if err != nil {
				return err
			}
			if g.json {
				out := vaultListJSON{Vaults: []vaultInfo{}}
				for _, v := range vs {
					out.Vaults = append(out.Vaults, vaultJSON(v))
				}
				return writeJSON(g.stdout, out)
			}
			if len(vs) == 0 {
				if !g.quiet {
					fmt.Fprintf(g.stdout, "No vaults at %s.\n", url)
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREPLICATION\tIMMUTABLE\tCREATED\tSECOND COPY")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.Replication, immutableText(v.ImmutableDays),
					v.Created.Local().Format("2006-01-02 15:04"), orDash(v.SecondaryURL))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&url, "url", "", "account URL")
	return c
}

func immutableText(days int) string {
	switch {
	case days <= 0:
		return "no"
	case days == 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// vaultStatusJSON is the JSON of `vault status`.
type vaultStatusJSON struct {
	vaultInfo
	Servers     []vault.Registration `json:"servers"`
	Credentials struct {
		Issued    bool       `json:"issued"`
		Valid     bool       `json:"valid"`
		IssuedAt  *time.Time `json:"issued_at,omitempty"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	} `json:"credentials"`
	PointsArchived     bool   `json:"points_archived"`
	ReplicationFrozen  bool   `json:"replication_frozen"`
	SecondaryReachable *bool  `json:"secondary_reachable,omitempty"`
	SecondaryError     string `json:"secondary_error,omitempty"`
	ThisServer         string `json:"this_server,omitempty"`
	KeyFingerprint     string `json:"key_fingerprint,omitempty"`
	// PendingReplication is this server's GRS backlog, from its local
	// offload catalogue (status.go).
	PendingReplication *archive.PendingSummary `json:"pending_replication,omitempty"`
}

func newVaultStatusCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the vault this server is registered to",
		Long: `Show the vault of this server's configuration: name, replication, second
copy, immutability, registered servers, and whether the newest vault
credentials file is still valid.`,
		Example: `  tapeless vault status
  tapeless vault status --json --config /etc/tapeless/config.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVaultStatus(cmd.Context(), g)
		},
	}
}

func runVaultStatus(ctx context.Context, g *globalOptions) error {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	v, err := openConfiguredVault(ctx, cfg)
	if err != nil {
		return err
	}
	defer v.Close()
	t := now()
	st, err := v.Status(ctx, t)
	if err != nil {
		return err
	}
	out := vaultStatusJSON{vaultInfo: vaultJSON(st.Config), Servers: st.Servers}
	if out.Servers == nil {
		out.Servers = []vault.Registration{}
	}
	out.PointsArchived = st.HasPoints
	out.ReplicationFrozen = st.HasPoints
	out.ThisServer = cfg.Server
	out.KeyFingerprint = cfg.Vault.KeyFingerprint
	if st.LatestIssue != nil {
		out.Credentials.Issued = true
		out.Credentials.Valid = st.IssueValid
		out.Credentials.IssuedAt = &st.LatestIssue.IssuedAt
		out.Credentials.ExpiresAt = &st.LatestIssue.ExpiresAt
	}
	if st.Config.Replication == vault.GRS {
		ok := st.SecondaryOK
		out.SecondaryReachable = &ok
		if st.SecondaryErr != nil {
			out.SecondaryError = st.SecondaryErr.Error()
		}
	}
	pending, pendingErr := pendingReplication(ctx, cfg) // status.go
	out.PendingReplication = pending
	// A status that shows NOT OK must not exit 0: monitoring runs it.
	var degraded error
	if st.Config.Replication == vault.GRS && !st.SecondaryOK {
		degraded = fmt.Errorf("the second copy of vault %q at %s is NOT OK: %v", out.Name, out.SecondaryURL, st.SecondaryErr)
	}
	if g.json {
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
		return degraded
	}
	if g.quiet {
		return degraded
	}
	w := g.stdout
	fmt.Fprintf(w, "Vault:        %s\n", out.Name)
	fmt.Fprintf(w, "Location:     %s\n", out.PrimaryURL)
	switch {
	case st.Config.Replication == vault.LRS:
		fmt.Fprintf(w, "Replication:  LRS (one copy)\n")
	case st.SecondaryOK:
		fmt.Fprintf(w, "Replication:  GRS, second copy at %s (reachable)\n", out.SecondaryURL)
	default:
		fmt.Fprintf(w, "Replication:  GRS, second copy at %s (NOT OK: %v)\n", out.SecondaryURL, st.SecondaryErr)
	}
	if st.HasPoints {
		fmt.Fprintf(w, "              fixed: recovery points are archived\n")
	} else {
		fmt.Fprintf(w, "              can still be changed (no recovery point archived yet)\n")
	}
	fmt.Fprintf(w, "Immutable:    %s\n", immutableText(out.ImmutableDays))
	if st.Config.Replication == vault.GRS {
		printPendingReplication(w, pending, pendingErr) // status.go
	}
	switch {
	case st.LatestIssue == nil:
		fmt.Fprintf(w, "Credentials:  none issued\n")
	case st.IssueValid:
		fmt.Fprintf(w, "Credentials:  newest file valid until %s\n", st.LatestIssue.ExpiresAt.Local().Format("2006-01-02 15:04 MST"))
	default:
		fmt.Fprintf(w, "Credentials:  newest file expired at %s\n", st.LatestIssue.ExpiresAt.Local().Format("2006-01-02 15:04 MST"))
	}
	current, _ := vault.CurrentRegistrations(st.Servers)
	fmt.Fprintf(w, "Servers:      %d registered\n", len(current))
	printServers(w, st.Servers, cfg.Server)
	return degraded
}

func printServers(w io.Writer, regs []vault.Registration, self string) {
	current, replaced := vault.CurrentRegistrations(regs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range current {
		mark := ""
		if strings.EqualFold(r.Server, self) {
			mark = " (this server)"
		}
		how := "registered"
		if r.TakeOver {
			how = "taken over"
		}
		fmt.Fprintf(tw, "  %s%s\t%s %s\tkey %s\n", termSafe(r.Server), mark, how, r.RegisteredAt.Local().Format("2006-01-02 15:04"), r.KeyFingerprint)
	}
	for _, r := range replaced {
		fmt.Fprintf(tw, "  %s (replaced)\tregistered %s\tkey %s\n", termSafe(r.Server), r.RegisteredAt.Local().Format("2006-01-02 15:04"), r.KeyFingerprint)
	}
	tw.Flush()
}

// vaultAccounts returns how to reach the configured vault.
func vaultAccounts(c *config) (vault.Account, *storage.Options) {
	o := storage.Options{AccessKey: c.Vault.AccessKey, SecretKey: c.Vault.SecretKey, Proxy: c.Proxy}
	var so *storage.Options
	if c.Vault.SecondaryAccessKey != "" {
		so = &storage.Options{AccessKey: c.Vault.SecondaryAccessKey, SecretKey: c.Vault.SecondarySecretKey, Proxy: c.Proxy}
	}
	return vault.Account{URL: c.Vault.URL, Options: o}, so
}

// openConfiguredVault opens the vault this server is registered to and
// brings the config's copy of the vault's settings up to date.
func openConfiguredVault(ctx context.Context, c *config) (*vault.Vault, error) {
	return siteOf(nil, c).OpenVaultAdmin(ctx)
}

// cachedSecondaryURL is the second copy the config names: none for LRS,
// whose vault config may still name a former, no longer maintained copy
// that restore must not fall back to.
func cachedSecondaryURL(vc vault.VaultConfig) string {
	if vc.Replication != vault.GRS {
		return ""
	}
	return vc.SecondaryURL
}

// syncVaultCache copies the vault's replication settings into c's vault
// section and saves c when they changed; it reports whether they did.
func syncVaultCache(c *config, vc vault.VaultConfig) (bool, error) {
	if c.Vault == nil || c.path == "" || !strings.EqualFold(c.Vault.Name, vc.Name) {
		return false, nil
	}
	sec := cachedSecondaryURL(vc)
	if c.Vault.Replication == string(vc.Replication) && c.Vault.SecondaryURL == sec && c.Vault.ImmutableDays == vc.ImmutableDays {
		return false, nil
	}
	c.Vault.Replication, c.Vault.SecondaryURL, c.Vault.ImmutableDays = string(vc.Replication), sec, vc.ImmutableDays
	// Rewrite the file as it is now, not as c was loaded: a long-running
	// command must not undo a 'configure' made since it started.
	fresh, err := loadConfig(c.path)
	if err != nil {
		return false, err
	}
	if fresh.Vault == nil || !strings.EqualFold(fresh.Vault.Name, vc.Name) {
		return false, nil
	}
	fresh.Vault.Replication, fresh.Vault.SecondaryURL, fresh.Vault.ImmutableDays = c.Vault.Replication, c.Vault.SecondaryURL, c.Vault.ImmutableDays
	if err := saveConfig(c.path, fresh); err != nil {
		return false, err
	}
	return true, nil
}

// shellQuote quotes s for a shell when it needs it, so hints can be pasted.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
