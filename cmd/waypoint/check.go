package main

import (
	"fmt"
	"io"

	"github.com/waypoint-proxy/waypoint/internal/config"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "Validate the configuration file: print \"ok\" and one line per listener, or every error with its line.\n"+
		"With -connect, also log in as each listener's admin and report the privileges it lacks, with the statements that fix them.", stderr)
	path := fs.String("config", "waypoint.toml", "configuration `file`")
	connect := fs.Bool("connect", false, "also log in as each listener's admin and report missing privileges (exit 1 if any)")
	databases := fs.String("databases", "", "with -connect: comma-separated `databases` to check (default: every non-template database)")
	schemas := fs.String("schemas", "public", "with -connect: comma-separated `schemas` whose objects the admin must be able to grant on")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	for _, line := range cfg.Summary() {
		fmt.Fprintln(stdout, line)
	}
	if *connect {
		return checkConnect(cfg, splitList(*databases), splitList(*schemas), stdout)
	}
	return 0
}
