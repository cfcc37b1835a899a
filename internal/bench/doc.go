// Package bench measures what Waypoint costs on top of the bare tailnet path:
// connection setup, steady-state throughput, bulk transfer,
// connection storms and memory per idle session, each next to a plain L4
// forwarder on the same in-process tailnet, as ratios measured in one run.
//
// The harness itself lives in the package's tests, because it is built from
// the testing.TB rigs (pgtest, tailnettest):
//
//	go test ./internal/bench/          # smoke (seconds): proves it still works; CI
//	make bench                         # the full report, profiles in a temp dir
//	make bench BENCH_PROFILES=dir      # ... profiles in dir
//	go test -v -run '^TestReport$' ./internal/bench/ -bench-full -bench-only pgbench,copy
//
// The full report is also selected by WAYPOINT_BENCH=1. -bench-only runs
// some phases (memory, connect, psql, pgbench, copy, storm); the table is
// printed to stdout and written to report.txt next to the profiles.
//
// The non-test files hold the pieces that do not need a tailnet and are unit
// tested on their own: latency summaries (stats.go), the report table with
// targets and PASS/MISS verdicts (report.go), memory readings (memory.go),
// per-phase CPU and allocation profiles (profile.go) and pgbench output
// parsing (pgbench.go). They import only the standard library.
//
// Figures are information, never test failures: no test here asserts on
// wall-clock time.
package bench
