package pgserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// debianGlob is where Debian's postgresql packages put each major version.
const debianGlob = "/usr/lib/postgresql/*/bin"

// requiredBinaries must all be in one bin directory.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// Installation is one usable set of PostgreSQL server binaries.
type Installation struct {
	Major int    // major version, e.g. 15
	Bin   string // directory holding initdb, pg_ctl and postgres
}

// Installed returns the installations from the operating system's
// packages: Debian's /usr/lib/postgresql/<N>/bin directories and the one
// `pg_config --bindir` names. There is one per major version (a Debian
// directory wins over pg_config's of the same major), ascending; none is
// an empty slice. It runs `postgres --version` for each candidate and does
// not cache.
func Installed() []Installation {
	dirs, _ := filepath.Glob(debianGlob)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	byMajor := map[int]Installation{}
	for _, dir := range dirs {
		in, ok := Probe(dir)
		if _, seen := byMajor[in.Major]; ok && !seen {
			byMajor[in.Major] = in
		}
	}
	all := make([]Installation, 0, len(byMajor))
	for _, in := range byMajor {
		all = append(all, in)
	}
	slices.SortFunc(all, func(a, b Installation) int { return a.Major - b.Major })
	return all
}

// Probe reports the installation in bin, if initdb, pg_ctl and postgres are
// all there and `postgres --version` names a major version.
func Probe(bin string) (Installation, bool) {
	for _, name := range requiredBinaries {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.IsDir() {
			return Installation{}, false
		}
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return Installation{}, false
	}
	major, ok := parseMajor(string(out))
	if !ok {
		return Installation{}, false
	}
	return Installation{Major: major, Bin: bin}, true
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
