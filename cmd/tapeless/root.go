package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, documented in README.md; scripts depend on them.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitPartial = 3 // some items skipped, or replication pending
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globalOptions holds the flags every command shares.
type globalOptions struct {
	configFile string
	json       bool
	quiet      bool

	stdin          io.Reader
	stdout, stderr io.Writer
}

// Command groups shown by --help.
const (
	groupVault   = "vault"
	groupPoints  = "points"
	groupService = "service"
)

// commands is filled by init functions in the per-command files, so adding a
// command never needs an edit here.
var commands []func(*globalOptions) *cobra.Command

func addCommand(f func(*globalOptions) *cobra.Command) { commands = append(commands, f) }

// usageError marks an error caused by how the command was invoked (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// partialError marks a run that finished but skipped items or left
// replication pending (exit 3). The message says what.
type partialError struct{ msg string }

func (e partialError) Error() string { return e.msg }

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "tapeless",
		Short: "Recovery points on local disk, archived to an S3 vault",
		Long: `tapeless makes deduplicated, compressed and encrypted recovery points of
directories on local disk, moves older ones into a vault on S3-compatible
storage (GRS: two copies on two endpoints, or LRS: one copy), prunes them by
long-term retention, verifies them, and restores any point from either tier.

Exit codes: 0 ok, 1 error, 2 usage, 3 partial (items skipped or replication pending).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", defaultConfigPath(), "configuration file (env TAPELESS_CONFIG)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")

	root.AddGroup(
		&cobra.Group{ID: groupVault, Title: "Vault and registration:"},
		&cobra.Group{ID: groupPoints, Title: "Recovery points:"},
		&cobra.Group{ID: groupService, Title: "Service:"},
	)
	root.AddCommand(newVersionCmd(g))
	for _, f := range commands {
		root.AddCommand(f(g))
	}
	return root
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the tapeless version",
		GroupID: groupService,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.json {
				return writeJSON(g.stdout, struct {
					Version string `json:"version"`
				}{version})
			}
			_, err := fmt.Fprintf(g.stdout, "tapeless %s\n", version)
			return err
		},
	}
}

// run executes the command line and maps the outcome to an exit code in one
// place, so every command reports errors the same way. Under --json it also
// puts the error on stdout (docs/JSON.md): alone as {"error": {...}} when
// the command printed nothing, else as the "error" member of the result the
// command printed, so stdout always holds exactly one JSON object.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &jsonStdout{w: stdout}
	g := &globalOptions{stdin: stdin, stdout: out, stderr: stderr}
	out.g = g
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := exitOK
	if err != nil {
		var ue usageError
		var pe partialError
		switch {
		case errors.As(err, &pe):
			code = exitPartial
			fmt.Fprintf(stderr, "tapeless: %s\n", termSafeText(err.Error()))
		case errors.As(err, &ue) || isCobraUsage(err):
			code = exitUsage
			fmt.Fprintf(stderr, "tapeless: %s\nRun 'tapeless --help' for usage.\n", termSafeText(err.Error()))
		default:
			code = exitError
			fmt.Fprintf(stderr, "tapeless: %s\n", termSafeText(err.Error()))
		}
	}
	if g.json || err != nil && jsonRequested(args) {
		if werr := finishJSON(stdout, out.buf.Bytes(), code, err); werr != nil && code == exitOK {
			fmt.Fprintf(stderr, "tapeless: write output: %v\n", werr)
			code = exitError
		}
	}
	return code
}
