package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/vault"
)

func init() { addCommand(newConfigCmd) }

func newConfigCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:     "config",
		Short:   "Check the configuration file",
		GroupID: groupService,
		Long: `Config works on the configuration file (--config): 'config check' validates
every setting and reports each problem. docs/CONFIG.md describes every key.`,
		Example: `  tapeless config check`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("config needs a subcommand: 'tapeless config check'")}
		},
	}
	c.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate every setting of the configuration file and report each problem",
		Long: `Check reads the configuration file (--config) and reports every problem it
finds, not only the first, each with the key and, where known, its line:
unknown keys (with the nearest known one), values of the wrong type, cron
expressions of the sources' schedules and of jobs: (offload, prune, verify)
that do not parse, an unknown jobs.time_zone, a source path that does not
exist or is not absolute, an invalid exclude pattern, an exclude file that
cannot be read, a throttle SPEC that does not parse, a retention policy that
does not validate, a notify.webhook that is not an http(s) URL and a notify
command that cannot be found. The daemon refuses a configuration that fails
this check. docs/CONFIG.md describes every key.

Exit codes: 0 valid, 1 problems found (or no file to read), 2 usage.`,
		Example: `  tapeless config check
  tapeless config check --config /etc/tapeless/config.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigCheck(g)
		},
	})
	return c
}

// configProblem is one thing wrong with the configuration file.
type configProblem struct {
	Key     string `json:"key,omitempty"` // e.g. sources[0].schedule
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

func (p configProblem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", p.Line, p.Column)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Message)
	return b.String()
}

// configCheckResult is what config check prints.
type configCheckResult struct {
	Config   string          `json:"config"`
	Valid    bool            `json:"valid"`
	Sources  int             `json:"sources"`
	Problems []configProblem `json:"problems"`
}

func runConfigCheck(g *globalOptions) error {
	res := configCheckResult{Config: g.configFile, Problems: []configProblem{}}
	b, err := os.ReadFile(g.configFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w at %s: run 'tapeless register' first, or pass --config", errNoConfig, g.configFile)
	}
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	c, problems := checkConfigBytes(b, g.configFile)
	res.Problems = append(res.Problems, problems...)
	if c != nil {
		res.Sources = len(c.Sources)
	}
	res.Valid = len(res.Problems) == 0
	if g.json {
		if err := writeJSON(g.stdout, res); err != nil {
			return err
		}
	} else if !g.quiet || !res.Valid {
		printConfigCheck(g.stdout, res)
	}
	if !res.Valid {
		return fmt.Errorf("%s: %d problem%s", g.configFile, len(res.Problems), plural(len(res.Problems)))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func printConfigCheck(w io.Writer, r configCheckResult) {
	if r.Valid {
		fmt.Fprintf(w, "%s is valid (%d source%s).\n", termSafe(r.Config), r.Sources, plural(r.Sources))
		return
	}
	fmt.Fprintf(w, "%s has %d problem%s:\n", termSafe(r.Config), len(r.Problems), plural(len(r.Problems)))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s\n", termSafeText(p.String()))
	}
}

// checkConfigBytes parses and validates a configuration file's text
// (loaded from path, against which relative exclude files resolve). The
// config is nil when the text is not YAML at all.
func checkConfigBytes(b []byte, path string) (*config, []configProblem) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, []configProblem{{Message: "not valid YAML: " + err.Error()}}
	}
	c := defaultConfig()
	var problems []configProblem
	for _, k := range unknownKeys(&doc, reflect.TypeOf(*c)) {
		msg := strings.Replace(k.message, fmt.Sprintf(" at line %d, column %d", k.line, k.column), "", 1)
		problems = append(problems, configProblem{Line: k.line, Column: k.column, Message: msg})
	}
	// Decoded without KnownFields: the unknown keys are reported above,
	// and every other setting is still worth checking.
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				problems = append(problems, typeProblem(e))
			}
		} else {
			problems = append(problems, typeProblem(err.Error()))
		}
	}
	c.path = path
	at := func(key string, keyPath ...any) configProblem {
		p := configProblem{Key: key}
		if n := findNode(&doc, keyPath...); n != nil {
			p.Line, p.Column = n.Line, n.Column
		}
		return p
	}
	for _, p := range validateConfig(c) {
		q := at(p.key, p.path...)
		q.Message = p.msg
		problems = append(problems, q)
	}
	// In file order; problems of settings left at their defaults (no
	// line) last.
	sort.SliceStable(problems, func(i, j int) bool {
		li, lj := problems[i].Line, problems[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj || li == lj && problems[i].Column < problems[j].Column
	})
	return c, problems
}

// typeProblem turns yaml's "line 3: cannot unmarshal ..." into a problem
// with its line.
func typeProblem(msg string) configProblem {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return configProblem{Line: line, Column: 1, Message: tail}
			}
		}
	}
	return configProblem{Message: msg}
}

// keyProblem is a problem found in a decoded config: the key as shown and
// the path to its YAML node (map keys and list indexes) for its line.
type keyProblem struct {
	key  string
	path []any
	msg  string
}

// validateConfig checks every setting of a decoded configuration. The
// daemon and the source commands call it too, so all three refuse the
// same things.
func validateConfig(c *config) []keyProblem {
	var ps []keyProblem
	add := func(msg string, path ...any) {
		ps = append(ps, keyProblem{key: keyName(path), path: path, msg: msg})
	}
	addErr := func(err error, path ...any) {
		for _, e := range splitErrors(err) {
			add(e.Error(), path...)
		}
	}
	if c.Store == "" {
		add("not set: the folder of the local store (tapeless register --store DIR)", "store")
	} else if !filepath.IsAbs(c.Store) {
		add(fmt.Sprintf("%q is not an absolute path", c.Store), "store")
	}
	if c.Staging != "" && !filepath.IsAbs(c.Staging) {
		add(fmt.Sprintf("%q is not an absolute path", c.Staging), "staging")
	}
	if c.Throttle != "" {
		if _, err := storage.ParseThrottle(c.Throttle); err != nil {
			add(err.Error(), "throttle")
		}
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Scheme == "" || u.Host == "" {
			add(fmt.Sprintf("%q is not a URL such as http://proxy.example:3128", c.Proxy), "proxy")
		}
	}
	if c.Server != "" {
		if err := vault.ValidateServerName(c.Server); err != nil {
			add(err.Error(), "server")
		}
	}
	if c.Vault != nil {
		if err := vault.ValidateVaultName(c.Vault.Name); err != nil {
			add(err.Error(), "vault", "name")
		}
		if c.Vault.URL == "" {
			add("not set: the account location of the vault (written by 'tapeless register')", "vault", "url")
		}
		if r := c.Vault.Replication; r != "" && r != "GRS" && r != "LRS" {
			add(fmt.Sprintf("%q: want GRS or LRS", r), "vault", "replication")
		}
	}
	addErr(policyFromConfig(c).Validate(), "retention")

	zone := c.Jobs.TimeZone
	if _, err := scheduler.LoadZone(zone); err != nil {
		add(err.Error(), "jobs", "time_zone")
		zone = "" // reported once, not again for each schedule
	}
	for _, j := range []struct{ name, spec string }{{"offload", c.Jobs.Offload}, {"prune", c.Jobs.Prune}, {"verify", c.Jobs.Verify}} {
		if j.spec == "" {
			continue
		}
		if _, err := scheduler.ParseSchedule(j.spec, zone); err != nil {
			add(err.Error(), "jobs", j.name)
		}
	}

	names := map[string]int{}
	for i, s := range c.Sources {
		for _, p := range checkSource(c, s, zone) {
			add(p.msg, append([]any{"sources", i}, p.path...)...)
		}
		if prev, dup := names[s.Name]; dup && s.Name != "" {
			add(fmt.Sprintf("%q is also the name of sources[%d]", s.Name, prev), "sources", i, "name")
		} else {
			names[s.Name] = i
		}
	}

	if w := c.Notify.Webhook; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(fmt.Sprintf("%q is not an http:// or https:// URL", w), "notify", "webhook")
		}
	}
	for _, h := range []struct {
		key  string
		argv []string
	}{{"on_failure", c.Notify.OnFailure}, {"on_recovery", c.Notify.OnRecovery}} {
		if len(h.argv) == 0 {
			continue
		}
		if h.argv[0] == "" {
			add("the command is empty: give it as a list, command first: [\"/usr/local/bin/page-me\", \"--urgent\"]", "notify", h.key)
		} else if _, err := exec.LookPath(h.argv[0]); err != nil {
			add(fmt.Sprintf("command %q cannot be run: %v", h.argv[0], errors.Unwrap(err)), "notify", h.key)
		}
	}
	return ps
}

// checkSource checks one configured source; paths are relative to the
// source's node. zone is the jobs' time zone, its schedule's too.
func checkSource(c *config, s sourceConfig, zone string) []keyProblem {
	var ps []keyProblem
	add := func(msg string, path ...any) { ps = append(ps, keyProblem{path: path, msg: msg}) }
	switch {
	case s.Name == "":
		add("not set: the data source name points are filed under", "name")
	case strings.Contains(s.Name, "/"):
		add(fmt.Sprintf("%q holds a /: 'tapeless backup NAME' would take it for a path", s.Name), "name")
	}
	switch {
	case s.Path == "":
		add("not set: the directory or file to back up", "path")
	case !filepath.IsAbs(s.Path):
		add(fmt.Sprintf("%q is not an absolute path", s.Path), "path")
	default:
		if _, err := os.Stat(s.Path); err != nil {
			add(fmt.Sprintf("%s: %v", s.Path, pathErrText(err)), "path")
		}
	}
	if s.Schedule != "" {
		if _, err := scheduler.ParseSchedule(s.Schedule, zone); err != nil {
			add(err.Error(), "schedule")
		}
	}
	for j, p := range s.Exclude {
		if _, err := archive.CompileExcludes([]string{p}); err != nil {
			add(err.Error(), "exclude", j)
		}
	}
	for j, f := range s.ExcludeFile {
		p, err := archive.ReadExcludeFile(c.resolvePath(f))
		if err == nil {
			_, err = archive.CompileExcludes(p)
		}
		for _, e := range splitErrors(err) {
			add(e.Error(), "exclude_file", j)
		}
	}
	return ps
}

// pathErrText is a stat error without the path, which is said already.
func pathErrText(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return errors.New("does not exist")
		}
		return pe.Err
	}
	return err
}

// splitErrors undoes errors.Join (nil → none).
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// keyName shows a node path as a key: sources[0].exclude[2].
func keyName(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch v := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// findNode follows path (map keys, list indexes) from the document and
// returns the deepest node it reaches: the value's node, or the key's
// when the value is a collection, so the line is where the key is. nil
// when not even the first step exists (a default).
func findNode(doc *yaml.Node, path ...any) *yaml.Node {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var found *yaml.Node
	for _, p := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next, at *yaml.Node
		switch v := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return found
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == v {
					at, next = n.Content[i], n.Content[i+1]
				}
			}
		case int:
			if n.Kind != yaml.SequenceNode || v >= len(n.Content) {
				return found
			}
			at, next = n.Content[v], n.Content[v]
		}
		if next == nil {
			return found
		}
		found = at
		if next.Kind == yaml.ScalarNode {
			found = next
		}
		n = next
	}
	return found
}

// unknownKey is one key of the file that no setting has.
type unknownKey struct {
	line, column int
	message      string
}

// unknownKeys lists every key of the YAML tree n that the Go type t has
// no field for, in file order (checkKnownKeys stops at the first).
func unknownKeys(n *yaml.Node, t reflect.Type) []unknownKey {
	var out []unknownKey
	var walk func(n *yaml.Node, t reflect.Type)
	walk = func(n *yaml.Node, t reflect.Type) {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case n.Kind == yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, t)
			}
		case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
			for _, c := range n.Content {
				walk(c, t.Elem())
			}
		case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "<<" {
					continue
				}
				ft, ok := fields[k.Value]
				if !ok {
					out = append(out, unknownKey{k.Line, k.Column, unknownKeyError(k, fields).Error()})
					continue
				}
				walk(v, ft)
			}
		}
	}
	walk(n, t)
	return out
}
