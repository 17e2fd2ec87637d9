package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/humanize"
	"github.com/tapeless/tapeless/storage/vault"
)

func init() { addCommand(newRestoreCmd) }

type restoreOptions struct {
	target         string
	overwrite      bool
	specialBits    bool
	partial        bool
	passphraseFile string
	server         string // another server whose point to restore
}

func newRestoreCmd(g *globalOptions) *cobra.Command {
	var o restoreOptions
	c := &cobra.Command{
		Use:     "restore POINT [PATH] --target DIR",
		Short:   "Restore a recovery point, or one path of it, into a directory",
		GroupID: groupPoints,
		Long: `Restore writes recovery point POINT (any unique prefix of its ID, see
'tapeless points') into DIR, which is created if missing. With PATH, only
that file or directory of the point (and the directories above it) is
restored; paths keep their place, so PATH a/b lands in DIR/a/b.

Contents, modes, modification times, symlinks, hard links and sparse holes
are restored, and owners and extended attributes where permitted (owners
need root; a refusal is reported as a warning). setuid and setgid bits on
files and file capabilities (the security.capability attribute set by
setcap, which can be as powerful as setuid root) are dropped unless
--special-bits is given; the summary counts what was dropped. Each file's
size and SHA-256 are checked as it is written.

Restore never writes outside DIR: entries with '..', absolute names or a
path through a symlink are refused, and symlinks are created last. Existing
files are not replaced unless --overwrite is given; existing directories
are merged into. Entries in the way are found before anything is written.

An interrupted restore (killed, out of space, a lost link) continues when
run again with the same point, PATH and --target: while it writes, restore
keeps the file .tapeless-restore-in-progress in DIR (removed when it
finishes), and a rerun that finds it keeps every existing file whose size
and SHA-256 match the point's (an existing symlink with the same target, a
hard link to such a file): those are not fetched or written again, need no
--overwrite, and get their owner, mode, attributes and time set again.
Files are written under a temporary name next to their own and renamed
into place once complete and checked, so a half-written file is never
taken for a finished one. Without the marker an existing file is in the
way however equal, unless --overwrite is given (which also keeps equal
files rather than fetching them again). A file that differs is always in
the way without --overwrite.

A point that is only in the vault is read through the staging folder
(which must have 5 % of the point's size free): restore downloads the
point, its index objects and manifest, then only the byte ranges of the
packs that hold the blobs it needs (ranges a few hundred KiB apart are
fetched as one), authenticating every blob as it arrives; a range that
fails is read from the second copy of a GRS vault.

When packs the restore needs are missing or damaged, restore refuses before
writing anything and says how many files need them; with --partial it
restores every file that does not, lists those it could not restore and
exits 3.

The passphrase is read from --passphrase-file, from the file named by
TAPELESS_PASSPHRASE_FILE, or from a prompt on a terminal. A wrong
passphrase fails before anything is written.`,
		Example: `  tapeless restore 3f2a9c --target /srv/restore
  tapeless restore 3f2a9c etc/nginx --target /tmp/nginx --passphrase-file ~/.tapeless-pass
  TAPELESS_PASSPHRASE_FILE=/root/pass tapeless restore 3f2a9c --target / --overwrite --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 2 {
				path = args[1]
			}
			return runRestore(cmd.Context(), g, o, args[0], path)
		},
	}
	f := c.Flags()
	f.StringVar(&o.target, "target", "", "directory to restore into (required)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace existing files and symlinks in the target")
	f.BoolVar(&o.specialBits, "special-bits", false, "restore setuid and setgid bits and file capabilities on files")
	f.BoolVar(&o.partial, "partial", false, "when packs are missing or damaged, restore the files that do not need them (exit 3)")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "read the encryption passphrase from this file (env TAPELESS_PASSPHRASE_FILE)")
	f.StringVar(&o.server, "server", "", "restore a point of another server registered to the vault (needs that server's passphrase)")
	return c
}

// passphraseForRead gets the passphrase for reading (restore, verify,
// repair) the one way every command does: the file flag, then
// TAPELESS_PASSPHRASE_FILE, then a no-echo prompt on a terminal.
func passphraseForRead(g *globalOptions, file string) ([]byte, error) {
	return readPassphrasePrompt(g, file, "Encryption passphrase", false)
}

// unlockStore unwraps the store's keys (its envelope) with the passphrase.
func unlockStore(g *globalOptions, envelope []byte, file string) (*archive.Keys, error) {
	pass, err := passphraseForRead(g, file)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	k, err := archive.UnwrapKeys(envelope, pass)
	if err != nil {
		return nil, fmt.Errorf("unlock the store's keys: %w", err)
	}
	return k, nil
}

// lockStoreForRead takes the store's shared read lock for a command that
// reads local objects (restore, verify, ls, find, diff), so that an offload
// running meanwhile leaves them in place. A store where the lock file
// cannot be made (read-only) is read without it, and the user told. The
// lock may be nil; Release accepts that.
func lockStoreForRead(ctx context.Context, g *globalOptions, dir string) (*archive.ReadLock, error) {
	lock, err := archive.LockForRead(ctx, dir, func() {
		if !g.quiet && !g.json {
			fmt.Fprintln(g.stderr, "Waiting for an offload to finish removing local objects...")
		}
	})
	if errors.Is(err, archive.ErrNoReadLock) {
		if !g.quiet {
			fmt.Fprintf(g.stderr, "note: %v; an offload running meanwhile could remove what is read\n", err)
		}
		return nil, nil
	}
	return lock, err
}

func runRestore(ctx context.Context, g *globalOptions, o restoreOptions, pointArg, path string) error {
	if o.target == "" {
		return usageError{errors.New("--target DIR is required")}
	}
	if o.server != "" {
		return runRestoreOther(ctx, g, o, pointArg, path)
	}
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return err
	}
	defer v.Close()
	// Hold the store's read lock before finding the point: an offload
	// running meanwhile then leaves the local point and its packs alone.
	lock, err := lockStoreForRead(ctx, g, v.Dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	// A point object that cannot be read is left out of the list and named
	// in listErr; it only matters when the wanted point is not found.
	points, listErr := archive.ListPoints(ctx, v.Objects)
	p, err := resolvePoint(points, pointArg)
	var src storage.Backend = v.Objects
	hasVault := cfg.Vault != nil && cfg.Vault.Name != ""
	if _, latest := latestSource(strings.TrimSpace(pointArg)); latest && err == nil && hasVault {
		// The newest point may be in the vault only (a short local
		// retention): compare with the vault's newest of this key.
		if vp, verr := newestInVault(ctx, cfg, pointArg); verr == nil && archive.PointBefore(p, vp) {
			err = errNoPoint
		}
	}
	if errors.Is(err, errNoPoint) && hasVault {
		lock.Release() // nothing local is read
		// Not in the store: look in the vault, reading through the
		// staging folder.
		vs, verr := restoreFromVault(ctx, g, cfg, pointArg, cfg.Vault.KeyFingerprint)
		if verr == nil {
			defer vs.Close()
			p, src, err, listErr = vs.point, vs.staged, nil, nil
		} else {
			err = verr
		}
	}
	if err != nil {
		if listErr != nil {
			return errors.Join(err, listErr)
		}
		return err
	}
	if src == v.Objects {
		// A local point may share packs with points in the vault (its
		// backup deduplicated against them): those come from the vault.
		ts, err := scheduler.OpenTieredSource(ctx, siteOf(g, cfg), v.Objects, p)
		if err != nil {
			return err
		}
		defer ts.Close()
		if ts.Held > 0 && !g.quiet && !g.json {
			fmt.Fprintf(g.stderr, "Point %s shares %d packs with points in vault %s: reading them from there (staged in %s).\n",
				shortID(p.ID), ts.Held, ts.Vault, ts.Staging)
		}
		src = ts
	}
	// Everything that can fail without writing fails first: the
	// passphrase, then the scratch-space rule.
	keys, err := unlockStore(g, v.Envelope, o.passphraseFile)
	if err != nil {
		return err
	}
	return restoreInto(ctx, g, o, cfg, p, src, keys, path)
}

// restoreInto restores point p, read from src with keys, after the
// scratch-space rule.
func restoreInto(ctx context.Context, g *globalOptions, o restoreOptions, cfg *config, p archive.PointHeader, src storage.Backend, keys *archive.Keys, path string) error {
	scratch := cfg.Staging
	if scratch == "" {
		scratch = o.target
	}
	if err := vault.CheckScratch(scratch, p.Bytes); err != nil {
		return err
	}
	// The passphrase's argon2id took 128 MiB, garbage now: hand it back
	// before the restore's own buffers, so the two peaks do not add up.
	debug.FreeOSMemory()
	// Read through the objects alone (index objects included), exactly as
	// a restore from the vault does: every byte used is authenticated.
	r := archive.NewReader(src, keys)
	defer r.Close()
	bar := newProgressBar(g)
	sum, err := archive.Restore(ctx, r, p.ID, archive.RestoreOptions{
		Target:      o.target,
		Path:        path,
		Overwrite:   o.overwrite,
		SpecialBits: o.specialBits,
		Partial:     o.partial,
		Progress: func(pr archive.RestoreProgress) {
			if pr.Files == 0 && pr.Fetched < pr.FetchTotal {
				// From the vault: the blobs' ranges come first.
				bar.update("fetching from the vault", pr.Fetched, pr.FetchTotal, pr.Elapsed)
				return
			}
			bar.update(fmt.Sprintf("%d files", pr.Files), pr.Bytes, pr.TotalBytes, pr.Elapsed)
		},
	})
	bar.clear()
	if errors.Is(err, archive.ErrPathNotInPoint) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	var partial error
	if sum.NotRestoredCount > 0 {
		partial = partialError{fmt.Sprintf("%d files could not be restored: the objects they need are missing or damaged", sum.NotRestoredCount)}
	}
	if g.json {
		if err := writeJSON(g.stdout, sum); err != nil {
			return err
		}
		return partial
	}
	for _, w := range sum.Warnings {
		fmt.Fprintf(g.stderr, "warning: %s\n", termSafeText(w))
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "Restored %s of %s into %s: %d files (%s), %d dirs, %d symlinks, %d hard links in %s%s.\n",
			shortID(p.ID), termSafe(p.Source), termSafe(o.target), sum.Files, humanize.Bytes(sum.Bytes), sum.Dirs, sum.Symlinks,
			sum.HardLinks, sum.Duration.Round(time.Millisecond), restoreExtras(sum))
	}
	if partial != nil {
		printNotRestored(g, sum)
	}
	return partial
}

// restoreExtras says what a restore from the vault downloaded and how many
// files an interrupted restore had finished already (empty when neither).
func restoreExtras(sum *archive.RestoreSummary) string {
	var s string
	if sum.Fetched > 0 {
		s += fmt.Sprintf(", %s fetched from the vault", humanize.Bytes(sum.Fetched))
	}
	if sum.AlreadyPresent > 0 {
		s += fmt.Sprintf(", %d files already in place (not fetched again)", sum.AlreadyPresent)
	}
	return s
}

// printNotRestored lists, on stderr, the objects a partial restore lacked
// and the files it could not write (all of them in --json).
func printNotRestored(g *globalOptions, sum *archive.RestoreSummary) {
	const shown = 20
	fmt.Fprintf(g.stderr, "%d files could not be restored; missing or damaged:\n", sum.NotRestoredCount)
	for _, u := range sum.Unavailable {
		fmt.Fprintf(g.stderr, "  %s\n", u)
	}
	fmt.Fprintln(g.stderr, "not restored:")
	for i, p := range sum.NotRestored {
		if i == shown {
			fmt.Fprintf(g.stderr, "  ... and %d more (--json lists up to %d)\n", sum.NotRestoredCount-shown, len(sum.NotRestored))
			break
		}
		fmt.Fprintf(g.stderr, "  %s\n", p)
	}
}

// runRestoreOther restores a point of another server registered to the
// vault — the lost server of a disaster recovery — from the vault, with
// that server's key envelope and passphrase. This server's store and keys
// are not involved.
func runRestoreOther(ctx context.Context, g *globalOptions, o restoreOptions, pointArg, path string) error {
	cfg, err := loadStoreConfig(g)
	if err != nil {
		return err
	}
	if cfg.Vault == nil || cfg.Vault.Name == "" {
		return errors.New("--server restores from the vault, and no vault is configured: register this machine first (see docs/RECOVERY.md)")
	}
	// The point is found (and its staging checked) before the passphrase
	// is asked for.
	var vs *vaultSource
	keys, _, err := scheduler.ServerKeys(ctx, siteOf(g, cfg), o.server, func(reg vault.Registration) ([]byte, error) {
		var err error
		if vs, err = restoreFromVault(ctx, g, cfg, pointArg, reg.KeyFingerprint); err != nil {
			return nil, err
		}
		return readPassphrasePrompt(g, o.passphraseFile, "Passphrase of server "+reg.Server, false)
	})
	if vs != nil {
		defer vs.Close()
	}
	var unknown *scheduler.UnknownServerError
	if errors.As(err, &unknown) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	return restoreInto(ctx, g, o, cfg, vs.point, vs.staged, keys, path)
}

// newestInVault returns the newest point of this server's key in the vault
// that the latest[:SOURCE] arg names.
func newestInVault(ctx context.Context, cfg *config, arg string) (archive.PointHeader, error) {
	pts, err := listVaultPoints(ctx, cfg, nil)
	if err != nil && !archive.OnlyDamage(err) && !errors.Is(err, archive.ErrShortListing) {
		return archive.PointHeader{}, err
	}
	return resolvePoint(pointsOfKey(pts, cfg.Vault.KeyFingerprint), arg)
}
