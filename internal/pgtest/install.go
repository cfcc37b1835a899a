package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// installHint tells a developer how to get the binaries pgtest needs.
const installHint = "run `bash scripts/install-postgres.sh` from the repository root"

// Where PostgreSQL binaries are looked for.
const (
	pg18DirEnv     = "WAYPOINT_PG18_DIR"
	pg18DefaultDir = "/opt/waypoint-pg/18"
)

// installation is one usable set of PostgreSQL server binaries.
type installation struct {
	pgserver.Installation
	debian bool // from the OS packages (a candidate for the default version)
}

// missingError reports PostgreSQL binaries that are not installed.
type missingError struct {
	what string
}

func (e *missingError) Error() string {
	return fmt.Sprintf("pgtest: %s not installed; %s", e.what, installHint)
}

// inCI reports whether the environment says this is a CI run, where missing
// binaries are a failure rather than a reason to skip.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// skipOrFatal ends the test: a skip for missing binaries outside CI, a
// failure otherwise.
func skipOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if skippable(err) {
		tb.Skip(err)
	}
	tb.Fatal(err)
}

// skippable reports whether err only says binaries are missing, outside CI.
func skippable(err error) bool {
	_, missing := errors.AsType[*missingError](err)
	return missing && !inCI()
}

// Versions returns the major versions whose binaries are installed,
// ascending (e.g. [15 18]). It looks once per test binary.
func Versions() []int {
	var majors []int
	for _, in := range installations() {
		majors = append(majors, in.Major)
	}
	return majors
}

// installations returns the usable installations, one per major version,
// ascending. The npm build in $WAYPOINT_PG18_DIR wins over an OS package of
// the same major.
var installations = sync.OnceValue(func() []installation {
	byMajor := map[int]installation{}
	for _, in := range pgserver.Installed() {
		byMajor[in.Major] = installation{Installation: in, debian: true}
	}
	if in, ok := pgserver.Probe(filepath.Join(pg18Dir(), "native", "bin")); ok {
		byMajor[in.Major] = installation{Installation: in}
	}
	var all []installation
	for _, in := range byMajor {
		all = append(all, in)
	}
	slices.SortFunc(all, func(a, b installation) int { return a.Major - b.Major })
	return all
})

// pg18Dir is where scripts/install-postgres.sh puts the npm PostgreSQL 18.
func pg18Dir() string {
	if dir := os.Getenv(pg18DirEnv); dir != "" {
		return dir
	}
	return pg18DefaultDir
}

// findInstallation returns the installation for a requested major version;
// 0 picks the newest OS-packaged one.
func findInstallation(version int) (installation, error) {
	all := installations()
	if version == 0 {
		for _, in := range slices.Backward(all) {
			if in.debian {
				return in, nil
			}
		}
		return installation{}, &missingError{what: "PostgreSQL (no /usr/lib/postgresql/<N>/bin or pg_config)"}
	}
	for _, in := range all {
		if in.Major == version {
			return in, nil
		}
	}
	return installation{}, &missingError{what: fmt.Sprintf("PostgreSQL %d", version)}
}
