package main

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// termSafe returns s as it may be shown on a terminal: unchanged when it
// holds only printable text, otherwise Go-quoted ("a\nb", "\x1b[2J"), so a
// file or source name can neither inject terminal escape sequences nor
// break a table row. Quoting only when needed keeps ordinary names plain,
// as ls does; the quotes mark the escaped form as such.
func termSafe(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	return strconv.Quote(s)
}

// termSafeText escapes the control characters of a message that may span
// lines (an error's text), keeping its newlines and tabs.
func termSafeText(s string) string {
	if !needsEscape(s, true) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == utf8.RuneError && !validAt(s, i):
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case isControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(s string, keepLines bool) bool {
	for i, r := range s {
		if keepLines && (r == '\n' || r == '\t') {
			continue
		}
		if isControl(r) || r == utf8.RuneError && !validAt(s, i) {
			return true
		}
	}
	return false
}

// isControl reports the C0 and C1 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

// validAt reports whether the RuneError at s[i] was written as such (U+FFFD)
// rather than decoded from an invalid byte.
func validAt(s string, i int) bool {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n == 3
}
