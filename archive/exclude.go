package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Excludes follow .gitignore's rules, matched by doublestar (which gives
// "**" and character classes; the gitignore layer — anchoring, trailing
// "/", "!" and per-directory files — is this file's):
//
//   - A pattern without a "/" (a trailing one aside) matches a name at any
//     depth: "*.tmp", "node_modules/".
//   - A pattern with a "/" at the start or in the middle is anchored: it
//     matches the path from the top of the point, or from the directory of
//     the ignore file it comes from: "/build", "home/*/.cache".
//   - "**" spans directories: "**/id_rsa", "logs/**", "a/**/b".
//   - A trailing "/" matches directories only.
//   - "!" re-includes what an earlier pattern excluded, except below an
//     excluded directory, which is never entered; "\!" and "\#" start a
//     pattern with a literal "!" or "#".
//   - The last pattern that matches decides. Ignore files count from the
//     top down, and --exclude and exclude files come after them all, so
//     the command line has the last word (as in git).

// IgnoreFileName is the per-directory ignore file the command line reads.
const IgnoreFileName = ".tapelessignore"

// CacheTagName and CacheTagSignature mark a cache directory
// (https://bford.info/cachedir/): one whose CACHEDIR.TAG starts with the
// signature is stored with its tag file only.
const (
	CacheTagName      = "CACHEDIR.TAG"
	CacheTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// ErrBadExclude wraps every invalid exclude pattern.
var ErrBadExclude = errors.New("invalid exclude pattern")

// excludeRule is one compiled pattern.
type excludeRule struct {
	pattern  string // doublestar pattern, without "!", a leading or a trailing "/"
	base     string // point path of the ignore file's directory ("" for the top)
	negate   bool
	dirOnly  bool
	anchored bool
	inside   string // for "x/**": the pattern of x, which itself is not matched
	fromFile bool   // from a per-directory ignore file
}

// compileExclude parses one gitignore-style pattern. ok is false for a
// pattern that matches nothing (a lone "!" or "/").
func compileExclude(p, base string) (r excludeRule, ok bool, err error) {
	orig := p
	r.base = base
	if strings.HasPrefix(p, "!") {
		r.negate = true
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "\\/") {
		r.dirOnly = true
		p = strings.TrimRight(p, "/")
	}
	if strings.HasPrefix(p, "/") {
		r.anchored = true
		p = strings.TrimLeft(p, "/")
	}
	if p == "" {
		return r, false, nil
	}
	if strings.Contains(p, "/") {
		r.anchored = true
	}
	if !doublestar.ValidatePattern(p) {
		return r, false, fmt.Errorf("%w %q: use * ? [abc] {a,b} ** and a leading ! or a trailing / (gitignore style; see 'tapeless backup --help')", ErrBadExclude, orig)
	}
	if x, found := strings.CutSuffix(p, "/**"); found && x != "" && x != "**" {
		r.inside = x
	}
	r.pattern = p
	return r, true, nil
}

// match reports whether the rule matches the point path rel (a directory
// when isDir).
func (r *excludeRule) match(rel string, isDir bool) bool {
	if r.dirOnly && !isDir {
		return false
	}
	sub := rel
	if r.base != "" {
		rest, ok := strings.CutPrefix(rel, r.base+"/")
		if !ok {
			return false
		}
		sub = rest
	}
	if !r.anchored {
		sub = path.Base(sub)
	}
	if ok, _ := doublestar.Match(r.pattern, sub); !ok {
		return false
	}
	if r.inside != "" {
		// gitignore: "x/**" is everything inside x, not x itself.
		if self, _ := doublestar.Match(r.inside, sub); self {
			return false
		}
	}
	return true
}

// CompileExcludes checks gitignore-style patterns (relative to the top of
// the point) and returns them compiled; the error names every invalid
// one, joined.
func CompileExcludes(patterns []string) (*Excludes, error) {
	var errs []error
	x := &Excludes{}
	for _, p := range patterns {
		if p == "" {
			errs = append(errs, fmt.Errorf("%w: empty pattern", ErrBadExclude))
			continue
		}
		r, ok, err := compileExclude(p, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			x.rules = append(x.rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return x, nil
}

// Excludes is a compiled list of patterns.
type Excludes struct {
	rules []excludeRule
}

// ReadExcludeFile reads a file of patterns, one per line, as .gitignore
// does: blank lines and lines starting with "#" are skipped, trailing
// spaces are dropped unless escaped with "\".
func ReadExcludeFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("exclude file: %w", err)
	}
	defer f.Close()
	p, err := parseExcludeLines(f)
	if err != nil {
		return nil, fmt.Errorf("exclude file %s: %w", name, err)
	}
	return p, nil
}

// maxIgnoreFile bounds what one ignore or exclude file may hold; a larger
// one is surely not a list of patterns.
const maxIgnoreFile = 1 << 20

func parseExcludeLines(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxIgnoreFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxIgnoreFile {
		return nil, fmt.Errorf("larger than %d bytes", maxIgnoreFile)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), maxIgnoreFile)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Trailing spaces go unless the last one is escaped ("a\ ").
		for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, "\\ ") {
			line = line[:len(line)-1]
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// readIgnoreFile compiles the ignore file at osPath for the directory rel.
func readIgnoreFile(osPath, rel string) ([]excludeRule, error) {
	f, err := os.Open(osPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := parseExcludeLines(f)
	if err != nil {
		return nil, err
	}
	var rules []excludeRule
	var errs []error
	for _, l := range lines {
		r, ok, err := compileExclude(l, rel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			r.fromFile = true
			rules = append(rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rules, nil
}

// isCacheTag reports whether the file at p starts with the CACHEDIR.TAG
// signature.
func isCacheTag(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(CacheTagSignature))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return string(buf) == CacheTagSignature
}

// leavesFileSystem is one-file-system's decision: a directory on another
// device than its source's top is a mount point, stored but not entered.
func leavesFileSystem(rootDev, dev uint64) bool { return rootDev != dev }
