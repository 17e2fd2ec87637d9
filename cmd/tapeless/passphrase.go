package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/term"
)

// envPassphraseFile names a file holding the passphrase when no
// --passphrase-file flag is given.
const envPassphraseFile = "TAPELESS_PASSPHRASE_FILE"

// readPassphrase returns the passphrase from flagFile, else from the file
// named by TAPELESS_PASSPHRASE_FILE, else from a no-echo prompt when stdin
// is a terminal (asked twice when confirm is set). With none of them it is
// an error (exit 1) that says how to pass one. A passphrase file holds the
// passphrase as its only line; one trailing newline is not part of it.
//
// The passphrase is never logged, echoed or written anywhere by tapeless;
// callers should clear the returned slice when done (clear(p)).
func readPassphrase(g *globalOptions, flagFile string, confirm bool) ([]byte, error) {
	return readPassphrasePrompt(g, flagFile, "Passphrase", confirm)
}

// readPassphrasePrompt is readPassphrase with the prompt's label.
func readPassphrasePrompt(g *globalOptions, flagFile, label string, confirm bool) ([]byte, error) {
	if flagFile != "" {
		return readPassphraseFile(flagFile)
	}
	if p := os.Getenv(envPassphraseFile); p != "" {
		return readPassphraseFile(p)
	}
	return promptPassphrase(g, label, confirm,
		"a passphrase is needed: pass --passphrase-file FILE, set "+envPassphraseFile+"=FILE, or run on a terminal to be prompted")
}

// promptPassphrase asks on the terminal without echo; usage is the error
// text when stdin is not a terminal.
func promptPassphrase(g *globalOptions, label string, confirm bool, usage string) ([]byte, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		// Not a usage error: the command line may be right, and a
		// script or the daemon has no terminal; what is missing is input.
		return nil, errors.New(usage)
	}
	fmt.Fprintf(g.stderr, "%s: ", label)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if confirm {
		fmt.Fprintf(g.stderr, "%s again: ", label)
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			clear(p)
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		same := bytes.Equal(p, again)
		clear(again)
		if !same {
			clear(p)
			return nil, errors.New("the two passphrases differ")
		}
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	return p, nil
}

// readPassphraseFile reads a passphrase file. The error names the file but
// never shows its content.
func readPassphraseFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	p := bytes.TrimSuffix(b, []byte("\n"))
	p = bytes.TrimSuffix(p, []byte("\r"))
	if len(p) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	if bytes.ContainsAny(p, "\r\n") {
		clear(b)
		return nil, fmt.Errorf("passphrase file %s has more than one line; it must hold only the passphrase", path)
	}
	return p, nil
}

// createPassphraseFile writes a generated passphrase to a new file with
// mode 0600 and a trailing newline. It never replaces an existing file: that
// could destroy the only copy of another passphrase.
func createPassphraseFile(path string, p []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; tapeless does not overwrite a passphrase file, choose another name", path)
	}
	if err != nil {
		return fmt.Errorf("create passphrase file: %w", err)
	}
	// The umask cannot widen 0600, but an inherited ACL could: be explicit.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create passphrase file: %w", err)
	}
	_, err = f.Write(append(append([]byte(nil), p...), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write passphrase file: %w", err)
	}
	return nil
}

// passphraseWarning is printed whenever tapeless generates a passphrase.
const passphraseWarning = `WARNING: the encryption passphrase was written to %s.
Keep a copy of it somewhere safe, away from this server: tapeless stores it
nowhere else, and without it the archived data cannot be recovered. A lost
passphrase means lost data.
`
