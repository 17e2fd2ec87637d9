package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// config is the YAML configuration file. `register` writes it (mode 0600,
// since it may hold S3 access keys); `configure` edits it. It never holds
// the passphrase.
type config struct {
	Store     string          `yaml:"store"`
	Staging   string          `yaml:"staging,omitempty"`
	Throttle  string          `yaml:"throttle,omitempty"`
	Proxy     string          `yaml:"proxy,omitempty"`
	Server    string          `yaml:"server,omitempty"` // this server's name in the vault
	Vault     *vaultConfig    `yaml:"vault,omitempty"`
	Retention retentionConfig `yaml:"retention"`
	Sources   []sourceConfig  `yaml:"sources,omitempty"`
	Jobs      jobsConfig      `yaml:"jobs,omitempty"`

	// path is the file the config was loaded from ("" for a new one).
	path string
}

// vaultConfig is the vault part of the config, written by `register`.
//
// The vault's own config object is the one source of truth for its
// settings. Replication, SecondaryURL and ImmutableDays here are a local
// copy of it, which `status` shows without contacting the vault and
// restore uses to find the second copy when the primary cannot be opened;
// every command that opens the vault brings them up to date (syncVaultCache),
// so a 'vault set-replication' made elsewhere reaches this file.
type vaultConfig struct {
	Name         string `yaml:"name"`
	URL          string `yaml:"url"`                     // account location the vault lives under
	SecondaryURL string `yaml:"secondary_url,omitempty"` // GRS second copy (copy of the vault's setting)
	Replication  string `yaml:"replication"`             // GRS or LRS (copy of the vault's setting)
	AccessKey    string `yaml:"access_key,omitempty"`
	SecretKey    string `yaml:"secret_key,omitempty"`
	// Keys for the secondary endpoint when they differ from the primary's.
	SecondaryAccessKey string `yaml:"secondary_access_key,omitempty"`
	SecondarySecretKey string `yaml:"secondary_secret_key,omitempty"`
	ImmutableDays      int    `yaml:"immutable_days,omitempty"`
	KeyFingerprint     string `yaml:"key_fingerprint,omitempty"`
}

type retentionConfig struct {
	Local localRetention `yaml:"local"`
	Vault vaultRetention `yaml:"vault"`
}

type localRetention struct {
	KeepWithin duration `yaml:"keep_within"`
	KeepLast   int      `yaml:"keep_last"`
}

type vaultRetention struct {
	Daily   int `yaml:"daily"`
	Weekly  int `yaml:"weekly"`
	Monthly int `yaml:"monthly"`
	Yearly  int `yaml:"yearly"`
}

type sourceConfig struct {
	Name     string   `yaml:"name"`
	Path     string   `yaml:"path"`
	Schedule string   `yaml:"schedule,omitempty"`
	Exclude  []string `yaml:"exclude,omitempty"`
}

type jobsConfig struct {
	Offload string `yaml:"offload,omitempty"`
	Prune   string `yaml:"prune,omitempty"`
	Verify  string `yaml:"verify,omitempty"`
}

// defaultConfig is what a fresh registration starts from.
func defaultConfig() *config {
	return &config{
		Retention: retentionConfig{
			Local: localRetention{KeepWithin: duration(14 * 24 * time.Hour), KeepLast: 2},
			Vault: vaultRetention{Daily: 30, Weekly: 12, Monthly: 24, Yearly: 10},
		},
		Jobs: jobsConfig{Offload: "0 3 * * *", Prune: "0 5 * * 0", Verify: "0 6 1 * *"},
	}
}

// errNoConfig means the config file does not exist yet.
var errNoConfig = errors.New("no configuration")

// loadConfig reads the config file at path.
func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: run 'tapeless register' first, or pass --config", errNoConfig, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c := defaultConfig()
	if err := yaml.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// saveConfig writes c atomically with mode 0600: it may hold access keys.
func saveConfig(path string, c *config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.tmp")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// duration is a time.Duration that also accepts days ("14d") and weeks
// ("2w"), the units retention is naturally written in.
type duration time.Duration

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid duration %q: want e.g. 14d, 2w or 36h", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 14d, 2w or 36h", s)
	}
	return d, nil
}

func (d duration) MarshalYAML() (any, error) {
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", td/(24*time.Hour)), nil
	}
	return td.String(), nil
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}
