package main

import (
	"fmt"
	"io"

	"github.com/waypoint-proxy/waypoint/internal/config"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "Validate the configuration file: print \"ok\" and one line per listener, or every error with its line.", stderr)
	path := fs.String("config", "waypoint.toml", "configuration `file`")
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
	return 0
}
