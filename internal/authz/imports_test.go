package authz

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure: its non-test files may import only the
// standard library and internal/identity (never tailscale.com or a driver).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const identity = "github.com/waypoint-proxy/waypoint/internal/identity"
	const units = "github.com/waypoint-proxy/waypoint/internal/units"
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if path != identity && path != units && strings.Contains(first, ".") {
				t.Errorf("%s imports %q, want only the standard library, %s and %s", name, path, identity, units)
			}
		}
	}
}
