// Package archtest holds tests that keep the architecture honest: data flows one
// way, and the Tailscale and wire-protocol dependencies each stay behind one
// package. docs/design.md describes the layout these rules encode.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/waypoint-proxy/waypoint"

// internalDeps lists, for each production package, the module's own packages it
// may import. A package missing from this table may not exist: add it here with
// its place in the flow when you create it.
var internalDeps = map[string][]string{
	"internal/identity":        {},
	"internal/config":          {"internal/units"},
	"internal/relay":           {},
	"internal/acceptloop":      {"internal/ctxtime"},
	"internal/ctxtime":         {},
	"internal/certs":           {},
	"internal/units":           {},
	"internal/coord":           {},
	"internal/coord/redistest": {"internal/pgserver"}, // a throwaway redis-server for tests
	"internal/httpserve":       {},
	"internal/metrics":         {"internal/httpserve"},
	"internal/audit":           {},
	"internal/authz":           {"internal/identity", "internal/units"},
	"internal/tailnet":         {"internal/identity", "internal/ctxtime"}, // includes internal/tailnet/devnet, the demo's private tailnet
	"internal/tunnel":          {"internal/acceptloop", "internal/relay"},
	"internal/pgserver":        {},
	"internal/pgdemo":          {"internal/pgserver"},
	"internal/pgwire":          {},
	"internal/provision":       {"internal/identity", "internal/authz", "internal/provision/plan", "internal/ctxtime"},
	"internal/provision/plan":  {"internal/identity", "internal/authz"}, // the planner: pure, no database (see noDatabase)
	"internal/proxy":           {"internal/identity", "internal/authz", "internal/provision", "internal/pgwire", "internal/relay", "internal/acceptloop", "internal/coord", "internal/metrics", "internal/audit"},
	"internal/pgtest":          {"internal/pgserver"},
	"internal/tailnettest":     {"internal/identity", "internal/tailnet", "internal/tunnel"},
	"internal/testkit":         {},
	"internal/compat":          {}, // runs pgx's test suite; its tests use pgtest, tailnettest, proxy, provision
	"internal/console":         {"internal/identity", "internal/authz", "internal/proxy", "internal/coord", "internal/httpserve"},
	// internal/server is what `waypoint serve` runs: it builds every stage
	// from the configuration, as main did.
	"internal/server": {"internal/config", "internal/tailnet", "internal/certs", "internal/audit", "internal/authz", "internal/coord", "internal/metrics", "internal/pgwire", "internal/provision", "internal/proxy", "internal/console"},
	// internal/tunnelnode is a tunnel's lifecycle: its own tailnet node in
	// front of internal/tunnel's data path, which stays standard-library only.
	"internal/tunnelnode": {"internal/tailnet", "internal/tunnel"},
	"internal/demo":       {"internal/config", "internal/pgdemo", "internal/server", "internal/tailnet", "internal/tunnelnode"},
	"internal/bench":      {"internal/identity", "internal/authz", "internal/provision", "internal/pgwire", "internal/relay", "internal/proxy", "internal/pgtest", "internal/tailnet", "internal/tailnettest", "internal/coord", "internal/metrics"},
}

// restricted maps an import-path prefix to the only packages allowed to import
// it directly from non-test code.
var restricted = map[string][]string{
	"tailscale.com":                       {"internal/tailnet", "internal/tailnettest"},
	"github.com/jackc/pgx/v5/pgproto3":    {"internal/pgwire"},
	"github.com/jackc/pgx/v5/pgconn":      {"internal/pgwire", "internal/provision", "internal/pgtest"},
	"github.com/pelletier/go-toml/v2":     {"internal/config"},
	"github.com/pganalyze/pg_query_go/v6": {"internal/provision/plan"},
}

// noDatabase packages may not import a database driver or database/sql:
// they decide, they do not connect.
var noDatabase = map[string]bool{
	"internal/provision/plan": true,
}

// databasePackages are the import-path prefixes noDatabase refuses.
var databasePackages = []string{"database/sql", "github.com/jackc/pgx", "github.com/lib/pq"}

// stdlibOnly packages may import nothing outside the standard library and the
// module packages internalDeps allows.
var stdlibOnly = map[string]bool{
	"internal/identity":   true,
	"internal/relay":      true,
	"internal/acceptloop": true,
	"internal/ctxtime":    true,
	"internal/certs":      true,
	"internal/audit":      true,
	"internal/units":      true,
	"internal/authz":      true,
	"internal/tunnel":     true,
	"internal/pgserver":   true,
	"internal/compat":     true,
	"internal/httpserve":  true,
	"internal/testkit":    true,
}

func TestImportRules(t *testing.T) {
	root := moduleRoot(t)
	pkgs := packageImports(t, root)
	if len(pkgs) == 0 {
		t.Fatal("found no packages; is the module root right?")
	}
	for pkg, imports := range pkgs {
		for _, imp := range imports {
			if msg := checkImport(pkg, imp); msg != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, msg)
			}
		}
	}
}

// checkImport returns why pkg may not import imp, or "" if it may.
func checkImport(pkg, imp string) string {
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		if strings.HasPrefix(pkg, "cmd/") {
			return ""
		}
		if rel == "internal/testkit" {
			if isTestHelper(pkg) {
				return ""
			}
			return "only tests and test-helper packages (pgtest, pgwiretest, …) may use testkit"
		}
		allowed, known := internalDeps[topPackage(pkg)]
		if !known {
			return "package is not in archtest's layout table; add it with its allowed imports"
		}
		if topPackage(rel) == topPackage(pkg) {
			return ""
		}
		for _, a := range allowed {
			if topPackage(rel) == a {
				return ""
			}
		}
		return "against the one-way flow (allowed: " + strings.Join(allowed, ", ") + ")"
	}
	for prefix, owners := range restricted {
		if imp != prefix && !strings.HasPrefix(imp, prefix+"/") {
			continue
		}
		for _, o := range owners {
			if topPackage(pkg) == o {
				return ""
			}
		}
		return "only " + strings.Join(owners, ", ") + " may import " + prefix
	}
	if stdlibOnly[topPackage(pkg)] && isThirdParty(imp) {
		return "this package is standard-library only"
	}
	if noDatabase[topPackage(pkg)] {
		for _, db := range databasePackages {
			if imp == db || strings.HasPrefix(imp, db+"/") {
				return "this package may not use a database"
			}
		}
	}
	return ""
}

// topPackage maps a package to the layout entry it belongs to: the longest
// entry of internalDeps that is the package or contains it, so subpackages
// of internal/x count as internal/x unless they have an entry of their own
// (internal/provision/plan); otherwise internal/x.
func topPackage(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || parts[0] != "internal" {
		return p
	}
	for n := len(parts); n > 2; n-- {
		if sub := strings.Join(parts[:n], "/"); internalDeps[sub] != nil {
			return sub
		}
	}
	return parts[0] + "/" + parts[1]
}

// isTestHelper reports whether pkg is a package of helpers for tests, named
// like pgtest or pgwiretest.
func isTestHelper(pkg string) bool {
	return strings.HasSuffix(pkg[strings.LastIndexByte(pkg, '/')+1:], "test")
}

func isThirdParty(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return strings.Contains(first, ".")
}

// packageImports parses every non-test Go file under root and returns each
// package directory (relative to root) with its sorted, deduplicated imports.
func packageImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	seen := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, p := range sourceFiles(t, root) {
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		pkg := filepath.ToSlash(rel)
		if seen[pkg] == nil {
			seen[pkg] = map[string]bool{}
		}
		for _, is := range f.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			seen[pkg][imp] = true
		}
	}
	out := map[string][]string{}
	for pkg, set := range seen {
		for imp := range set {
			out[pkg] = append(out[pkg], imp)
		}
		sort.Strings(out[pkg])
	}
	return out
}

// sourceFiles returns every non-test Go file under root, outside testdata,
// node_modules and hidden directories.
func sourceFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func TestCheckImport(t *testing.T) {
	tests := []struct {
		pkg, imp string
		ok       bool
	}{
		{"internal/proxy", module + "/internal/pgwire", true},
		{"internal/pgwire", module + "/internal/proxy", false},
		{"internal/proxy", "tailscale.com/tsnet", false},
		{"internal/tailnet", "tailscale.com/tsnet", true},
		{"internal/tailnet/devnet", "tailscale.com/tstest/integration/testcontrol", true},
		{"internal/proxy", "github.com/jackc/pgx/v5/pgproto3", false},
		{"internal/relay", "github.com/prometheus/client_golang/prometheus", false},
		{"internal/relay", "io", true},
		{"cmd/waypoint", module + "/internal/config", true},
		{"internal/proxy", module + "/internal/config", false},
		{"internal/newthing", module + "/internal/identity", false},
		{"internal/provision", module + "/internal/provision/plan", true},
		{"internal/provision/plan", module + "/internal/provision", false},
		{"internal/provision/plan", module + "/internal/authz", true},
		{"internal/provision/plan", "github.com/pganalyze/pg_query_go/v6", true},
		{"internal/provision/plan", "github.com/jackc/pgx/v5", false},
		{"internal/provision/plan", "github.com/jackc/pgx/v5/pgconn", false},
		{"internal/provision/plan", "database/sql", false},
		{"internal/provision", "github.com/pganalyze/pg_query_go/v6", false},
		{"internal/proxy", module + "/internal/provision/plan", false},
	}
	for _, tt := range tests {
		t.Run(path.Base(tt.pkg)+"→"+tt.imp, func(t *testing.T) {
			got := checkImport(tt.pkg, tt.imp) == ""
			if got != tt.ok {
				t.Errorf("checkImport(%q, %q) allowed = %v, want %v", tt.pkg, tt.imp, got, tt.ok)
			}
		})
	}
}
