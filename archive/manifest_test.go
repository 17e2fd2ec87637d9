package archive

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	nodes := []*Node{
		{Path: "dir", Type: TypeDir, Perm: 0o755, UID: 1, GID: 2, User: "u", Group: "g", Mtime: 123456789},
		{Path: "dir/ünï\ncode\tname", Type: TypeFile, Perm: 0o4711, Size: 10, Mtime: -5,
			Chunks: []ID{{1, 2}, {3}}, SHA256: bytes.Repeat([]byte{7}, 32),
			Xattrs: []Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}, {Name: "user.\xff", Value: []byte{}}}},
		{Path: "bad\xffutf8", Type: TypeFile, Size: 1 << 30, Extents: []Extent{{0, 4096}, {1 << 29, 8192}},
			Chunks: []ID{{9}}, SHA256: make([]byte, 32), Nlink: 2, Changed: true},
		{Path: "hole", Type: TypeFile, Size: 100, Extents: []Extent{}, SHA256: make([]byte, 32)},
		{Path: "link", Type: TypeFile, LinkTo: "bad\xffutf8"},
		{Path: "sym", Type: TypeSymlink, Perm: 0o777, Target: "/abs/\xfe\n"},
	}
	var buf bytes.Buffer
	w, err := NewManifestWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := w.Write(n); err != nil {
			t.Fatalf("Write(%q): %v", n.Path, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != len(nodes)+1 {
		t.Errorf("manifest has %d lines, want %d", got, len(nodes)+1)
	}
	r, err := NewManifestReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range nodes {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Next() = %+v,\nwant %+v", got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after last = %v, want io.EOF", err)
	}
}

func TestManifestRejectsBadEntries(t *testing.T) {
	const header = `{"format":"tapeless-manifest","version":1}` + "\n"
	cases := map[string]string{
		"dotdot":        `{"path":"../x","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"inner dotdot":  `{"path":"a/../../x","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"absolute":      `{"path":"/etc/passwd","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"empty":         `{"path":"","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"nul":           `{"path":"a\u0000b","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"double slash":  `{"path":"a//b","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"dot":           `{"path":".","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"device":        `{"path":"d","type":"chardev","mode":493,"uid":0,"gid":0,"mtime_ns":0}`,
		"mode bits":     `{"path":"d","type":"dir","mode":8685,"uid":0,"gid":0,"mtime_ns":0}`,
		"link escape":   `{"path":"l","type":"file","link":"../../etc/shadow","mode":0,"uid":0,"gid":0,"mtime_ns":0}`,
		"unknown field": `{"path":"d","type":"dir","mode":493,"uid":0,"gid":0,"mtime_ns":0,"rdev":5}`,
		"extent beyond": `{"path":"f","type":"file","size":10,"extents":[[5,6]],"sha256":"` + strings.Repeat("00", 32) + `","mode":0,"uid":0,"gid":0,"mtime_ns":0}`,
		"no hash":       `{"path":"f","type":"file","size":10,"mode":0,"uid":0,"gid":0,"mtime_ns":0}`,
		"bad chunk":     `{"path":"f","type":"file","chunks":["zz"],"sha256":"` + strings.Repeat("00", 32) + `","mode":0,"uid":0,"gid":0,"mtime_ns":0}`,
		"truncated":     `{"path":"f","type":"dir","mode":0,"uid":0,"gid":0,"mtime_ns":0`,
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			nl := "\n"
			if name == "truncated" {
				nl = ""
			}
			r, err := NewManifestReader(strings.NewReader(header + line + nl))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := r.Next(); err == nil {
				t.Errorf("Next() = %+v, want an error", n)
			}
		})
	}
	if _, err := NewManifestReader(strings.NewReader(`{"format":"tapeless-manifest","version":2}` + "\n")); err == nil ||
		!strings.Contains(err.Error(), "unsupported manifest version 2") {
		t.Errorf("version 2 header: err = %v, want unsupported", err)
	}
}
