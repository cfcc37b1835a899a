// Command waypoint is a PostgreSQL proxy that joins a Tailscale tailnet as its
// own node. For every client it identifies the caller with WhoIs, reads the
// caller's grant from the tailnet policy, provisions a backend role with
// exactly those privileges and a fresh password, logs in as that role and
// relays the session. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `waypoint — PostgreSQL access through your tailnet policy

Usage:
  waypoint [serve] [-config waypoint.toml]   run the proxy (the default command)
  waypoint check   [-config waypoint.toml] [-connect [-databases a,b] [-schemas public]]
                                             validate the configuration (and, with -connect,
                                             the admin's privileges on the backend) and exit
  waypoint explain -login alice@example.com -machine laptop -database appdb -grant FILE|-
                   [-config waypoint.toml] [-listener NAME] [-preset readonly]
                                             print the decision, role and SQL for a caller
  waypoint demo    [-check] [-port-alice 15432] [-port-bob 15433] [-data-dir DIR]
                                             a private tailnet, PostgreSQL and two users to try with psql
  waypoint tunnel  -target waypoint-db:5432 [-local 127.0.0.1:5432] [-authkey KEY]
                                             forward a local port to a Waypoint listener over the tailnet
  waypoint version                           print the version, commit, Go, tailscale.com and pgx versions
                                             (also -version, --version)
  waypoint sessions  [-console URL] [-listener L] [-login X] [-json]
                                             list open sessions through the operator console
  waypoint terminate [-console URL] ID | -login X
                                             end a session, or every session of an identity

Run "waypoint <command> -h" for a command's flags. Documentation: README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: it parses its own flags from args and returns
// the process exit code.
type command func(args []string, stdout, stderr io.Writer) int

var commands = map[string]command{
	"serve":   runServe,
	"check":   runCheck,
	"explain": runExplain,
	"demo":    runDemo,
	"tunnel":  runTunnel,
	"version": runVersion,

	"sessions":  runSessions,
	"terminate": runTerminate,
}

// run dispatches to a subcommand; with no command name (or only flags) it
// serves, so `waypoint -config x.toml` works as it always did.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return 0
		case "-version", "--version":
			return runVersion(args[1:], stdout, stderr)
		}
		if cmd, ok := commands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
		if args[0] != "" && args[0][0] != '-' {
			fmt.Fprintf(stderr, "waypoint: unknown command %q\n\n%s", args[0], usage)
			return 2
		}
	}
	return runServe(args, stdout, stderr)
}

// newFlagSet returns a flag set for a subcommand that prints its usage to
// stderr and reports errors instead of exiting.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: waypoint %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps the outcome to an exit code: -1 to go on,
// 0 after -h, 2 on a flag error.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case err == nil:
		if fs.NArg() > 0 {
			fmt.Fprintf(fs.Output(), "waypoint %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
			return 2
		}
		return -1
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		return 2
	}
}
