package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { addCommand(newSourceCmd) }

func newSourceCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:     "source",
		Short:   "Add, list and remove the configured data sources",
		GroupID: groupPoints,
		Long: `The configuration's 'sources:' list names what is backed up: 'tapeless
backup NAME' backs up a source with its excludes, and the daemon backs up
each source on its schedule. These commands edit the configuration file
(--config); see docs/CONFIG.md for the keys.`,
		Example: `  tapeless source add home /home --exclude '**/.cache/'
  tapeless source list
  tapeless source remove home`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("source needs a subcommand: add, list or remove")}
		},
	}
	c.AddCommand(newSourceAddCmd(g), newSourceListCmd(g), newSourceRemoveCmd(g))
	return c
}

func newSourceAddCmd(g *globalOptions) *cobra.Command {
	var s sourceConfig
	c := &cobra.Command{
		Use:   "add NAME PATH",
		Short: "Add a data source to the configuration",
		Long: `Add puts a source into the configuration's 'sources:' list after checking
it as 'tapeless config check' does: PATH must exist (it is stored as an
absolute path), patterns must be valid gitignore-style excludes, exclude
files readable, and --schedule a cron expression (five fields, or six with
seconds first, or @daily, "@every 6h"; in jobs.time_zone). Nothing is
written when any check fails; every problem is reported.

A source is one directory or file: several trees are several sources, each
with its own points and retention.`,
		Example: `  tapeless source add home /home --exclude '**/.cache/' --exclude-caches --schedule '0 1 * * *'
  tapeless source add etc /etc --one-file-system --schedule @daily`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("source add needs NAME and PATH (got %d arguments); for example 'tapeless source add home /home'", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Name = args[0]
			p, err := filepath.Abs(args[1])
			if err != nil {
				return usageError{fmt.Errorf("source path %s: %w", args[1], err)}
			}
			s.Path = p
			for i, f := range s.ExcludeFile {
				// Relative names would be read relative to the config file.
				if f, err := filepath.Abs(f); err == nil {
					s.ExcludeFile[i] = f
				}
			}
			return runSourceAdd(g, s)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&s.Exclude, "exclude", nil, "gitignore-style pattern to exclude; repeatable (see 'tapeless backup --help')")
	f.StringArrayVar(&s.ExcludeFile, "exclude-file", nil, "file of exclude patterns, one per line; repeatable")
	f.BoolVar(&s.ExcludeCaches, "exclude-caches", false, "store directories holding a valid CACHEDIR.TAG with their tag file only")
	f.BoolVar(&s.OneFileSystem, "one-file-system", false, "do not enter mount points below PATH")
	f.StringVar(&s.Schedule, "schedule", "", `the daemon's backup schedule: cron ("0 1 * * *", "0 */15 * * * *"), @daily or "@every 6h"`)
	return c
}

func runSourceAdd(g *globalOptions, s sourceConfig) error {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return err
	}
	for _, o := range cfg.Sources {
		if o.Name == s.Name {
			return usageError{fmt.Errorf("a source named %q already exists (path %s): 'tapeless source remove %s' first, or choose another name", s.Name, o.Path, s.Name)}
		}
	}
	var msgs []string
	if s.Name == "" {
		msgs = append(msgs, "NAME is empty")
	}
	for _, p := range checkSource(cfg, s, cfg.Jobs.TimeZone) {
		key := keyName(p.path)
		if strings.HasPrefix(key, "exclude[") {
			key = "--exclude " + s.Exclude[p.path[1].(int)]
		} else if strings.HasPrefix(key, "exclude_file[") {
			key = "--exclude-file"
		} else if key == "schedule" {
			key = "--schedule"
		}
		msgs = append(msgs, key+": "+p.msg)
	}
	if len(msgs) > 0 {
		return usageError{fmt.Errorf("source %s not added:\n  %s", s.Name, strings.Join(msgs, "\n  "))}
	}
	cfg.Sources = append(cfg.Sources, s)
	if err := saveConfig(g.configFile, cfg); err != nil {
		return err
	}
	if g.json {
		return writeJSON(g.stdout, sourceJSONOf(s))
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Source %s added: %s.\n", termSafe(s.Name), termSafe(s.Path))
	}
	return nil
}

func newSourceListCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the configured data sources",
		Long: `List shows each configured source: its name, path, backup schedule and what
it excludes (patterns, exclude files, caches, other file systems).`,
		Example: `  tapeless source list
  tapeless source list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(g.configFile)
			if err != nil {
				return err
			}
			if g.json {
				out := struct {
					Sources []sourceJSON `json:"sources"`
				}{Sources: []sourceJSON{}}
				for _, s := range cfg.Sources {
					out.Sources = append(out.Sources, sourceJSONOf(s))
				}
				return writeJSON(g.stdout, out)
			}
			printSources(g.stdout, cfg.Sources)
			return nil
		},
	}
}

func printSources(w io.Writer, sources []sourceConfig) {
	if len(sources) == 0 {
		fmt.Fprintln(w, "No sources configured: add one with 'tapeless source add NAME PATH'.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPATH\tSCHEDULE\tEXCLUDES")
	for _, s := range sources {
		sched := s.Schedule
		if sched == "" {
			sched = "-"
		}
		var ex []string
		ex = append(ex, s.Exclude...)
		for _, f := range s.ExcludeFile {
			ex = append(ex, "file:"+f)
		}
		if s.ExcludeCaches {
			ex = append(ex, "caches")
		}
		if s.OneFileSystem {
			ex = append(ex, "one-file-system")
		}
		exs := strings.Join(ex, " ")
		if exs == "" {
			exs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", termSafe(s.Name), termSafe(s.Path), termSafe(sched), termSafe(exs))
	}
	tw.Flush()
}

func newSourceRemoveCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a data source from the configuration (its points stay)",
		Long: `Remove takes a source out of the configuration's 'sources:' list: the daemon
no longer backs it up. Its recovery points stay in the store and the vault
until retention expires them; nothing is deleted.`,
		Example: `  tapeless source remove www`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("source remove needs the NAME of a configured source")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(g.configFile)
			if err != nil {
				return err
			}
			i := -1
			for j, s := range cfg.Sources {
				if s.Name == args[0] {
					i = j
				}
			}
			if i < 0 {
				return fmt.Errorf("no source named %q%s", args[0], configuredNames(cfg))
			}
			s := cfg.Sources[i]
			cfg.Sources = append(cfg.Sources[:i:i], cfg.Sources[i+1:]...)
			if err := saveConfig(g.configFile, cfg); err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, sourceJSONOf(s))
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "Source %s removed; its recovery points stay until retention expires them.\n", termSafe(s.Name))
			}
			return nil
		},
	}
}

// configuredNames is " (configured: a, b)" for a message, or "".
func configuredNames(cfg *config) string {
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return " (none configured)"
	}
	return " (configured: " + strings.Join(names, ", ") + ")"
}

// sourceJSON is a source under --json: every key present. It has
// sourceConfig's fields in its order, so a field added there and not here
// breaks the build (sourceJSONOf converts).
type sourceJSON struct {
	Name          string   `json:"name"`
	Path          string   `json:"path"`
	Schedule      string   `json:"schedule"`
	Exclude       []string `json:"exclude"`
	ExcludeFile   []string `json:"exclude_file"`
	ExcludeCaches bool     `json:"exclude_caches"`
	OneFileSystem bool     `json:"one_file_system"`
}

func sourceJSONOf(s sourceConfig) sourceJSON { return sourceJSON(s) }
