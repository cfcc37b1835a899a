package main

import (
	"os"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// runAsWaypointEnv, when "1", makes the test binary behave as the waypoint
// command itself, so process-level tests (signals, exit codes) can run it
// as a subprocess without a separate build.
const runAsWaypointEnv = "WAYPOINT_TEST_RUN_MAIN"

// TestMain stops the shared throwaway PostgreSQL clusters after the tests.
func TestMain(m *testing.M) {
	if os.Getenv(runAsWaypointEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	pgtest.Main(m)
}
