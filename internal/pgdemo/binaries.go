package pgdemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// ErrNotInstalled is returned (wrapped) by FindBinaries and Start when no
// PostgreSQL server binaries are installed. InstallCommand says how to get
// them.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")

// InstallCommand is the command that installs PostgreSQL on Debian and
// Ubuntu, as Install runs it.
const InstallCommand = "apt-get install -y postgresql"

// FindBinaries returns the bin directory and major version of the newest
// installed PostgreSQL: Debian's /usr/lib/postgresql/<N>/bin directories and
// the one `pg_config --bindir` names (see pgserver.Installed). It wraps
// ErrNotInstalled if there is none.
func FindBinaries() (bin string, major int, err error) {
	all := pgserver.Installed()
	if len(all) == 0 {
		return "", 0, fmt.Errorf("pgdemo: %w", ErrNotInstalled)
	}
	newest := all[len(all)-1]
	return newest.Bin, newest.Major, nil
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
