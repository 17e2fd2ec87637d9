package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { addCommand(newManCmd) }

// newManCmd writes one man page per command, generated from the command
// tree so the pages never drift from --help. It is hidden: `make install`
// calls it; users read the pages with man(1).
func newManCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages (section 1) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			h := &doc.GenManHeader{Title: "TAPELESS", Section: "1", Source: "tapeless " + version, Manual: "tapeless manual"}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, h, args[0]); err != nil {
				return fmt.Errorf("man pages into %s: %w", args[0], err)
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "Wrote man pages into %s.\n", args[0])
			}
			return nil
		},
	}
}
