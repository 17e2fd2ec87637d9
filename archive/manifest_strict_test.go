package archive

import (
	"io"
	"strings"
	"testing"
)

const strictHeader = `{"format":"tapeless-manifest","version":1}` + "\n"

// Each case is a manifest encoding/json would accept (and read some other
// way than a strict reader), which the manifest reader must refuse.
func TestManifestReaderIsStrict(t *testing.T) {
	good := `{"path":"a","type":"file","mode":420,"uid":0,"gid":0,"mtime_ns":1700000000000000000,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}`
	if _, err := readAllNodes(strictHeader + good + "\n"); err != nil {
		t.Fatalf("a well-formed manifest was refused: %v", err)
	}
	for _, c := range []struct{ name, line, want string }{
		{"duplicate key", strings.Replace(good, `"mode":420`, `"mode":420,"mode":511`, 1), `duplicate key "mode"`},
		{"key in another case", strings.Replace(good, `"mode":420`, `"Mode":420`, 1), `unknown key "Mode"`},
		{"invalid UTF-8", strings.Replace(good, `"path":"a"`, "\"path\":\"a\xff\"", 1), "not valid UTF-8"},
		{"lone surrogate", strings.Replace(good, `"path":"a"`, `"path":"a\ud800"`, 1), "surrogate"},
		{"lone low surrogate", strings.Replace(good, `"path":"a"`, `"path":"a\udc00b"`, 1), "surrogate"},
		{"unknown field", strings.Replace(good, `"uid":0`, `"uid":0,"owner":"x"`, 1), `unknown key "owner"`},
		{"both twins", strings.Replace(good, `"path":"a"`, `"path":"a","path_b64":"Yg=="`, 1), `both "path" and "path_b64"`},
		{"duplicate xattr key", strings.Replace(good, `"uid":0`, `"uid":0,"xattrs":[{"name":"user.x","name":"user.y","value":""}]`, 1), `duplicate key "name"`},
		{"unknown xattr key", strings.Replace(good, `"uid":0`, `"uid":0,"xattrs":[{"Name":"user.x","value":""}]`, 1), `unknown key "Name"`},
		{"trailing data", good + ` {}`, "after the JSON object"},
	} {
		_, err := readAllNodes(strictHeader + c.line + "\n")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: error = %v, want one naming line 2 and %q", c.name, err, c.want)
		}
	}
	// A valid surrogate pair is a character like any other.
	pair := strings.Replace(good, `"path":"a"`, `"path":"a\ud83d\ude00"`, 1)
	ns, err := readAllNodes(strictHeader + pair + "\n")
	if err != nil || len(ns) != 1 || ns[0].Path != "a\U0001F600" {
		t.Errorf("surrogate pair: %v %v, want path a😀", ns, err)
	}
	for name, h := range map[string]string{
		"duplicate header key": `{"format":"tapeless-manifest","version":1,"version":2}`,
		"header key case":      `{"format":"tapeless-manifest","Version":1}`,
	} {
		if _, err := readAllNodes(h + "\n" + good + "\n"); err == nil || !strings.Contains(err.Error(), "header") {
			t.Errorf("%s: error = %v, want a bad header", name, err)
		}
	}
}

func readAllNodes(s string) ([]*Node, error) {
	r, err := NewManifestReader(strings.NewReader(s))
	if err != nil {
		return nil, err
	}
	var out []*Node
	for {
		n, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, n)
	}
}
