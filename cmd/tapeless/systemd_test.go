package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const unitFile = "../../docs/systemd/tapeless.service"

// parseUnit reads a systemd unit file into section → key → values: a
// line is a comment, blank, [Section] or Key=Value. Anything else fails.
func parseUnit(t *testing.T, b []byte) map[string]map[string][]string {
	t.Helper()
	units := map[string]map[string][]string{}
	key := regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			units[section] = map[string][]string{}
		case strings.HasSuffix(line, "\\"):
			t.Errorf("line %d: continuation lines are not used here: %q", n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || !key.MatchString(k) || section == "" {
				t.Errorf("line %d is no Key=Value in a section: %q", n, line)
				continue
			}
			units[section][k] = append(units[section][k], v)
		}
	}
	return units
}

// TestSystemdUnit checks docs/systemd/tapeless.service: its syntax, the
// settings docs/OPERATIONS.md promises, that the command line it runs
// exists, and, where systemd-analyze is installed, that systemd itself
// accepts every key and value.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, b)
	want := map[string]map[string]string{
		"Unit": {"After": "network-online.target"},
		"Service": {"Type": "simple", "User": "tapeless", "KillSignal": "SIGTERM", "TimeoutStopSec": "45",
			"ExecStart":       "/usr/local/bin/tapeless daemon --config /etc/tapeless/config.yaml",
			"ExecReload":      "/bin/kill -HUP $MAINPID",
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "read-only", "PrivateTmp": "yes",
			"ReadWritePaths": "/var/lib/tapeless /etc/tapeless", "StateDirectory": "tapeless"},
		"Install": {"WantedBy": "multi-user.target"},
	}
	for sec, kv := range want {
		for k, v := range kv {
			if got := u[sec][k]; len(got) != 1 || got[0] != v {
				t.Errorf("[%s] %s = %q, want %q", sec, k, got, v)
			}
		}
	}
	// The command line it runs parses: the config flag is global.
	root := newRootCmd(&globalOptions{})
	args := strings.Fields(want["Service"]["ExecStart"])[1:]
	cmd, rest, err := root.Find(args)
	daemonMissing := err != nil || cmd.Name() != "daemon"
	if !daemonMissing {
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("ExecStart's arguments %q: %v", args, err)
		}
	}

	if path, err := exec.LookPath("systemd-analyze"); err == nil {
		analyze(t, path, b)
	} else {
		t.Log("systemd-analyze is not installed: only the syntax was checked")
	}
	if daemonMissing {
		t.Skip("no 'tapeless daemon' command in this build yet: ExecStart's command line was not checked")
	}
}

// analyze runs systemd-analyze verify on the unit, its binary swapped for
// this test's (systemd checks that it is executable), and fails on any
// complaint: verify exits 0 on unknown keys and bad values and only says
// so on stderr.
func analyze(t *testing.T, path string, unit []byte) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b []byte) string {
		f := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(path, "verify", "--man=no", f).CombinedOutput()
		if err != nil {
			return string(out) + err.Error()
		}
		return string(out)
	}
	if out := check("tapeless.service", bytes.ReplaceAll(unit, []byte("/usr/local/bin/tapeless"), []byte(exe))); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	// The check above would catch a typo.
	bad := bytes.Replace(unit, []byte("ProtectSystem=strict"), []byte("ProtectSystem=strictt"), 1)
	if out := check("tapeless-bad.service", bytes.ReplaceAll(bad, []byte("/usr/local/bin/tapeless"), []byte(exe))); !strings.Contains(out, "strictt") {
		t.Errorf("systemd-analyze verify did not complain about a bad value: %q", out)
	}
}
