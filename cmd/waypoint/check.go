package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/config"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "Validate the configuration file: print \"ok\" and one line per listener, or every error with its line.\n"+
		"Warnings (WARN, exit code unchanged) flag a remote backend reached with backend_tls = disable or prefer.\n"+
		"With -connect, also log in as each listener's admin and report the privileges it lacks, with the statements that fix them,\n"+
		"and warn when the server's password_encryption is md5.", stderr)
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
	for _, w := range backendTLSWarnings(cfg) {
		fmt.Fprintln(stdout, "WARN "+w)
	}
	if *connect {
		return checkConnect(cfg, splitList(*databases), splitList(*schemas), stdout)
	}
	return 0
}

// backendTLSWarnings returns one warning per listener whose backend_tls
// leaves the backend connection open to a man in the middle ("disable" or
// "prefer") although the backend is not on a loopback address. Warnings do
// not change check's exit code.
func backendTLSWarnings(cfg *config.Config) []string {
	var out []string
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Postgres == nil || isLoopback(l.Backend) {
			continue
		}
		var risk string
		switch l.Postgres.BackendTLS {
		case config.BackendTLSDisable:
			risk = "the traffic crosses the network unencrypted"
		case config.BackendTLSPrefer:
			risk = "a man in the middle can refuse TLS (Waypoint then continues in plaintext) or present any certificate (prefer verifies none)"
		default:
			continue
		}
		out = append(out, fmt.Sprintf("listener %s: backend_tls = %q to %s, which is not a loopback address: %s, "+
			"so whoever is on the path can read and alter queries and results and impersonate the server; "+
			"use backend_tls = \"verify-full\" (with backend_ca_file for a private CA)",
			l.Name, l.Postgres.BackendTLS, l.Backend, risk))
	}
	return out
}

// isLoopback reports whether the "host:port" addr is on this machine: a
// loopback IP or "localhost". Other names are not resolved, so count as
// remote.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
