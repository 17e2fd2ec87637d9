package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content, want, wantErr string
	}{
		{"plain", "sixteen-chars-ok", "sixteen-chars-ok", ""},
		{"trailing newline", "sixteen-chars-ok\n", "sixteen-chars-ok", ""},
		{"trailing CRLF", "sixteen-chars-ok\r\n", "sixteen-chars-ok", ""},
		{"inner spaces kept", "  spaced out pass  \n", "  spaced out pass  ", ""},
		{"empty", "", "", "is empty"},
		{"only newline", "\n", "", "is empty"},
		{"two lines", "first-line-pass\nsecond\n", "", "more than one line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")), c.content)
			got, err := readPassphraseFile(p)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("readPassphraseFile = %q, %v; want error %q", got, err, c.wantErr)
				}
				if strings.Contains(err.Error(), "first-line-pass") {
					t.Errorf("the error shows the passphrase: %v", err)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("readPassphraseFile = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReadPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeFile(t, filepath.Join(dir, "flag"), "from-the-flag-file")
	envFile := writeFile(t, filepath.Join(dir, "env"), "from-the-environment")
	g := &globalOptions{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}

	t.Setenv(envPassphraseFile, envFile)
	if p, err := readPassphrase(g, flagFile, false); err != nil || string(p) != "from-the-flag-file" {
		t.Errorf("flag and env: %q, %v; want the flag's file", p, err)
	}
	if p, err := readPassphrase(g, "", false); err != nil || string(p) != "from-the-environment" {
		t.Errorf("env only: %q, %v", p, err)
	}
	t.Setenv(envPassphraseFile, "")
	_, err := readPassphrase(g, "", true)
	// Missing input, not a wrong command line: exit 1, not 2.
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "--passphrase-file FILE") || !strings.Contains(err.Error(), envPassphraseFile) {
		t.Errorf("no source on a non-terminal: %v, want an error (not a usage error) saying how", err)
	}
}

func TestCreatePassphraseFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gen")
	if err := createPassphraseFile(p, []byte("generated-passphrase-value")); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, p); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	if got, err := readPassphraseFile(p); err != nil || string(got) != "generated-passphrase-value" {
		t.Errorf("read back %q, %v", got, err)
	}
	err := createPassphraseFile(p, []byte("another-passphrase-value"))
	if err == nil || !strings.Contains(err.Error(), "does not overwrite") {
		t.Errorf("second create: %v, want a refusal", err)
	}
	if got, _ := readPassphraseFile(p); string(got) != "generated-passphrase-value" {
		t.Errorf("existing file changed to %q", got)
	}
}
