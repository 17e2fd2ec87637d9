//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what is written to the returned
// controller arrives as typed input on the terminal, and what the terminal
// echoes can be read back from the controller.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { terminal.Close() })
	return controller, terminal
}

// TestPromptPassphraseNoEcho types a passphrase on a real pseudo-terminal:
// it is read, asked twice when confirming, and never echoed back.
func TestPromptPassphraseNoEcho(t *testing.T) {
	const secret = "typed-on-the-terminal-42"
	for _, c := range []struct {
		name    string
		confirm bool
		typed   string
		wantErr string
	}{
		{"once", false, secret + "\n", ""},
		{"confirmed", true, secret + "\n" + secret + "\n", ""},
		{"confirm differs", true, secret + "\n" + "something-else-entirely\n", "the two passphrases differ"},
	} {
		t.Run(c.name, func(t *testing.T) {
			controller, terminal := openPTY(t)
			stderr := &lockedBuffer{}
			g := &globalOptions{stdin: terminal, stdout: &bytes.Buffer{}, stderr: stderr}
			t.Setenv(envPassphraseFile, "")
			type result struct {
				p   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				p, err := readPassphrase(g, "", c.confirm)
				done <- result{p, err}
			}()
			// Type each line after its prompt, once echo is off, as a person
			// would: term.ReadPassword turns echo off before reading and on
			// again after the line.
			lines := strings.SplitAfter(strings.TrimSuffix(c.typed, "\n"), "\n")
			for i, line := range lines {
				waitForPrompt(t, terminal, stderr, i+1)
				if _, err := controller.WriteString(strings.TrimSuffix(line, "\n") + "\n"); err != nil {
					t.Fatal(err)
				}
			}
			r := <-done
			if c.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), c.wantErr) {
					t.Fatalf("readPassphrase = %q, %v; want %q", r.p, r.err, c.wantErr)
				}
			} else if r.err != nil || string(r.p) != secret {
				t.Fatalf("readPassphrase = %q, %v; want the typed passphrase", r.p, r.err)
			}
			// Whatever the terminal echoed is readable from the controller.
			terminal.Close()
			controller.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var echoed bytes.Buffer
			buf := make([]byte, 4096)
			for {
				n, err := controller.Read(buf)
				echoed.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if strings.Contains(echoed.String(), "typed-on") || strings.Contains(stderr.String(), "typed-on") {
				t.Errorf("the passphrase was echoed: terminal %q, stderr %q", echoed.String(), stderr.String())
			}
			if want := "Passphrase: "; !strings.Contains(stderr.String(), want) {
				t.Errorf("prompt on stderr = %q, want %q", stderr.String(), want)
			}
			if c.confirm && !strings.Contains(stderr.String(), "Passphrase again: ") {
				t.Errorf("no confirmation prompt: %q", stderr.String())
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe to write from the prompting goroutine
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitForPrompt waits until the n-th prompt is on stderr and the terminal's
// echo is off: then the prompt is reading, and a typed line goes to it.
func waitForPrompt(t *testing.T, terminal *os.File, stderr *lockedBuffer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(stderr.String(), "Passphrase") >= n {
			tio, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatalf("termios: %v", err)
			}
			if tio.Lflag&unix.ECHO == 0 {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("prompt %d never came with echo off (stderr %q)", n, stderr.String())
}
