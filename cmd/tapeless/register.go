package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/storage"
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

// emptyOrMissingDir reports whether dir can become a new store.
func emptyOrMissingDir(dir string) (existed bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store folder: %w", err)
	}
	if len(entries) > 0 {
		return true, fmt.Errorf("store folder %s is not empty; registration creates a new store (choose another --store)", dir)
	}
	return true, nil
}

func runRegister(ctx context.Context, g *globalOptions, o registerOptions) (err error) {
	// Everything that can be checked locally is checked before anything is
	// written, so a refused registration leaves no trace.
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
	server := o.server
	if server == "" {
		if server, err = os.Hostname(); err != nil {
			return fmt.Errorf("host name: %w (pass --server NAME)", err)
		}
	}
	if err := vault.ValidateServerName(server); err != nil {
		return usageError{fmt.Errorf("%w (pass --server NAME)", err)}
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
	store := o.store
	if store == "" {
		store = cfg.Store
	}
	if store == "" {
		store = defaultStorePath()
	}
	if store, err = filepath.Abs(store); err != nil {
		return err
	}
	storeExisted, err := emptyOrMissingDir(store)
	if err != nil {
		return err
	}
	staging := o.staging
	if staging == "" {
		staging = cfg.Staging
	}
	if staging == "" {
		staging = filepath.Join(filepath.Dir(store), "staging")
	}
	if staging, err = filepath.Abs(staging); err != nil {
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

	var pass []byte
	if o.generatePassphrase == "" {
		if pass, err = readPassphrase(g, o.passphraseFile, o.takeOver == ""); err != nil {
			return err
		}
		defer clear(pass)
		if err := archive.ValidatePassphrase(pass); err != nil {
			return usageError{fmt.Errorf("%w; nothing was registered", err)}
		}
	}

	creds, v, err := vault.ValidateCredentials(ctx, credData, now(), storage.Options{Proxy: o.proxy})
	if err != nil {
		return err
	}
	defer v.Close()
	var taken *archive.Keys
	var takenEnv []byte
	if o.takeOver != "" {
		if taken, takenEnv, err = takeOverKeys(ctx, v, o.takeOver, pass); err != nil {
			return err
		}
		server = takenServer(ctx, v, o.takeOver)
	} else if err := checkServerNameFree(ctx, v, server); err != nil {
		return err
	}

	// From here on things are written; undo the local ones on failure so
	// that the command can simply be run again.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if o.generatePassphrase != "" {
		gen, err := archive.GeneratePassphrase()
		if err != nil {
			return err
		}
		pass = []byte(gen)
		defer clear(pass)
		if err := createPassphraseFile(o.generatePassphrase, pass); err != nil {
			return err
		}
		path := o.generatePassphrase
		undo = append(undo, func() { os.Remove(path) })
		fmt.Fprintf(g.stderr, passphraseWarning, o.generatePassphrase)
	}

	keys, env := taken, takenEnv
	if keys == nil {
		if keys, err = archive.GenerateKeys(); err != nil {
			return err
		}
		if env, err = archive.WrapKeys(keys, pass); err != nil {
			return fmt.Errorf("wrap keys: %w", err)
		}
	}
	fp := keys.Fingerprint
	undo = append(undo, func() {
		if storeExisted {
			entries, _ := os.ReadDir(store)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(store, e.Name()))
			}
		} else {
			os.RemoveAll(store)
		}
	})
	if err := archive.InitStore(ctx, store, keys.PublicKeys, env); err != nil {
		return fmt.Errorf("create store %s: %w", store, err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return fmt.Errorf("create staging folder: %w", err)
	}
	if taken == nil { // a taken-over key's envelope is already in the vault
		if _, err := v.SaveKeyEnvelope(ctx, fp, env); err != nil {
			return err
		}
	}
	t := now()
	if err := v.Register(ctx, vault.Registration{
		Server: server, RegisteredAt: t, KeyFingerprint: fp, CredentialsSerial: creds.Serial, Version: version,
		TakeOver: taken != nil,
	}); err != nil {
		return err
	}

	cfg.Store, cfg.Staging, cfg.Throttle, cfg.Proxy, cfg.Server = store, staging, o.throttle, o.proxy, server
	cfg.Vault = &vaultConfig{
		Name:           v.Name(),
		URL:            v.Config.PrimaryURL,
		SecondaryURL:   cachedSecondaryURL(v.Config),
		Replication:    string(v.Config.Replication),
		AccessKey:      creds.AccessKey,
		SecretKey:      creds.SecretKey,
		ImmutableDays:  v.Config.ImmutableDays,
		KeyFingerprint: fp,

		SecondaryAccessKey: creds.SecondaryAccessKey,
		SecondarySecretKey: creds.SecondarySecretKey,
	}
	if err := saveConfig(g.configFile, cfg); err != nil {
		return err
	}

	if g.json {
		return writeJSON(g.stdout, registerJSON{Vault: v.Name(), Server: server, KeyFingerprint: fp, Store: store,
			Staging: staging, Config: g.configFile, Replication: string(v.Config.Replication), PassphraseFile: o.generatePassphrase})
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Registered server %q to vault %q (%s) at %s.\n", server, v.Name(), v.Config.Replication, v.Config.PrimaryURL)
		fmt.Fprintf(g.stdout, "Key fingerprint %s; store %s; staging %s.\n", fp, store, staging)
		fmt.Fprintf(g.stdout, "Configuration written to %s (mode 0600).\n", g.configFile)
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
}

// checkServerNameFree refuses a second registration under a name the vault
// already knows: two servers of one name would show as one in the vault's
// list and their points could not be told apart.
func checkServerNameFree(ctx context.Context, v *vault.Vault, server string) error {
	regs, err := v.Registrations(ctx)
	if err != nil {
		return err
	}
	for _, r := range regs {
		if strings.EqualFold(r.Server, server) {
			return fmt.Errorf("server %q is already registered to vault %q (since %s, key %s); nothing was registered: register this server under another name with --server NAME",
				r.Server, v.Name(), r.RegisteredAt.Local().Format("2006-01-02 15:04"), r.KeyFingerprint)
		}
	}
	return nil
}

// takeOverKeys opens the key envelope of the lost server's current key
// from the vault with its passphrase. Nothing is written.
func takeOverKeys(ctx context.Context, v *vault.Vault, server string, pass []byte) (*archive.Keys, []byte, error) {
	regs, err := v.Registrations(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, err := vault.ServerKey(regs, server)
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: %w", server, err)
	}
	env, _, err := v.LoadKeyEnvelope(ctx, r.KeyFingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: its key envelope (key %s): %w", r.Server, r.KeyFingerprint, err)
	}
	k, err := archive.UnwrapKeys(env, pass)
	if errors.Is(err, archive.ErrWrongPassphrase) {
		return nil, nil, fmt.Errorf("take over %s: the passphrase does not open its key (key %s): give the passphrase of %s, not of this machine; nothing was registered", r.Server, r.KeyFingerprint, r.Server)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("take over %s: %w", r.Server, err)
	}
	return k, env, nil
}

// takenServer is the lost server's name as registered (its case).
func takenServer(ctx context.Context, v *vault.Vault, server string) string {
	if regs, err := v.Registrations(ctx); err == nil {
		if r, err := vault.ServerKey(regs, server); err == nil {
			return r.Server
		}
	}
	return server
}
