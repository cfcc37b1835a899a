package main

import (
	"context"
	"io"
	"os/signal"
	"syscall"

	"github.com/waypoint-proxy/waypoint/internal/demo"
)

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "Start a private in-process tailnet, a throwaway PostgreSQL, Waypoint, and two example users\n"+
		"(alice: readwrite, bob: readonly) each on a local port; print psql commands to try, run a self-check,\n"+
		"then serve until Ctrl-C and remove everything.", stderr)
	var opts demo.Options
	fs.IntVar(&opts.PortAlice, "port-alice", 15432, "local `port` for alice (0: any free port)")
	fs.IntVar(&opts.PortBob, "port-bob", 15433, "local `port` for bob (0: any free port)")
	fs.StringVar(&opts.DataDir, "data-dir", "", "keep the demo's PostgreSQL data and tailnet state in `dir` (default: a temporary directory, removed at exit)")
	fs.BoolVar(&opts.Check, "check", false, "run the self-check and exit: 0 when every check passes")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, stdout, opts); err != nil {
		return 1 // demo.Run has printed why
	}
	return 0
}
