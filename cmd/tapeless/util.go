package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// defaultConfigPath is $TAPELESS_CONFIG, else the user config directory.
func defaultConfigPath() string {
	if p := os.Getenv("TAPELESS_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "tapeless.yaml"
	}
	return filepath.Join(dir, "tapeless", "config.yaml")
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isCobraUsage reports errors cobra raises for bad invocations (unknown
// command, wrong argument count), which exit with the usage code.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
