package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapeless/tapeless/storage"
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
	Notify    notifyConfig    `yaml:"notify,omitempty"`

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
	Schedule string   `yaml:"schedule,omitempty"` // backup schedule (cron)
	Exclude  []string `yaml:"exclude,omitempty"`  // gitignore-style patterns
	// ExcludeFile names files of patterns, one per line.
	ExcludeFile []string `yaml:"exclude_file,omitempty"`
	// ExcludeCaches skips directories holding a CACHEDIR.TAG.
	ExcludeCaches bool `yaml:"exclude_caches,omitempty"`
	// OneFileSystem stays on the file system of the source path.
	OneFileSystem bool `yaml:"one_file_system,omitempty"`
}

// jobsConfig is the daemon's schedule: cron expressions (five fields, or
// six with seconds first; @daily, @every 6h), in TimeZone (the local zone
// when empty).
type jobsConfig struct {
	Offload  string `yaml:"offload,omitempty"`
	Prune    string `yaml:"prune,omitempty"`
	Verify   string `yaml:"verify,omitempty"`
	TimeZone string `yaml:"time_zone,omitempty"`
}

// notifyConfig says whom the daemon tells when a job fails and when it
// succeeds again after failing.
type notifyConfig struct {
	Webhook    string   `yaml:"webhook,omitempty"`     // URL: a JSON POST per event
	OnFailure  []string `yaml:"on_failure,omitempty"`  // command and arguments, run per failure
	OnRecovery []string `yaml:"on_recovery,omitempty"` // command and arguments, run per recovery
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
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	// A mistyped key would otherwise be ignored and its setting silently
	// left at the default ('retenton:' keeps the default retention).
	if err := checkKnownKeys(&doc, reflect.TypeOf(*c)); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// checkKnownKeys returns an error naming every mapping key of the YAML
// tree n that the Go type t it decodes into has no field for, each with
// its line and column and the closest known key when one is near.
func checkKnownKeys(n *yaml.Node, t reflect.Type) error {
	var errs []error
	for _, k := range unknownKeys(n, t) {
		errs = append(errs, errors.New(k.message))
	}
	return errors.Join(errs...)
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func unknownKeyError(k *yaml.Node, fields map[string]reflect.Type) error {
	msg := fmt.Sprintf("unknown key %s at line %d, column %d", k.Value, k.Line, k.Column)
	best, bestD := "", 0
	for name := range fields {
		d := editDistance(strings.ToLower(k.Value), name)
		if best == "" || d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	// Close means a typo: at most 2 edits, and fewer than a third of the key.
	if best != "" && bestD <= 2 && bestD*3 <= len(best) {
		return fmt.Errorf("%s: did you mean %s?", msg, best)
	}
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	sort.Strings(known)
	return fmt.Errorf("%s: the keys here are %s", msg, strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolvePath makes a relative path in the configuration (an exclude file)
// relative to the configuration file's folder, so it means the same from
// any working directory.
func (c *config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
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
	if err := storage.WriteFileAtomic(path, b, 0o600); err != nil {
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
