package pgdemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrNotInstalled is returned (wrapped) by FindBinaries and Start when no
// PostgreSQL server binaries are installed. InstallCommand says how to get
// them.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")

// InstallCommand is the command that installs PostgreSQL on Debian and
// Ubuntu, as Install runs it.
const InstallCommand = "apt-get install -y postgresql"

// debianGlob is where Debian's postgresql packages put each major version.
const debianGlob = "/usr/lib/postgresql/*/bin"

// requiredBinaries must all be in one bin directory.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinaries returns the bin directory and major version of the newest
// installed PostgreSQL: Debian's /usr/lib/postgresql/<N>/bin directories and
// the one `pg_config --bindir` names. It wraps ErrNotInstalled if there is
// none.
func FindBinaries() (bin string, major int, err error) {
	dirs, _ := filepath.Glob(debianGlob)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	for _, dir := range dirs {
		if m, ok := probe(dir); ok && m > major {
			bin, major = dir, m
		}
	}
	if bin == "" {
		return "", 0, fmt.Errorf("pgdemo: %w", ErrNotInstalled)
	}
	return bin, major, nil
}

// probe returns the major version of the installation in bin, if all
// required binaries are there and `postgres --version` names one.
func probe(bin string) (int, bool) {
	for _, name := range requiredBinaries {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.IsDir() {
			return 0, false
		}
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return 0, false
	}
	return parseMajor(string(out))
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

// Install runs InstallCommand (after `apt-get update` if the first attempt
// fails, e.g. on a machine whose package lists were never fetched), with
// its output to out. It needs root and apt-get; Debian's package also
// creates and starts a default cluster on port 5432, which the demo does not
// use.
func Install(ctx context.Context, out io.Writer) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("pgdemo: install PostgreSQL: apt-get not found; install the PostgreSQL server with your system's package manager")
	}
	install := func() error { return aptGet(ctx, out, "install", "-y", "postgresql") }
	if err := install(); err == nil {
		return nil
	}
	if err := aptGet(ctx, out, "update"); err != nil {
		return fmt.Errorf("pgdemo: apt-get update: %w", err)
	}
	if err := install(); err != nil {
		return fmt.Errorf("pgdemo: %s: %w", InstallCommand, err)
	}
	return nil
}

func aptGet(ctx context.Context, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}
