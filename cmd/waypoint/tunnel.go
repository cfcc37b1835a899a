package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/waypoint-proxy/waypoint/internal/tunnel"
	"github.com/waypoint-proxy/waypoint/internal/tunnelnode"
)

func runTunnel(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tunnel", "Join the tailnet as a node of its own and forward each connection to a local port to a Waypoint listener\n"+
		"on the tailnet, for clients on machines without tailscaled (CI jobs, containers). Waypoint sees the tunnel's\n"+
		"node as the caller: grant access to the auth key's owner or tags. Runs until SIGINT or SIGTERM.", stderr)
	spec := tunnelnode.Spec{}
	fs.StringVar(&spec.AuthKey, "authkey", os.Getenv("TS_AUTHKEY"), "Tailscale auth `key` for the node (default $TS_AUTHKEY)")
	fs.StringVar(&spec.ControlURL, "control-url", "", "coordination server `URL` (default Tailscale's; set for Headscale)")
	fs.StringVar(&spec.Hostname, "hostname", "waypoint-tunnel", "the node's `name` in the tailnet")
	fs.StringVar(&spec.StateDir, "state-dir", "", "tsnet state `directory` (default: a temporary one, removed at exit)")
	fs.StringVar(&spec.Local, "local", "127.0.0.1:5432", "local `address` to listen on")
	fs.StringVar(&spec.Target, "target", "", "Waypoint listener on the tailnet, `host:port` (e.g. waypoint-db:5432); required")
	fs.BoolVar(&spec.Ephemeral, "ephemeral", true, "register as an ephemeral node, removed from the tailnet soon after it stops")
	fs.DurationVar(&spec.DialTimeout, "dial-timeout", tunnel.DefaultDialTimeout, "bound on reaching the target for each connection")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if spec.Target == "" {
		fmt.Fprintln(stderr, "waypoint tunnel: -target is required, e.g. -target waypoint-db:5432")
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "waypoint tunnel:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := tunnelnode.Run(ctx, spec, logger); err != nil {
		logger.Error("tunnel stopped", "err", err)
		return 1
	}
	return 0
}
