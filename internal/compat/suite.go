package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Suite is the test suite of one module version, built where the module
// cache keeps it.
//
// Why there, and not another way:
//
//   - `go test github.com/jackc/pgx/v5/...` from Waypoint's module builds
//     pgx's tests against Waypoint's dependency graph: their test-only
//     dependencies (testify, …) resolve to whatever versions Waypoint's
//     go.mod happens to select, and need go.sum entries that `go mod tidy`
//     does not promise to keep for a dependency's tests. It works today by
//     accident.
//   - Building in pgx's own module directory uses pgx's go.mod and go.sum,
//     as pgx's CI does, independent of Waypoint's. The directory in the
//     module cache is read-only, which is fine: the test binaries are
//     written elsewhere, -mod=readonly never touches go.mod or go.sum, and
//     pgx's tests write only under t.TempDir (checked for v5.12.0).
//   - A copy in a fresh temporary directory would also work, but the build
//     cache keys packages outside GOROOT by their directory (without
//     -trimpath), so every run would recompile pgx and its tests (about a
//     minute of CPU here); in place, a second build links cached packages
//     in seconds. -trimpath would avoid that only by recompiling the
//     standard library once more.
//
// pgx v5.12.0 needs Go 1.25 (its go directive), so GOTOOLCHAIN=local with
// Waypoint's Go 1.26 satisfies it without downloading a toolchain.
type Suite struct {
	Module  string // module path, e.g. "github.com/jackc/pgx/v5"
	Version string // e.g. "v5.12.0"
	Dir     string // its directory in the module cache
}

// Locate returns the suite of module at the version the main module in
// dir requires, downloading it into the module cache if needed (`go mod
// download -json module`). goCmd is the go command ("" means "go").
func Locate(ctx context.Context, goCmd, dir, module string) (Suite, error) {
	cmd := exec.CommandContext(ctx, orGo(goCmd), "mod", "download", "-json", module)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Suite{}, fmt.Errorf("compat: go mod download %s: %w: %s", module, err, strings.TrimSpace(stderr.String()))
	}
	var info struct{ Path, Version, Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return Suite{}, fmt.Errorf("compat: go mod download %s: %w", module, err)
	}
	if info.Error != "" || info.Dir == "" {
		return Suite{}, fmt.Errorf("compat: go mod download %s: %s (no directory)", module, info.Error)
	}
	return Suite{Module: info.Path, Version: info.Version, Dir: info.Dir}, nil
}

func orGo(goCmd string) string {
	if goCmd == "" {
		return "go"
	}
	return goCmd
}

// ImportPath returns the import path of pkg, a package directory relative
// to the module root ("." for the root package).
func (s Suite) ImportPath(pkg string) string {
	if pkg == "." || pkg == "" {
		return s.Module
	}
	return s.Module + "/" + pkg
}

// Build is a suite's test binaries, compiled once and run by every run.
type Build struct {
	Suite    Suite
	Packages []string          // as given to Build, relative to the module root
	Go       string            // the go command that built them ("" means "go")
	bins     map[string]string // package → test binary
}

// Build compiles the test binaries of packages (relative to the module
// root, "." for the root package) into outDir with one `go test -c`, in
// the suite's directory with env (see TestEnv).
func (s Suite) Build(ctx context.Context, goCmd string, env, packages []string, outDir string) (*Build, error) {
	args := []string{"test", "-c", "-mod=readonly", "-o", outDir + string(filepath.Separator)}
	b := &Build{Suite: s, Packages: packages, Go: goCmd, bins: map[string]string{}}
	for _, p := range packages {
		args = append(args, s.ImportPath(p))
		b.bins[p] = filepath.Join(outDir, binaryName(s.ImportPath(p)))
	}
	if len(slices.Compact(slices.Sorted(maps.Values(b.bins)))) != len(packages) {
		return nil, fmt.Errorf("compat: packages %v have test binaries of the same name", packages)
	}
	cmd := exec.CommandContext(ctx, orGo(goCmd), args...)
	cmd.Dir = s.Dir
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compat: go test -c: %w\n%s", err, out)
	}
	for p, bin := range b.bins {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("compat: no test binary for %s: %w", p, err)
		}
	}
	return b, nil
}

// binaryName is the file name `go test -c -o dir/` gives a package's test
// binary: its last path element, or the one before a major-version suffix
// ("github.com/jackc/pgx/v5" → "pgx.test").
func binaryName(importPath string) string {
	elem := path.Base(importPath)
	if majorSuffixRE.MatchString(elem) && strings.Contains(importPath, "/") {
		elem = path.Base(path.Dir(importPath))
	}
	return elem + ".test"
}

var majorSuffixRE = regexp.MustCompile(`^v[0-9]+$`)

// TestEnv returns the environment for building and running a suite: base
// (usually os.Environ()) without any PG* variable — libpq's PGHOST,
// PGUSER, PGPASSWORD, … change how pgconn parses connection strings, and
// pgx's optional PGX_TEST_* variables enable tests that need servers this
// harness does not set up — and with set added (e.g. PGX_TEST_DATABASE).
// GOTOOLCHAIN=local, GOWORK=off and GOFLAGS= pin the go command to the
// installed toolchain, the suite's own go.mod and no ambient flags.
func TestEnv(base []string, set map[string]string) []string {
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || name == "GOTOOLCHAIN" || name == "GOWORK" || name == "GOFLAGS" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	for _, name := range slices.Sorted(maps.Keys(set)) {
		env = append(env, name+"="+set[name])
	}
	return env
}
