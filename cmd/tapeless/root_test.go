package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// runCmd runs the command line the way main does and returns the exit code
// and what was printed.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Keep tests away from the user's real configuration.
	t.Setenv("TAPELESS_CONFIG", t.TempDir()+"/config.yaml")
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCmd(t, "version")
	if code != exitOK {
		t.Fatalf("version exited %d, want %d; stderr: %s", code, exitOK, errOut)
	}
	if want := "tapeless " + version + "\n"; out != want {
		t.Errorf("version printed %q, want %q", out, want)
	}
	if errOut != "" {
		t.Errorf("version wrote to stderr: %q", errOut)
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, errOut := runCmd(t, "--json", "version")
	if code != exitOK {
		t.Fatalf("--json version exited %d, want %d; stderr: %s", code, exitOK, errOut)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json version printed %q, not a JSON object: %v", out, err)
	}
	if got["version"] != version {
		t.Errorf("--json version gave version %q, want %q", got["version"], version)
	}
	if len(got) != 1 {
		t.Errorf("--json version gave keys %v, want only \"version\"", got)
	}
}

// TestVersionFromLDFlags checks that the variable the Makefile sets with
// -ldflags "-X main.version=…" is the one the command prints.
func TestVersionFromLDFlags(t *testing.T) {
	old := version
	version = "v9.8.7-test"
	t.Cleanup(func() { version = old })
	_, out, _ := runCmd(t, "version")
	if out != "tapeless v9.8.7-test\n" {
		t.Errorf("version printed %q, want %q", out, "tapeless v9.8.7-test\n")
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantInErr string
	}{
		{"unknown command", []string{"no-such-command"}, `unknown command "no-such-command"`},
		{"unknown flag", []string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"unknown flag on a command", []string{"version", "--bogus"}, "unknown flag: --bogus"},
		{"extra argument", []string{"version", "extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != exitUsage {
				t.Fatalf("run(%q) exited %d, want %d (usage); stderr: %s", tt.args, code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tt.wantInErr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, errOut, tt.wantInErr)
			}
			if !strings.Contains(errOut, "tapeless --help") {
				t.Errorf("run(%q) stderr = %q, want a pointer to 'tapeless --help'", tt.args, errOut)
			}
			if out != "" {
				t.Errorf("run(%q) wrote to stdout: %q", tt.args, out)
			}
		})
	}
}

func TestHelpListsGroupsAndGlobalFlags(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, args...)
			if code != exitOK {
				t.Fatalf("%v exited %d, want %d; stderr: %s", args, code, exitOK, errOut)
			}
			for _, want := range []string{
				"Vault and registration:",
				"Recovery points:",
				"Service:",
				"version", // the one command the skeleton has
				"--config", "--json", "--quiet",
				"Exit codes: 0 ok, 1 error, 2 usage, 3 partial",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("%v output lacks %q:\n%s", args, want, out)
				}
			}
		})
	}
}

// TestHelpGroupsInOrder checks that the groups appear in the order a new
// user needs them: set up a vault, make points, run the service.
func TestHelpGroupsInOrder(t *testing.T) {
	_, out, _ := runCmd(t, "--help")
	vault := strings.Index(out, "Vault and registration:")
	points := strings.Index(out, "Recovery points:")
	service := strings.Index(out, "Service:")
	if vault < 0 || points < 0 || service < 0 {
		t.Fatalf("--help lacks a group heading:\n%s", out)
	}
	if vault >= points || points >= service {
		t.Errorf("--help groups at offsets vault=%d points=%d service=%d, want that order", vault, points, service)
	}
}

// TestEveryCommandHasGroupAndExamples holds every command that other files
// register to the conventions of the CLI: a help group and Long help with
// examples.
func TestEveryCommandHasGroupAndExamples(t *testing.T) {
	g := &globalOptions{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := newRootCmd(g)
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Name() == "version" {
			continue
		}
		if c.GroupID == "" {
			t.Errorf("command %q has no GroupID; set groupVault, groupPoints or groupService", c.Name())
		}
		if c.Long == "" {
			t.Errorf("command %q has no Long help", c.Name())
		}
		if c.Example == "" && !strings.Contains(c.Long, "Example") {
			t.Errorf("command %q has no examples", c.Name())
		}
		// Subcommands (vault create, …) need help and examples too.
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			if sub.Long == "" || sub.Example == "" {
				t.Errorf("command %q has no Long help or no examples", sub.CommandPath())
			}
			for _, line := range strings.Split(sub.Example, "\n") {
				// Continuation lines (ending in \ or starting with a flag) are
				// part of the line before or after.
				line = strings.TrimSpace(line)
				if line != "" && !strings.HasPrefix(line, "--") && !strings.HasSuffix(line, "\\") &&
					!strings.Contains(line+" ", sub.CommandPath()+" ") {
					t.Errorf("%s example %q does not run %q", sub.CommandPath(), line, sub.CommandPath())
				}
			}
		}
	}
}
