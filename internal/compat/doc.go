// Package compat runs a PostgreSQL driver's own test suite — pgx's, at the
// version Waypoint's go.mod requires — twice against a throwaway
// PostgreSQL: once directly, logged in as a role with the same privileges
// Waypoint's role would have, and once through Waypoint on an in-process
// tailnet. Then it compares the failing tests: a test
// that fails only through Waypoint fails the comparison unless
// allowed-differences.txt lists it with a reason.
//
// The harness is the test TestCompat, because it is built from the
// testing.TB rigs (pgtest, tailnettest); plain `go test ./...` skips it:
//
//	make compat                                       # the comparison; CI runs it
//	go test -v -run '^TestCompat$' ./internal/compat/ -compat-full
//	go test -v -run '^TestCompat$' ./internal/compat/ -compat-full -compat-test-timeout 2m
//	go test -v -run '^TestCompat$' ./internal/compat/ -compat-full -compat-rechecks 0   # no second chance
//
// The full run is also selected by WAYPOINT_COMPAT=1.
//
// The non-test files hold what does not need PostgreSQL or a tailnet and is
// unit tested on its own: locating and building the suite (suite.go),
// running its test binaries with a per-test time limit and resuming a
// package after a hang (run.go), reading test2json output (gotest.go), the
// allowed list (allowed.go) and the comparison and its report
// (compare.go). They import only the standard library.
package compat

// Module is the driver whose test suite is run, at the version the main
// module's go.mod requires.
const Module = "github.com/jackc/pgx/v5"

// Packages are Module's test packages that are run, relative to its root
// ("." is the root package), slowest first, the order Build.Run starts
// them in (so that the longest ones do not start last).
var Packages = []string{".", "pgtype", "pgconn", "stdlib", "pgxpool"}
