package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage/humanize"
)

func init() { addCommand(newBackupCmd) }

type backupOptions struct {
	name          string
	exclude       []string
	excludeFiles  []string
	excludeCaches bool
	oneFileSystem bool
	noCache       bool
}

func newBackupCmd(g *globalOptions) *cobra.Command {
	var o backupOptions
	c := &cobra.Command{
		Use:     "backup SOURCE...",
		Short:   "Make a recovery point of one or more paths in the local store",
		GroupID: groupPoints,
		Long: `Backup makes a recovery point in the local store named by 'store:' in the
configuration. Content is cut into content-defined chunks, deduplicated
against everything already in the store, compressed and encrypted to the
store's public key: no passphrase is needed.

SOURCE is a path, or the name of a source from the configuration's
'sources:' list (whose path, excludes, exclude files, exclude_caches and
one_file_system are then used; see docs/CONFIG.md). With one directory, its
contents are at the top of the point; with several sources, each appears
under its base name.

Excludes are gitignore-style patterns, matched against paths inside the
point: a pattern without a "/" matches a name at any depth ('*.tmp',
'node_modules/'); one with a "/" at the start or in the middle is anchored
at the top of the point ('/build', 'home/*/.cache'); '**' spans directories
('**/id_rsa', 'logs/**', 'a/**/b'); a trailing "/" matches directories
only; a leading "!" re-includes what an earlier pattern excluded (never
below an excluded directory). The last matching pattern decides. Invalid
patterns stop the backup before anything is written.

A file named .tapelessignore in any directory holds more patterns, one per
line ('#' comments), relative to that directory, like .gitignore; deeper
files override higher ones and --exclude/--exclude-file override them all.
One that cannot be read or holds an invalid pattern is reported (exit code
3) and not applied. --exclude-caches stores a directory holding a
CACHEDIR.TAG (bford.info/cachedir) with its tag file only;
--one-file-system stores mount points below a source but does not enter
them. The summary counts what was excluded, and why.

Files whose size, mtime, ctime and inode have not changed since the last
backup of the same source are not read again. Devices, sockets and FIFOs
are skipped and counted. Unreadable entries are reported and skipped, and
files that keep changing while being read are stored marked as changed;
either makes the exit code 3. So does a pack found missing from the store:
its data is stored again for the new point, and 'tapeless verify' names
the older points that needed it. Before anything is written the source must
be at most 54,400 GB and the store's file system must have 5% of the
source's size free.

A progress bar (bytes, rate, ETA) is drawn on a terminal only.`,
		Example: `  tapeless backup /home
  tapeless backup /etc /srv/www --name web-server
  tapeless backup home                       # the configured source "home"
  tapeless backup /data --exclude '*.tmp' --json
  tapeless backup /home --exclude '**/node_modules/' --exclude-caches --one-file-system
  tapeless backup /srv --exclude-file /etc/tapeless/excludes`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("backup needs a SOURCE: a path, or the name of a configured source" + configuredSources(g) + "; for example 'tapeless backup /home'")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 && o.name == "" {
				// A joined list of paths would become the data source's
				// name, and retention counts points per source.
				return usageError{fmt.Errorf("backup of %d sources needs --name NAME, the data source name the point is kept under (for example --name web-server)", len(args))}
			}
			// A bad pattern on the command line is a usage error, found
			// before the store is opened.
			if _, err := archive.CompileExcludes(o.exclude); err != nil {
				return usageError{err}
			}
			return runBackup(cmd.Context(), g, o, args)
		},
	}
	f := c.Flags()
	f.StringVar(&o.name, "name", "", "data source name for the point (default: the configured source name or the absolute path)")
	f.StringArrayVar(&o.exclude, "exclude", nil, "skip entries matching this gitignore-style pattern (name at any depth, or path inside the point when it holds a /; ** spans directories); repeatable")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read exclude patterns from this file, one per line; repeatable")
	f.BoolVar(&o.excludeCaches, "exclude-caches", false, "store directories holding a valid CACHEDIR.TAG with their tag file only")
	f.BoolVar(&o.oneFileSystem, "one-file-system", false, "do not enter mount points below a source (they are stored empty)")
	f.BoolVar(&o.noCache, "no-cache", false, "read every file even if the file cache says it is unchanged")
	return c
}

// configuredSources lists the configuration's source names for a message,
// or says nothing when there is no configuration to read.
func configuredSources(g *globalOptions) string {
	cfg, err := loadConfig(g.configFile)
	if err != nil || len(cfg.Sources) == 0 {
		return ""
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	return " (configured: " + strings.Join(names, ", ") + ")"
}

// loadStoreConfig loads the configuration, which must name a store.
func loadStoreConfig(g *globalOptions) (*config, error) {
	cfg, err := loadConfig(g.configFile)
	if err != nil {
		return nil, err
	}
	if cfg.Store == "" {
		return nil, fmt.Errorf("no store configured in %s: run 'tapeless register --store DIR' or set 'store:'", g.configFile)
	}
	return cfg, nil
}

// openLocalStore loads the configuration and opens its store.
func openLocalStore(ctx context.Context, g *globalOptions) (*archive.Store, *config, error) {
	cfg, err := loadStoreConfig(g)
	if err != nil {
		return nil, nil, err
	}
	s, err := archive.OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, nil, storeOpenError(err)
	}
	if err := checkStoreKey(g, cfg, s.PublicKeys().Fingerprint); err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, cfg, nil
}

// openStoreView loads the configuration and opens its store for reading
// only: no lock, so it works while the daemon is backing up.
func openStoreView(ctx context.Context, g *globalOptions) (*archive.StoreView, *config, error) {
	cfg, err := loadStoreConfig(g)
	if err != nil {
		return nil, nil, err
	}
	v, err := archive.OpenStoreView(ctx, cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	if err := checkStoreKey(g, cfg, v.KeyFingerprint); err != nil {
		v.Close()
		return nil, nil, err
	}
	return v, cfg, nil
}

// archiveOptions are the backup options of o for sources, as the command
// and the daemon's backup jobs both run them.
func (o backupOptions) archiveOptions(sources []string) archive.BackupOptions {
	return archive.BackupOptions{
		Sources:       sources,
		Name:          o.name,
		Exclude:       o.exclude,
		ExcludeFiles:  o.excludeFiles,
		IgnoreFile:    archive.IgnoreFileName,
		ExcludeCaches: o.excludeCaches,
		OneFileSystem: o.oneFileSystem,
		NoCache:       o.noCache,
	}
}

// resolveSources maps configured source names to their paths; a lone
// configured source also lends its name, excludes, exclude files,
// exclude_caches and one_file_system.
func resolveSources(cfg *config, args []string, o *backupOptions) []string {
	var paths []string
	for _, a := range args {
		p := a
		for _, s := range cfg.Sources {
			if !strings.Contains(a, "/") && s.Name == a {
				p = s.Path
				if len(args) == 1 {
					if o.name == "" {
						o.name = s.Name
					}
					o.exclude = append(o.exclude, s.Exclude...)
					for _, f := range s.ExcludeFile {
						o.excludeFiles = append(o.excludeFiles, cfg.resolvePath(f))
					}
					o.excludeCaches = o.excludeCaches || s.ExcludeCaches
					o.oneFileSystem = o.oneFileSystem || s.OneFileSystem
				}
			}
		}
		paths = append(paths, p)
	}
	return paths
}

func runBackup(ctx context.Context, g *globalOptions, o backupOptions, args []string) error {
	s, cfg, err := openLocalStore(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	sources := resolveSources(cfg, args, &o)
	bar := newProgressBar(g)
	bo := o.archiveOptions(sources)
	bo.Progress = func(p archive.BackupProgress) {
		bar.update(fmt.Sprintf("%d/%d files", p.Files, p.TotalFiles), p.Bytes, p.TotalBytes, p.Elapsed)
	}
	bo.OnError = func(path string, err error) error {
		if !g.json {
			bar.printf("warning: skipped %s: %s\n", termSafe(path), termSafeText(err.Error()))
		}
		return nil
	}
	sum, err := archive.Backup(ctx, s, bo)
	bar.clear()
	if err != nil {
		return err
	}
	if g.json {
		if err := writeJSON(g.stdout, sum); err != nil {
			return err
		}
	} else if !g.quiet {
		printBackupSummary(g.stdout, sum)
	}
	if msg := scheduler.BackupProblems(sum); msg != "" {
		return partialError{msg}
	}
	return nil
}

// shortID is the 12-hex-digit form of an ID shown in tables.
func shortID(id archive.ID) string { return id.String()[:12] }

func printBackupSummary(w io.Writer, s *archive.BackupSummary) {
	fmt.Fprintf(w, "Recovery point %s of %s made at %s.\n", shortID(s.Point), termSafe(s.Source), s.Time.Local().Format(time.DateTime))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  files\t%d (%d read, %d unchanged), %d dirs, %d symlinks, %d hard links\n",
		s.Files, s.FilesRead, s.FilesUnchanged, s.Dirs, s.Symlinks, s.HardLinks)
	fmt.Fprintf(tw, "  data\t%s in files, %s read\n", humanize.Bytes(s.Bytes), humanize.Bytes(s.BytesRead))
	ratios := ""
	if s.DedupRatio > 0 {
		ratios = fmt.Sprintf(" (dedup %.2fx, compression %.2fx)", s.DedupRatio, s.CompressionRatio)
	}
	fmt.Fprintf(tw, "  new\t%s of new data stored as %s%s\n", humanize.Bytes(s.NewPlainBytes), humanize.Bytes(s.NewStoredBytes), ratios)
	fmt.Fprintf(tw, "  skipped\t%d special files, %d excluded%s, %d unreadable\n", s.Special, s.Excluded, excludeReasons(s.ExcludedBy), s.ErrorCount)
	if len(s.Changed) > 0 {
		fmt.Fprintf(tw, "  changed\t%d files changed while being read and may be inconsistent:\n", len(s.Changed))
		for _, p := range s.Changed {
			fmt.Fprintf(tw, "\t  %s\n", termSafe(p))
		}
	}
	fmt.Fprintf(tw, "  duration\t%s\n", s.Duration.Round(time.Millisecond))
	tw.Flush()
}

// excludeReasons says why entries were excluded, for the summary:
// " (3 by pattern, 1 mount points)", or "" when none were.
func excludeReasons(c archive.ExcludeCounts) string {
	var parts []string
	for _, r := range []struct {
		n    int64
		what string
	}{
		{c.Pattern, "by pattern"}, {c.IgnoreFile, "by .tapelessignore"}, {c.Caches, "in caches"},
		{c.OtherFS, "mount points"}, {c.Store, "the store"},
	} {
		if r.n > 0 {
			if r.what == "the store" {
				parts = append(parts, r.what)
			} else {
				parts = append(parts, fmt.Sprintf("%d %s", r.n, r.what))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// errNoPoint is wrapped when a point prefix matches nothing.
var errNoPoint = errors.New("no such recovery point")
