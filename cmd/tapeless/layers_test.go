package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/tapeless/tapeless"

// layerRules is DESIGN.md's architecture: cmd → scheduler → (archive,
// retention, storage), archive → storage, retention imports nothing of
// ours. Each folder lists the folders of ours it may import (itself and
// its subfolders always).
var layerRules = map[string][]string{
	"storage":           {},
	"retention":         {},
	"archive":           {"storage"},
	"scheduler":         {"archive", "retention", "storage", "internal/humanize"},
	"internal/humanize": {}, // output formatting: a leaf any layer that prints may use
}

// TestLayers fails when a package file (tests included) imports a folder
// of ours its layer must not know, like a depguard rule.
func TestLayers(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for layer, allowed := range layerRules {
		dir := filepath.Join(root, layer)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p != modulePath && !strings.HasPrefix(p, modulePath+"/") {
					continue
				}
				if target := strings.TrimPrefix(strings.TrimPrefix(p, modulePath), "/"); !layerMay(layer, allowed, target) {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s imports %s: %s may import only %v of ours (DESIGN.md, Architecture)", rel, p, layer, allowed)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", layer, err)
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: the layer test is not looking at the project", checked)
	}
}

func layerMay(layer string, allowed []string, target string) bool {
	for _, ok := range append([]string{layer}, allowed...) {
		if target == ok || strings.HasPrefix(target, ok+"/") {
			return true
		}
	}
	return false
}

func TestLayerMay(t *testing.T) {
	for _, tc := range []struct {
		layer, target string
		want          bool
	}{
		{"archive", "storage", true},
		{"archive", "storage/storagetest", true},
		{"archive", "retention", false},
		{"archive", "cmd/tapeless", false},
		{"storage", "archive", false},
		{"storage", "storage/storagetest", true},
		{"retention", "storage", false},
		{"scheduler", "archive", true},
		{"scheduler", "cmd/tapeless", false},
		{"archive", "archiver", false},
	} {
		if got := layerMay(tc.layer, layerRules[tc.layer], tc.target); got != tc.want {
			t.Errorf("layerMay(%s, %s) = %v, want %v", tc.layer, tc.target, got, tc.want)
		}
	}
}
