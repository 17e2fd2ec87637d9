package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/tapeless/tapeless"

// layer is what one folder of ours may use (docs/ARCHITECTURE.md).
type layer struct {
	// imports are the folders of ours it may import (itself and its
	// subfolders always); testImports those its _test.go files may too.
	imports, testImports []string
	// forbidden are package-qualified names its production files must
	// not use ("archive.Offload"): work that belongs to another layer.
	forbidden []string
}

// layers is the architecture: cmd → scheduler → (archive, retention,
// storage), archive → storage, retention and storage know nothing of
// ours above them. The most specific folder wins.
var layers = map[string]layer{
	"storage":             {testImports: []string{"storage/storagetest"}},
	"storage/storagetest": {imports: []string{"storage"}},
	"storage/vault":       {imports: []string{"storage"}, testImports: []string{"storage/storagetest"}},
	"retention":           {},
	"archive":             {imports: []string{"storage", "storage/vault"}, testImports: []string{"storage/storagetest"}},
	"scheduler":           {imports: []string{"archive", "retention", "storage", "storage/vault"}, testImports: []string{"storage/storagetest"}},
	"cmd/tapeless": {
		imports:     []string{"scheduler", "archive", "retention", "storage", "storage/vault"},
		testImports: []string{"storage/storagetest"},
		// The jobs and the vault's assembly are the scheduler's: the
		// CLI calls one job per command and never wires copies,
		// throttles or retention into the archive itself.
		forbidden: []string{
			"archive.Offload", "archive.PlanOffload", "archive.Prune", "archive.CheckVault", "archive.RepairVault",
			"storage.Replicated", "storage.Throttled", "retention.Apply", "storagetest.NewFault",
		},
	},
}

// layerOf returns the folder whose rules apply to rel (a slash path
// relative to the module root), the most specific one.
func layerOf(rel string) (string, bool) {
	best := ""
	for name := range layers {
		if (rel == name || strings.HasPrefix(rel, name+"/")) && len(name) > len(best) {
			best = name
		}
	}
	return best, best != ""
}

// may reports whether a file of a layer may import target: the layer that
// owns target (the most specific one) must be the file's own or allowed.
// A subfolder with rules of its own, like storage/storagetest, is not
// allowed by allowing its parent.
func may(target string, allowed []string) bool {
	owner, ok := layerOf(target)
	if !ok {
		return false // cmd/tapeless and the like: nobody imports them
	}
	for _, a := range allowed {
		if owner == a {
			return true
		}
	}
	return false
}

// layerViolations checks every Go file of the module at root and returns
// one line per forbidden import or name, and how many files it read.
func layerViolations(root string) ([]string, int, error) {
	var out []string
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		relFile, _ := filepath.Rel(root, path)
		relFile = filepath.ToSlash(relFile)
		name, ok := layerOf(filepath.ToSlash(filepath.Dir(relFile)))
		if !ok {
			return nil
		}
		l := layers[name]
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		isTest := strings.HasSuffix(path, "_test.go")
		local := map[string]string{} // local package name → folder of ours
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != modulePath && !strings.HasPrefix(p, modulePath+"/") {
				continue
			}
			target := strings.TrimPrefix(strings.TrimPrefix(p, modulePath), "/")
			alias := target[strings.LastIndex(target, "/")+1:]
			if imp.Name != nil {
				alias = imp.Name.Name
			}
			local[alias] = target
			allowed := append([]string{name}, l.imports...)
			if isTest {
				allowed = append(allowed, l.testImports...)
			}
			if !may(target, allowed) {
				out = append(out, fmt.Sprintf("%s imports %s: %s may import only %v of ours", relFile, target, name, allowed))
			}
		}
		if isTest || len(l.forbidden) == 0 {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok || local[x.Name] == "" {
				return true
			}
			pkg := local[x.Name]
			used := pkg[strings.LastIndex(pkg, "/")+1:] + "." + sel.Sel.Name
			for _, bad := range l.forbidden {
				if used == bad {
					out = append(out, fmt.Sprintf("%s uses %s: that is the scheduler's work, call its job instead", relFile, used))
				}
			}
			return true
		})
		return nil
	})
	sort.Strings(out)
	return out, checked, err
}

// TestLayers fails when a file of the project imports a folder of ours its
// layer must not know, or the CLI does a job's work itself.
func TestLayers(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bad, checked, err := layerViolations(root)
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files: the layer test is not looking at the project", checked)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestLayersCatchForbiddenArrows runs the checker on a small module with
// one file for each arrow the design forbids, and one allowed of each
// kind, so a checker that stopped looking would fail here.
func TestLayersCatchForbiddenArrows(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"storage/bad.go":          `import _ "` + modulePath + `/archive"`,
		"storage/ok_test.go":      `import _ "` + modulePath + `/storage/storagetest"`,
		"storage/bad2.go":         `import _ "` + modulePath + `/storage/vault"`,
		"storage/vault/ok.go":     `import _ "` + modulePath + `/storage"`,
		"storage/vault/bad.go":    `import _ "` + modulePath + `/archive"`,
		"retention/bad.go":        `import _ "` + modulePath + `/storage"`,
		"archive/bad.go":          `import _ "` + modulePath + `/scheduler"`,
		"archive/bad2.go":         `import _ "` + modulePath + `/cmd/tapeless"`,
		"archive/ok.go":           `import _ "` + modulePath + `/storage"`,
		"scheduler/bad.go":        `import _ "` + modulePath + `/cmd/tapeless"`,
		"scheduler/ok.go":         `import _ "` + modulePath + `/retention"`,
		"cmd/tapeless/bad.go":     `import _ "` + modulePath + `/storage/storagetest"`,
		"cmd/tapeless/ok_test.go": `import _ "` + modulePath + `/storage/storagetest"`,
		"cmd/tapeless/job.go":     `import a "` + modulePath + `/archive"` + "\nvar _ = a.Prune",
		"cmd/tapeless/wire.go":    `import "` + modulePath + `/storage"` + "\nvar _ = storage.Replicated",
		"cmd/tapeless/ok.go":      `import "` + modulePath + `/scheduler"` + "\nvar _ = scheduler.Prune",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		pkg := filepath.Base(filepath.Dir(p))
		if err := os.WriteFile(p, []byte("package "+pkg+"\n\n"+body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad, checked, err := layerViolations(root)
	if err != nil {
		t.Fatal(err)
	}
	if checked != len(files) {
		t.Errorf("checked %d files, want %d", checked, len(files))
	}
	var got []string
	for _, b := range bad {
		got = append(got, b[:strings.Index(b, " ")])
	}
	want := []string{"archive/bad.go", "archive/bad2.go", "cmd/tapeless/bad.go", "cmd/tapeless/job.go",
		"cmd/tapeless/wire.go", "retention/bad.go", "scheduler/bad.go", "storage/bad.go", "storage/bad2.go", "storage/vault/bad.go"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("violations in %v, want exactly %v; all:\n%s", got, want, strings.Join(bad, "\n"))
	}
}
