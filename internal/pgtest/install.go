package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// installHint tells a developer how to get the binaries pgtest needs.
const installHint = "run `bash scripts/install-postgres.sh` from the repository root"

// Where PostgreSQL binaries are looked for.
const (
	debianGlob     = "/usr/lib/postgresql/*/bin"
	pg18DirEnv     = "WAYPOINT_PG18_DIR"
	pg18DefaultDir = "/opt/waypoint-pg/18"
)

// requiredBinaries must all be present in an installation's bin directory.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// installation is one usable set of PostgreSQL server binaries.
type installation struct {
	major  int
	bin    string // directory holding requiredBinaries
	debian bool   // from the OS packages (a candidate for the default version)
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
		majors = append(majors, in.major)
	}
	return majors
}

// installations returns the usable installations, one per major version,
// ascending. The npm build in $WAYPOINT_PG18_DIR wins over an OS package of
// the same major.
var installations = sync.OnceValue(func() []installation {
	byMajor := map[int]installation{}
	for _, in := range osInstallations() {
		byMajor[in.major] = in
	}
	if in, ok := probe(filepath.Join(pg18Dir(), "native", "bin"), false); ok {
		byMajor[in.major] = in
	}
	var all []installation
	for _, in := range byMajor {
		all = append(all, in)
	}
	slices.SortFunc(all, func(a, b installation) int { return a.major - b.major })
	return all
})

// osInstallations finds Debian's /usr/lib/postgresql/<N>/bin directories and
// the one `pg_config --bindir` names.
func osInstallations() []installation {
	dirs, _ := filepath.Glob(debianGlob)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	var found []installation
	for _, dir := range dirs {
		if in, ok := probe(dir, true); ok {
			found = append(found, in)
		}
	}
	return found
}

// pg18Dir is where scripts/install-postgres.sh puts the npm PostgreSQL 18.
func pg18Dir() string {
	if dir := os.Getenv(pg18DirEnv); dir != "" {
		return dir
	}
	return pg18DefaultDir
}

// probe reports the installation in bin, if all required binaries are
// there and postgres --version names a major version.
func probe(bin string, debian bool) (installation, bool) {
	for _, name := range requiredBinaries {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.IsDir() {
			return installation{}, false
		}
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return installation{}, false
	}
	major, ok := parseMajor(string(out))
	if !ok {
		return installation{}, false
	}
	return installation{major: major, bin: bin, debian: debian}, true
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// parseMajor extracts the major version from `postgres --version` output,
// e.g. "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → 15.
func parseMajor(versionOutput string) (int, bool) {
	m := versionRE.FindStringSubmatch(versionOutput)
	if m == nil {
		return 0, false
	}
	major, err := strconv.Atoi(m[1])
	if err != nil || major <= 0 {
		return 0, false
	}
	return major, true
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
		if in.major == version {
			return in, nil
		}
	}
	return installation{}, &missingError{what: fmt.Sprintf("PostgreSQL %d", version)}
}
