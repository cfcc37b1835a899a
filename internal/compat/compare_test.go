package compat

import (
	"strings"
	"testing"
)

// run builds a RunResult with one package "p" whose tests have the given
// outcomes.
func run(name string, tests map[string]Outcome) *RunResult {
	pr := &PackageRun{Tests: map[string]TestResult{}, Attempts: 1}
	for n, o := range tests {
		pr.Tests[n] = TestResult{Outcome: o, Output: n + "_test.go:1: " + o.String()}
	}
	return &RunResult{Name: name, Packages: map[string]*PackageRun{"p": pr}}
}

func names(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Test)
	}
	return strings.Join(s, " ")
}

func TestCompare(t *testing.T) {
	direct := run("direct", map[string]Outcome{
		"TestOK": Pass, "TestNew": Pass, "TestKnown": Pass, "TestEnv": Fail, "TestFlaky": Fail,
		"TestFixed": Pass, "TestBothListed": Fail, "TestHangs": Pass, "TestGone": Pass, "TestSkipped": Skip,
	})
	through := run("waypoint", map[string]Outcome{
		"TestOK": Pass, "TestNew": Fail, "TestKnown": Fail, "TestEnv": Timeout, "TestFlaky": Pass,
		"TestFixed": Pass, "TestBothListed": Fail, "TestHangs": Timeout, "TestSkipped": Skip,
	})
	allowed := []Allowed{
		{Package: "p", Test: "TestKnown", Reason: "by design", Line: 1},
		{Package: "p", Test: "TestFixed", Reason: "was broken", Line: 2},
		{Package: "p", Test: "TestBothListed", Reason: "was broken", Line: 3},
		{Package: "p", Test: "TestRenamed", Reason: "was broken", Line: 4},
		{Package: "p", Test: "TestHangs", Reason: "hangs", Line: 5},
	}
	r := Compare([]string{"p"}, direct, through, allowed)
	for _, tc := range []struct {
		list string
		got  []Finding
		want string
	}{
		// TestGone ran directly but not through Waypoint: not run there.
		{"Unexpected", r.Unexpected, "TestGone TestNew"},
		{"Expected", r.Expected, "TestHangs TestKnown"},
		{"Both", r.Both, "TestBothListed TestEnv"},
		{"DirectOnly", r.DirectOnly, "TestFlaky"},
		{"Stale", r.Stale, "TestBothListed TestFixed TestRenamed"},
	} {
		if got := names(tc.got); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.list, got, tc.want)
		}
	}
	if r.OK() {
		t.Error("OK() with unexpected failures")
	}
	var out strings.Builder
	r.Write(&out)
	for _, want := range []string{
		"p        6/3/1                  3/5/1 (2 timed out)",
		"NOT listed — each fails make compat (2):\n  p TestGone (not run)",
		"TestNew (fail); its output through Waypoint:\n      TestNew_test.go:1: fail",
		"p TestRenamed (line 4): directly not run, through Waypoint not run",
		"FAIL: 2 test(s) fail only through Waypoint",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCompare_OK(t *testing.T) {
	d := run("direct", map[string]Outcome{"TestA": Pass, "TestB": Pass})
	w := run("waypoint", map[string]Outcome{"TestA": Pass, "TestB": Fail})
	r := Compare([]string{"p"}, d, w, []Allowed{{Package: "p", Test: "TestB", Reason: "why"}})
	var out strings.Builder
	r.Write(&out)
	if !r.OK() || !strings.Contains(out.String(), "PASS: no test fails only through Waypoint except the 1 listed.") {
		t.Errorf("got OK()=%v:\n%s", r.OK(), out.String())
	}
}

// A package that ran no test fails the comparison, even when both runs
// agree: a harness that runs nothing must not pass.
func TestCompare_Broken(t *testing.T) {
	d := &RunResult{Name: "direct", Packages: map[string]*PackageRun{"p": {Tests: map[string]TestResult{}, Failed: true, Output: "build failed"}}}
	w := &RunResult{Name: "waypoint", Packages: map[string]*PackageRun{"p": {Tests: map[string]TestResult{}, Failed: true, Output: "build failed"}}}
	r := Compare([]string{"p"}, d, w, nil)
	if r.OK() || len(r.Broken) != 2 {
		t.Errorf("got OK()=%v Broken=%q, want two broken runs", r.OK(), r.Broken)
	}
}

func TestReportRecheck(t *testing.T) {
	d := run("direct", map[string]Outcome{"TestFlaky": Pass, "TestBroken": Pass, "TestSkips": Pass})
	w := run("waypoint", map[string]Outcome{"TestFlaky": Fail, "TestBroken": Timeout, "TestSkips": Fail})
	r := Compare([]string{"p"}, d, w, nil)
	again := map[string][]Outcome{"TestFlaky": {Fail, Pass}, "TestBroken": {Timeout, Fail}, "TestSkips": {Skip}}
	var calls []string
	err := r.Recheck(2, func(pkg, test string) (TestResult, error) {
		calls = append(calls, test)
		o := again[test][0]
		again[test] = again[test][1:]
		return TestResult{Outcome: o}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(calls, " "), "TestBroken TestBroken TestFlaky TestFlaky TestSkips"; got != want {
		t.Errorf("reruns: got %q, want %q", got, want)
	}
	if got := names(r.Flaky); got != "TestFlaky TestSkips" {
		t.Errorf("Flaky: got %q", got)
	}
	if got := names(r.Unexpected); got != "TestBroken" || r.OK() {
		t.Errorf("Unexpected: got %q, OK()=%v; want TestBroken, false", got, r.OK())
	}
	var out strings.Builder
	r.Write(&out)
	for _, want := range []string{"p TestFlaky (fail, then fail, pass)", "p TestBroken (timeout, then alone timeout, fail)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
