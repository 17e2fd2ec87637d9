package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// A manifest line must be exactly the JSON docs/FORMAT.md describes.
// encoding/json alone is lenient where a restore must not be: it takes the
// last of two duplicate keys ("mode":420,"mode":511 restores 0777), matches
// keys case-insensitively ("Mode"), and turns invalid UTF-8 and lone
// surrogate escapes into U+FFFD. strictLine refuses all of these before the
// line is decoded, so every reader of a manifest sees the same entry.

// entryKeys are the keys of a version-1 manifest entry, exactly cased.
var entryKeys = map[string]bool{
	"path": true, "path_b64": true, "type": true, "mode": true, "uid": true, "gid": true,
	"user": true, "group": true, "size": true, "mtime_ns": true, "target": true,
	"target_b64": true, "link": true, "link_b64": true, "nlink": true, "xattrs": true,
	"extents": true, "chunks": true, "sha256": true, "changed_during_read": true,
}

var (
	headerKeys = map[string]bool{"format": true, "version": true}
	xattrKeys  = map[string]bool{"name": true, "name_b64": true, "value": true}
	// twins are the plain/base64 pairs of which at most one may be given.
	twins = [][2]string{{"path", "path_b64"}, {"target", "target_b64"}, {"link", "link_b64"}, {"name", "name_b64"}}
)

// strictLine checks one manifest line (header when header is set).
func strictLine(b []byte, header bool) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8 (names that are not UTF-8 belong in the _b64 fields)")
	}
	if err := checkEscapes(b); err != nil {
		return err
	}
	known := entryKeys
	if header {
		known = headerKeys
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	keys, err := objectKeys(dec, known, "")
	if err != nil {
		return err
	}
	if err := checkTwins(keys); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// objectKeys reads the rest of an object whose '{' was consumed, refusing
// duplicate keys and keys outside known (nil: any key), and returns its
// keys. Nested values are checked for duplicates too; the objects inside
// "xattrs" are held to xattrKeys.
func objectKeys(dec *json.Decoder, known map[string]bool, where string) (map[string]bool, error) {
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if keys[k] {
			return nil, fmt.Errorf("duplicate key %q%s", k, where)
		}
		if known != nil && !known[k] {
			return nil, fmt.Errorf("unknown key %q%s (keys are lower case; a new key needs a new manifest version)", k, where)
		}
		keys[k] = true
		var inner map[string]bool
		if k == "xattrs" && known != nil {
			inner = xattrKeys
		}
		if err := skipValue(dec, inner, " in "+k); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return keys, nil
}

// skipValue reads one value; objects in it (directly, or as array
// elements) must have keys from known when known is not nil.
func skipValue(dec *json.Decoder, known map[string]bool, where string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		keys, err := objectKeys(dec, known, where)
		if err != nil {
			return err
		}
		if known != nil {
			return checkTwins(keys)
		}
	case json.Delim('['):
		for dec.More() {
			if err := skipValue(dec, known, where); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

func checkTwins(keys map[string]bool) error {
	for _, t := range twins {
		if keys[t[0]] && keys[t[1]] {
			return fmt.Errorf("both %q and %q are given: exactly one may be", t[0], t[1])
		}
	}
	return nil
}

// checkEscapes refuses \u escapes of lone UTF-16 surrogates, which JSON
// syntax allows but which name no character.
func checkEscapes(b []byte) error {
	inString := false
	pendingHigh := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		if c == '"' {
			if pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
			inString = false
			continue
		}
		if c != '\\' {
			if pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
			continue
		}
		i++
		if i >= len(b) {
			return errors.New("truncated escape")
		}
		if b[i] != 'u' {
			if pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
			continue
		}
		if i+4 >= len(b) {
			return errors.New("truncated \\u escape")
		}
		var r rune
		for _, h := range b[i+1 : i+5] {
			r <<= 4
			switch {
			case h >= '0' && h <= '9':
				r |= rune(h - '0')
			case h >= 'a' && h <= 'f':
				r |= rune(h-'a') + 10
			case h >= 'A' && h <= 'F':
				r |= rune(h-'A') + 10
			default:
				return errors.New("bad \\u escape")
			}
		}
		i += 4
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
			pendingHigh = true
		case r >= 0xdc00 && r < 0xe000:
			if !pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return errors.New("lone UTF-16 surrogate in a \\u escape")
			}
		}
	}
	return nil
}
