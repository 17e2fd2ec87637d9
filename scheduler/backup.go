package scheduler

import (
	"fmt"
	"strings"

	"github.com/tapeless/tapeless/archive"
)

// The backup job is archive.Backup itself: it needs nothing of the vault
// or of retention. What callers share is how its partial outcome reads.

// BackupProblems says why a backup succeeded only in part, in one
// sentence ("" when it did not).
func BackupProblems(sum *archive.BackupSummary) string {
	if !sum.Partial() {
		return ""
	}
	var parts []string
	if sum.ErrorCount > 0 {
		parts = append(parts, fmt.Sprintf("%d entries skipped", sum.ErrorCount))
	}
	if n := len(sum.Changed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d files changed while being read", n))
	}
	if n := len(sum.MissingPacks); n > 0 {
		names := make([]string, 0, n)
		for _, id := range sum.MissingPacks {
			names = append(names, archive.PackName(id))
		}
		parts = append(parts, fmt.Sprintf("the store had lost %d pack(s) (%s): their data was stored again for this point; older points that need them are damaged, run 'tapeless verify' to see which",
			n, strings.Join(names, ", ")))
	}
	return fmt.Sprintf("recovery point %s made, but %s", sum.Point.String()[:12], strings.Join(parts, " and "))
}
