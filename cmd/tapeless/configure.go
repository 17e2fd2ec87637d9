package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
)

func init() { addCommand(newConfigureCmd) }

type configureOptions struct {
	staging, throttle, proxy string
	changePassphrase         bool
	repairKeys               bool
	passphraseFile           string
	newPassphraseFile        string
}

func newConfigureCmd(g *globalOptions) *cobra.Command {
	var o configureOptions
	c := &cobra.Command{
		Use:     "configure [--staging DIR] [--throttle SPEC] [--proxy URL] [--change-passphrase]",
		Short:   "Change registration settings without registering again",
		GroupID: groupVault,
		Long: `Change the settings given at registration: the staging (recovery) folder,
the vault bandwidth throttle, the proxy, and the encryption passphrase.
--throttle "" and --proxy "" remove the setting.

--change-passphrase needs the current passphrase (--passphrase-file, or
TAPELESS_PASSPHRASE_FILE, or a prompt) and the new one (--new-passphrase-file,
or a prompt; at least 16 characters). The private key is unwrapped with the
current passphrase and wrapped again under the new one; the new envelope
replaces the old one in the store and in the vault, and the old envelopes
are removed from the vault, so the old passphrase no longer opens anything.
On a vault with object lock the old envelope can be removed only when its
lock ends: tapeless says so, and until then the old passphrase still opens
that copy.

--repair-keys rebuilds the store's public-keys file from the key envelope
(it needs the passphrase, from --passphrase-file or as above) when backup,
offload or verify report it damaged or copied from another store, and
records its digest so later damage is caught without the passphrase (stores
made by older versions lack it). A store key envelope that is damaged is
replaced by the vault's, and a vault that lacks a usable envelope of the
store's key gets the store's.`,
		Example: `  tapeless configure --staging /var/tmp/tapeless-staging
  tapeless configure --throttle "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited" --proxy http://proxy:3128
  tapeless configure --change-passphrase --passphrase-file old.pass --new-passphrase-file new.pass
  tapeless configure --repair-keys --passphrase-file /root/tapeless.passphrase`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			return runConfigure(cmd.Context(), g, o, f.Changed("staging"), f.Changed("throttle"), f.Changed("proxy"))
		},
	}
	f := c.Flags()
	f.StringVar(&o.staging, "staging", "", "staging (recovery) folder for vault downloads")
	f.StringVar(&o.throttle, "throttle", "", `vault bandwidth limits, e.g. "work=Mon-Fri 08:00-18:00 4MiB/s; off=unlimited" ("" removes)`)
	f.StringVar(&o.proxy, "proxy", "", `http(s) proxy URL for vault traffic ("" removes)`)
	f.BoolVar(&o.changePassphrase, "change-passphrase", false, "change the encryption passphrase")
	f.BoolVar(&o.repairKeys, "repair-keys", false, "rebuild the store's damaged key files from the key envelope (needs the passphrase)")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "file holding the current passphrase (with --change-passphrase or --repair-keys)")
	f.StringVar(&o.newPassphraseFile, "new-passphrase-file", "", "file holding the new passphrase (with --change-passphrase)")
	return c
}

func runConfigure(ctx context.Context, g *globalOptions, o configureOptions, setStaging, setThrottle, setProxy bool) error {
	if o.repairKeys {
		return runRepairKeys(ctx, g, o, setStaging || setThrottle || setProxy)
	}
	if !setStaging && !setThrottle && !setProxy && !o.changePassphrase {
		return usageError{errors.New("nothing to change: give --staging, --throttle, --proxy or --change-passphrase")}
	}
	if !o.changePassphrase && (o.passphraseFile != "" || o.newPassphraseFile != "") {
		return usageError{errors.New("--passphrase-file and --new-passphrase-file go with --change-passphrase")}
	}
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	if cfg.Vault == nil || cfg.Vault.Name == "" {
		return errors.New("this server is not registered to a vault: run 'tapeless register --credentials FILE' first")
	}
	var changes []string
	if setThrottle {
		if err := checkThrottle(o.throttle); err != nil {
			return usageError{err}
		}
		cfg.Throttle = o.throttle
		changes = append(changes, "throttle "+orNone(o.throttle))
	}
	if setProxy {
		if err := checkProxy(o.proxy); err != nil {
			return usageError{err}
		}
		cfg.Proxy = o.proxy
		changes = append(changes, "proxy "+orNone(o.proxy))
	}
	if setStaging {
		if o.staging == "" {
			return usageError{errors.New("--staging needs a folder")}
		}
		dir, err := filepath.Abs(o.staging)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create staging folder: %w", err)
		}
		cfg.Staging = dir
		changes = append(changes, "staging "+dir)
	}
	if o.changePassphrase {
		msg, err := changePassphrase(ctx, g, cfg, o)
		if err != nil {
			return err
		}
		changes = append(changes, msg)
	}
	if setStaging || setThrottle || setProxy {
		if err := saveConfig(g.configFile, cfg); err != nil {
			return err
		}
	}
	if g.json {
		return writeJSON(g.stdout, configureJSON{Changed: changes, Config: g.configFile})
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Changed: %s.\n", strings.Join(changes, "; "))
	}
	return nil
}

// runRepairKeys is `configure --repair-keys`, given alone: it also works
// on a store with no vault configured.
func runRepairKeys(ctx context.Context, g *globalOptions, o configureOptions, otherSettings bool) error {
	if otherSettings || o.changePassphrase || o.newPassphraseFile != "" {
		return usageError{errors.New("--repair-keys goes alone (with --passphrase-file): change other settings in a second run")}
	}
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	msg, err := repairKeys(ctx, g, cfg, o.passphraseFile)
	if err != nil {
		return err
	}
	if g.json {
		return writeJSON(g.stdout, configureJSON{Changed: []string{}, Repaired: msg, Config: g.configFile})
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Repaired: %s.\n", msg)
	}
	return nil
}

// configureJSON is the JSON of `configure`: what changed, in words.
type configureJSON struct {
	Changed  []string `json:"changed"`
	Repaired string   `json:"repaired,omitempty"` // --repair-keys: what was rebuilt
	Config   string   `json:"config"`
}

func orNone(s string) string {
	if s == "" {
		return "removed"
	}
	return fmt.Sprintf("%q", s)
}

// changePassphrase re-wraps the private key under a new passphrase: the
// vault gets the new envelope first (the next keys/<fp>/<seq>), then the
// store, then the vault's older envelopes are removed. A crash in between
// leaves one place with the old and one with the new passphrase; running
// the command again with the old one finishes the change.
func changePassphrase(ctx context.Context, g *globalOptions, cfg *config, o configureOptions) (string, error) {
	oldPass, err := readPassphrasePrompt(g, o.passphraseFile, "Current passphrase", false)
	if err != nil {
		return "", err
	}
	defer clear(oldPass)
	var newPass []byte
	if o.newPassphraseFile != "" {
		newPass, err = readPassphraseFile(o.newPassphraseFile)
	} else {
		// Not TAPELESS_PASSPHRASE_FILE: that names the current one.
		newPass, err = promptPassphrase(g, "New passphrase", true,
			"a new passphrase is needed: pass --new-passphrase-file FILE, or run on a terminal to be prompted")
	}
	if err != nil {
		return "", err
	}
	defer clear(newPass)
	if err := archive.ValidatePassphrase(newPass); err != nil {
		return "", usageError{fmt.Errorf("new %w; nothing was changed", err)}
	}
	if string(newPass) == string(oldPass) {
		return "", usageError{errors.New("the new passphrase is the current one; nothing was changed")}
	}

	fp, left, warn, err := scheduler.ChangePassphrase(ctx, siteOf(g, cfg), oldPass, newPass)
	if err != nil {
		return "", err
	}
	if warn != nil {
		fmt.Fprintf(g.stderr, "WARNING: %d old key envelope(s) could not be removed from the vault (%v); until they are, the old passphrase still opens them: %s\n",
			len(left), warn, strings.Join(left, ", "))
	}
	return "passphrase (key " + fp + ")", nil
}
