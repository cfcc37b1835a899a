package compat

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	fullFlag     = flag.Bool("compat-full", false, "run pgx's test suite directly and through Waypoint and compare the failures (also: WAYPOINT_COMPAT=1); make compat")
	perTestFlag  = flag.Duration("compat-test-timeout", defaultPerTest, "stop a pgx test that runs longer than this and count it as timed out")
	workersFlag  = flag.Int("compat-workers", defaultWorkers, "pgx test binaries to run at once, over both runs")
	parallelFlag = flag.Int("compat-parallel", 0, "each pgx test binary's -test.parallel (0: its default, GOMAXPROCS)")
	recheckFlag  = flag.Int("compat-rechecks", defaultRechecks, "run an unlisted Waypoint-only failure again alone up to this many times before it counts (0: it counts at once)")
)

const (
	// defaultPerTest is the per-test limit: it must be under the 120 s
	// that pgx's tests give their own contexts, so that a hang shows as a
	// timeout rather than as a test that passes after two minutes. Other
	// than slowTests, no pgx test took more than 45 s through Waypoint on
	// a loaded 2-core machine (30 s directly).
	defaultPerTest = 90 * time.Second
	// defaultWorkers: the runs wait on round trips more than on the CPU,
	// so four binaries at a time on two cores finish sooner than two.
	defaultWorkers = 4
)

// slowTests get a longer limit than defaultPerTest, and run in binaries of
// their own so that their package does not wait for them.
var slowTests = []struct {
	pkg, test string
	limit     time.Duration
}{
	// 100,000 sequential NOTIFY round trips and 5,000 queries: 10–20 s
	// directly, 60–100 s through the tailnet on a loaded 2-core machine.
	{".", "TestListenNotifyWhileBusyIsSafe", 3 * time.Minute},
}

// slowLimits are slowTests' limits (Options.Slow).
func slowLimits() map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, s := range slowTests {
		m[s.test] = s.limit
	}
	return m
}

// defaultRechecks is how often an unexpected Waypoint-only failure is run
// again, alone, before it counts (see Report.Recheck): with both suites
// running, a connection through the tunnel occasionally waits out the
// tunnel's 15 s dial timeout, and timing-sensitive pgx tests (a 5 s
// cleanup bound) can fail on a loaded machine.
const defaultRechecks = 2

// isolated returns the tests that run in binaries of their own
// (Options.Isolate): the listed ones, some of which hang until stopped,
// and slowTests, so that the slowest package does not wait for them.
func isolated(allowed []Allowed) map[string][]string {
	out := map[string][]string{}
	for _, a := range allowed {
		out[a.Package] = append(out[a.Package], a.Test)
	}
	for _, s := range slowTests {
		out[s.pkg] = append(out[s.pkg], s.test)
	}
	return out
}

// TestCompat is `make compat`: pgx's test suite directly and through
// Waypoint, compared. See the package documentation.
func TestCompat(t *testing.T) {
	if !*fullFlag && os.Getenv("WAYPOINT_COMPAT") != "1" {
		t.Skip("pgx's test suite runs only with -compat-full or WAYPOINT_COMPAT=1 (make compat)")
	}
	allowed, err := AllowedDifferences()
	if err != nil {
		t.Fatal(err)
	}
	out := os.Stdout
	began := time.Now()
	ctx := t.Context()
	suite, err := Locate(ctx, "", ".", Module)
	if err != nil {
		t.Fatal(err)
	}
	build, err := suite.Build(ctx, "", TestEnv(os.Environ(), nil), Packages, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(began)
	r := newRig(t)
	profile := r.checkEquivalent()
	ready := time.Since(began)
	r.printHeader(out, suite, profile)
	fmt.Fprintf(out, "\nBuilt the test binaries in %s; PostgreSQL, the tailnet and Waypoint up after %s.\n", built.Round(time.Second), ready.Round(time.Second))
	limits := fmt.Sprintf("per-test limit %s", *perTestFlag)
	for _, s := range slowTests {
		limits += fmt.Sprintf(", %s %s", s.test, s.limit)
	}
	fmt.Fprintf(out, "Running (%d binaries at a time; %s; listed and slow tests each alone):\n", *workersFlag, limits)
	// Waypoint's run first: each of its binaries takes longer than the
	// direct one of the same package.
	through := Spec{Name: "waypoint", Env: TestEnv(os.Environ(), map[string]string{"PGX_TEST_DATABASE": r.waypointURL})}
	direct := Spec{Name: "direct", Env: TestEnv(os.Environ(), map[string]string{"PGX_TEST_DATABASE": r.directURL})}
	opts := Options{
		PerTest: *perTestFlag, Slow: slowLimits(), Isolate: isolated(allowed),
		Workers: *workersFlag, Parallel: *parallelFlag, Log: out,
	}
	results, err := build.Run(ctx, []Spec{through, direct}, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep := Compare(Packages, results[1], results[0], allowed)
	if len(rep.Unexpected) > 0 && *recheckFlag > 0 {
		fmt.Fprintf(out, "Running the %d unexpected Waypoint-only failure(s) again, alone, through Waypoint:\n", len(rep.Unexpected))
		err := rep.Recheck(*recheckFlag, func(pkg, test string) (TestResult, error) {
			return build.RunTest(ctx, through, pkg, test, opts)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintln(out)
	rep.Write(out)
	fmt.Fprintf(out, "make compat took %s (runs: %s).\n", time.Since(began).Round(time.Second), (time.Since(began) - ready).Round(time.Second))
	if len(rep.Unexpected)+len(rep.Flaky) > 0 {
		lines, info := r.log.Snapshot()
		fmt.Fprintf(out, "\nWaypoint's and the tunnel's log: %d ordinary INFO lines; the last %d others:\n", info, len(lines))
		for _, l := range lines {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	if !rep.OK() {
		t.Fail()
	}
}

// checkEquivalent fails the test unless the direct role and Waypoint's
// role have the same attributes, memberships and privileges (profileSQL),
// and returns that profile.
func (r *rig) checkEquivalent() []string {
	r.t.Helper()
	direct := r.roleProfile(directDB, r.directRole)
	through := r.roleProfile(waypointDB, r.waypointRole)
	if !slices.Equal(direct, through) {
		r.t.Fatalf("the direct run's role and Waypoint's differ:\n  %s (%s):\n    %s\n  %s (%s):\n    %s",
			r.directRole, directDB, strings.Join(direct, "\n    "), r.waypointRole, waypointDB, strings.Join(through, "\n    "))
	}
	return direct
}

// printHeader says what is compared with what.
func (r *rig) printHeader(out *os.File, s Suite, profile []string) {
	fmt.Fprintf(out, "\npgx %s test suite (%s: %s), twice, on PostgreSQL %s:\n", s.Version, s.Module, strings.Join(Packages, " "), r.serverVersion())
	fmt.Fprintf(out, "  direct:   as %s, password login over TCP, database %s\n", r.directRole, directDB)
	fmt.Fprintf(out, "  waypoint: user %q (ignored) through a tunnel node on the in-process tailnet to Waypoint,\n", typedUser)
	fmt.Fprintf(out, "            which logs in as %s, database %s\n", r.waypointRole, waypointDB)
	fmt.Fprintln(out, "  Both roles were made by Waypoint's provisioning for the same grant, the admin preset on")
	fmt.Fprintln(out, "  schema public of the run's database; the direct role then got a password without expiry;")
	fmt.Fprintln(out, "  checked equal:")
	for _, l := range profile {
		fmt.Fprintf(out, "    %s\n", l)
	}
	fmt.Fprintln(out, "  Only PGX_TEST_DATABASE is set: tests that need an optional PGX_TEST_* server skip in both runs.")
}
