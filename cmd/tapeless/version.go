package main

import (
	"runtime/debug"
	"strings"
)

func init() { version = resolveVersion(version, readBuildInfo) }

func readBuildInfo() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

// resolveVersion picks the version a binary reports. The Makefile stamps
// `git describe` with -ldflags; a plain `go build` or `go install` gets
// none, so the module version (go install …@v1.2.3) or the VCS revision Go
// records in every build inside a checkout is used instead, never "dev"
// when anything better is known.
func resolveVersion(stamped string, info func() (*debug.BuildInfo, bool)) string {
	if stamped != "" && stamped != "dev" {
		return stamped
	}
	bi, ok := info()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "devel-" + rev
	if modified == "true" {
		v += "-dirty"
	}
	return v
}
