package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/humanize"
	"github.com/tapeless/tapeless/storage/vault"
)

func init() { addCommand(newRegisterCmd) }

type registerOptions struct {
	credentials        string
	passphraseFile     string
	generatePassphrase string
	store, staging     string
	throttle, proxy    string
	server             string
	takeOver           string
}

func newRegisterCmd(g *globalOptions) *cobra.Command {
	var o registerOptions
	c := &cobra.Command{
		Use:     "register --credentials FILE (--passphrase-file F | --generate-passphrase F) [--store DIR] [--staging DIR] [--throttle SPEC] [--proxy URL]",
		Short:   "Register this server to a vault",
		GroupID: groupVault,
		Long: `Register this server to the vault named in a vault credentials file (see
'tapeless vault credentials'; the file is valid for 48 hours, and only the
newest one issued works).

Registration generates this server's key pair, wraps the private key under
the encryption passphrase (argon2id, about a second to unwrap), stores that
envelope in the vault and in the local store, records the registration in
the vault, creates the store, and writes the configuration (mode 0600) with
the vault's location and access keys. Backups and offloads need no
passphrase; restoring does.

The passphrase has at least 16 characters. It comes from --passphrase-file,
else the file named by TAPELESS_PASSPHRASE_FILE, else a prompt on the
terminal; or --generate-passphrase F makes a long random one and writes it
to the new file F (mode 0600). tapeless never stores the passphrase: if it
is lost, the archived data cannot be recovered.

--throttle limits vault bandwidth, e.g. "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited".
--proxy is an http:// or https:// proxy for vault traffic.

--take-over NAME is for the day a server is lost: instead of making a new
key pair, this machine opens server NAME's key envelope from the vault with
NAME's passphrase and becomes NAME. Its backups and offloads continue
NAME's history (its archived points are this server's points again), and
the vault records the new registration as replacing the old one. Nothing of
the lost machine is needed. See docs/RECOVERY.md.`,
		Example: `  tapeless register --credentials backups_2026-11-26.VaultCredentials --generate-passphrase /root/tapeless.passphrase
  tapeless register --credentials backups.VaultCredentials --passphrase-file /root/pass \
      --store /var/lib/tapeless/store --staging /var/lib/tapeless/staging \
      --throttle "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"
  tapeless register --credentials backups.VaultCredentials --take-over web1 --passphrase-file /root/web1.pass`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRegister(cmd.Context(), g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.credentials, "credentials", "", "vault credentials file")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "file holding the encryption passphrase (at least 16 characters)")
	f.StringVar(&o.generatePassphrase, "generate-passphrase", "", "generate a passphrase and write it to this new file (0600)")
	f.StringVar(&o.store, "store", "", "local store folder (default "+defaultStorePath()+")")
	f.StringVar(&o.staging, "staging", "", "staging (recovery) folder for vault downloads (default: 'staging' beside the store)")
	f.StringVar(&o.throttle, "throttle", "", `vault bandwidth limits, e.g. "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited"`)
	f.StringVar(&o.proxy, "proxy", "", "http(s) proxy URL for vault traffic")
	f.StringVar(&o.server, "server", "", "this server's name in the vault (default: the host name)")
	f.StringVar(&o.takeOver, "take-over", "", "become the lost server NAME: use its key from the vault (needs its passphrase)")
	return c
}

// defaultStorePath is the store folder when --store is not given.
func defaultStorePath() string {
	if os.Geteuid() == 0 {
		return "/var/lib/tapeless/store"
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "tapeless", "store")
	}
	return "tapeless-store"
}

// checkProxy accepts an http:// or https:// proxy URL.
func checkProxy(p string) error {
	if p == "" {
		return nil
	}
	u, err := url.Parse(p)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid --proxy %q: want http://host:port or https://host:port", storage.Redact(p))
	}
	return nil
}

// checkThrottle validates a throttle SPEC; the error shows the expected form.
func checkThrottle(spec string) error {
	if spec == "" {
		return nil
	}
	_, err := storage.ParseThrottle(spec)
	return err
}

func runRegister(ctx context.Context, g *globalOptions, o registerOptions) error {
	// Everything that can be checked locally is checked before anything is
	// written, so a refused registration leaves no trace.
	if err := checkRegisterFlags(&o); err != nil {
		return err
	}
	server, err := registerServerName(o)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(g.configFile)
	switch {
	case errors.Is(err, errNoConfig):
		cfg = defaultConfig()
	case err != nil:
		return err
	case cfg.Vault != nil && cfg.Vault.Name != "":
		return fmt.Errorf("this server is already registered to vault %q (config %s): change settings with 'tapeless configure', or use another --config", cfg.Vault.Name, g.configFile)
	}
	store, staging, err := registerFolders(cfg, o)
	if err != nil {
		return err
	}
	if o.generatePassphrase != "" {
		if _, err := os.Lstat(o.generatePassphrase); err == nil {
			return fmt.Errorf("%s already exists; tapeless does not overwrite a passphrase file, choose another name", o.generatePassphrase)
		}
	}
	credData, err := os.ReadFile(o.credentials)
	if err != nil {
		return fmt.Errorf("read vault credentials file: %w (issue one with 'tapeless vault credentials NAME --url URL')", err)
	}
	if _, err := vault.ParseCredentials(credData); err != nil {
		return err
	}
	req := scheduler.RegisterRequest{Credentials: credData, Proxy: o.proxy, Server: server, TakeOver: o.takeOver != "",
		Store: store, Staging: staging, Version: version, Now: now}
	gen := &generatedPassphrase{g: g, path: o.generatePassphrase}
	defer func() { clear(gen.pass) }()
	if o.generatePassphrase != "" {
		req.NewPassphrase = gen.make
	} else {
		if req.Passphrase, err = readPassphrase(g, o.passphraseFile, o.takeOver == ""); err != nil {
			return err
		}
		defer clear(req.Passphrase)
		if err := archive.ValidatePassphrase(req.Passphrase); err != nil {
			return usageError{fmt.Errorf("%w; nothing was registered", err)}
		}
	}
	req.Save = func(r *scheduler.Registered) error {
		return saveConfig(g.configFile, registeredConfig(cfg, o, r, store, staging))
	}
	r, err := scheduler.Register(ctx, req)
	if err != nil {
		gen.undo() // the job has undone its own writes
		return err
	}
	return printRegistered(g, o, r, store, staging)
}

// checkRegisterFlags refuses flags that do not go together (usage
// errors); with --take-over the server's name is the lost one's.
func checkRegisterFlags(o *registerOptions) error {
	if o.passphraseFile != "" && o.generatePassphrase != "" {
		return usageError{errors.New("give either --passphrase-file or --generate-passphrase, not both")}
	}
	if o.credentials == "" {
		return usageError{errors.New("--credentials FILE is required: issue one with 'tapeless vault credentials NAME --url URL'")}
	}
	if err := checkThrottle(o.throttle); err != nil {
		return usageError{err}
	}
	if err := checkProxy(o.proxy); err != nil {
		return usageError{err}
	}
	if o.takeOver != "" {
		if o.generatePassphrase != "" {
			return usageError{errors.New("--take-over uses the lost server's passphrase: give it with --passphrase-file (or TAPELESS_PASSPHRASE_FILE, or at the prompt), not --generate-passphrase")}
		}
		if o.server != "" && !strings.EqualFold(o.server, o.takeOver) {
			return usageError{fmt.Errorf("--take-over %s registers this machine as %s: leave out --server %s", o.takeOver, o.takeOver, o.server)}
		}
		o.server = o.takeOver
	}
	return nil
}

// registerServerName is the name to register under: --server (or
// --take-over's), else the host name.
func registerServerName(o registerOptions) (string, error) {
	server := o.server
	if server == "" {
		var err error
		if server, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("host name: %w (pass --server NAME)", err)
		}
	}
	if err := vault.ValidateServerName(server); err != nil {
		return "", usageError{fmt.Errorf("%w (pass --server NAME)", err)}
	}
	return server, nil
}

// registerFolders returns the store and staging folders, absolute: the
// flags', else the configuration's, else the defaults. The store must be
// missing or empty.
func registerFolders(cfg *config, o registerOptions) (store, staging string, err error) {
	store = o.store
	if store == "" {
		store = cfg.Store
	}
	if store == "" {
		store = defaultStorePath()
	}
	if store, err = filepath.Abs(store); err != nil {
		return "", "", err
	}
	if _, err := scheduler.CheckNewStore(store); err != nil {
		return "", "", err
	}
	staging = o.staging
	if staging == "" {
		staging = cfg.Staging
	}
	if staging == "" {
		staging = filepath.Join(filepath.Dir(store), "staging")
	}
	if staging, err = filepath.Abs(staging); err != nil {
		return "", "", err
	}
	return store, staging, nil
}

// generatedPassphrase is --generate-passphrase: made and written to its
// new file only once the vault has accepted the registration, and that
// file removed again when the registration fails after all.
type generatedPassphrase struct {
	g       *globalOptions
	path    string
	pass    []byte
	written bool
}

func (p *generatedPassphrase) make() ([]byte, error) {
	gen, err := archive.GeneratePassphrase()
	if err != nil {
		return nil, err
	}
	p.pass = []byte(gen)
	if err := createPassphraseFile(p.path, p.pass); err != nil {
		return nil, err
	}
	p.written = true
	fmt.Fprintf(p.g.stderr, passphraseWarning, p.path)
	return p.pass, nil
}

// undo removes the passphrase file of a registration that failed.
func (p *generatedPassphrase) undo() {
	if p.written {
		os.Remove(p.path)
	}
}

// registeredConfig is cfg with the registration's settings.
func registeredConfig(cfg *config, o registerOptions, r *scheduler.Registered, store, staging string) *config {
	cfg.Store, cfg.Staging, cfg.Throttle, cfg.Proxy, cfg.Server = store, staging, o.throttle, o.proxy, r.Server
	creds := r.Credentials
	cfg.Vault = &vaultConfig{
		Name:           r.Vault.Name,
		URL:            r.Vault.PrimaryURL,
		SecondaryURL:   cachedSecondaryURL(r.Vault),
		Replication:    string(r.Vault.Replication),
		AccessKey:      creds.AccessKey,
		SecretKey:      creds.SecretKey,
		ImmutableDays:  r.Vault.ImmutableDays,
		KeyFingerprint: r.KeyFingerprint,

		SecondaryAccessKey: creds.SecondaryAccessKey,
		SecondarySecretKey: creds.SecondarySecretKey,
	}
	return cfg
}

// printRegistered says what register did, or writes its JSON.
func printRegistered(g *globalOptions, o registerOptions, r *scheduler.Registered, store, staging string) error {
	if r.AdoptErr != nil && !g.quiet {
		fmt.Fprintf(g.stderr, "warning: the vault's packs of key %s could not be read for deduplication (%v): the first backup stores its data again\n",
			r.KeyFingerprint, r.AdoptErr)
	}
	if g.json {
		out := registerJSON{Vault: r.Vault.Name, Server: r.Server, KeyFingerprint: r.KeyFingerprint, Store: store,
			Staging: staging, Config: g.configFile, Replication: string(r.Vault.Replication), PassphraseFile: o.generatePassphrase}
		if r.TakeOver {
			out.Adopted = &r.Adopted
		}
		return writeJSON(g.stdout, out)
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Registered server %q to vault %q (%s) at %s.\n", r.Server, r.Vault.Name, r.Vault.Replication, r.Vault.PrimaryURL)
		fmt.Fprintf(g.stdout, "Key fingerprint %s; store %s; staging %s.\n", r.KeyFingerprint, store, staging)
		fmt.Fprintf(g.stdout, "Configuration written to %s (mode 0600).\n", g.configFile)
		if r.TakeOver && r.AdoptErr == nil {
			fmt.Fprintf(g.stdout, "Deduplication continues from the vault: %d packs (%s, %d blobs) of key %s are known to the new store.\n",
				r.Adopted.Packs, humanize.Bytes(r.Adopted.Bytes), r.Adopted.Blobs, r.KeyFingerprint)
		}
	}
	return nil
}

// registerJSON is the JSON of `register`.
type registerJSON struct {
	Vault          string `json:"vault"`
	Server         string `json:"server"`
	KeyFingerprint string `json:"key_fingerprint"`
	Store          string `json:"store"`
	Staging        string `json:"staging"`
	Config         string `json:"config"`
	Replication    string `json:"replication"`
	PassphraseFile string `json:"passphrase_file,omitempty"` // with --generate-passphrase: where it was written
	// Adopted (--take-over only): the vault's packs of the key the new
	// store deduplicates against.
	Adopted *archive.AdoptStats `json:"adopted,omitempty"`
}
