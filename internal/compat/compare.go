package compat

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Finding is one test whose outcome the report mentions.
type Finding struct {
	Package, Test      string
	Direct, Waypoint   TestResult
	Allowed            *Allowed  // the list's entry for the test, if any
	Rechecks           []Outcome // outcomes of running it again alone through Waypoint (Recheck)
	directSeen, wpSeen bool
}

// Report compares a direct run with a run through Waypoint.
type Report struct {
	Packages []string
	Direct   *RunResult
	Waypoint *RunResult

	// Unexpected fail only through Waypoint and are not listed: each one
	// fails the comparison.
	Unexpected []Finding
	// Expected fail only through Waypoint and are listed.
	Expected []Finding
	// Flaky failed only through Waypoint, are not listed, and passed when
	// Recheck ran them again alone through Waypoint: timing under load, or
	// an intermittent Waypoint problem. Reported, never a failure.
	Flaky []Finding
	// Both fail in both runs: the environment (privileges, timing, the
	// machine), not Waypoint. Reported, never a failure.
	Both []Finding
	// DirectOnly fail only directly: flaky or environment. Reported, never
	// a failure.
	DirectOnly []Finding
	// Stale are listed tests that no longer fail only through Waypoint
	// (they pass, fail in both runs, skip, or did not run at all): the
	// entry should go. Reported, never a failure.
	Stale []Finding
	// Broken are packages that ran no test at all in a run, or failed
	// without a failing test to show for it (a crash, a TestMain that
	// exited), with why. Each one fails the comparison: a harness that
	// runs nothing must not pass.
	Broken []string
}

// OK reports whether the comparison passes: no unexpected Waypoint-only
// failure and no broken package.
func (r *Report) OK() bool { return len(r.Unexpected) == 0 && len(r.Broken) == 0 }

// Compare compares two runs of the same packages against the allowed list.
// A test missing from one run (its binary never reached it) counts as
// failing there (NotRun).
func Compare(packages []string, direct, waypoint *RunResult, allowed []Allowed) *Report {
	r := &Report{Packages: packages, Direct: direct, Waypoint: waypoint}
	listed := map[string]*Allowed{}
	for i := range allowed {
		listed[allowed[i].Package+" "+allowed[i].Test] = &allowed[i]
	}
	seen := map[string]bool{}
	for _, pkg := range packages {
		d, w := direct.Packages[pkg], waypoint.Packages[pkg]
		r.checkPackage(pkg, direct.Name, d)
		r.checkPackage(pkg, waypoint.Name, w)
		for _, name := range testNames(d, w) {
			f := Finding{Package: pkg, Test: name, Allowed: listed[pkg+" "+name]}
			f.Direct, f.directSeen = lookup(d, name)
			f.Waypoint, f.wpSeen = lookup(w, name)
			seen[pkg+" "+name] = true
			r.classify(f)
		}
	}
	for _, a := range allowed {
		if !seen[a.Package+" "+a.Test] {
			r.Stale = append(r.Stale, Finding{Package: a.Package, Test: a.Test, Allowed: &a})
		}
	}
	return r
}

// maxRechecks is the most unexpected failures Recheck runs again: more
// than that is a breakage, not a flake, and rerunning them would only take
// time.
const maxRechecks = 10

// Recheck runs each unexpected failure again, alone, through rerun (which
// should run the test through Waypoint), up to attempts times, stopping at
// the first pass, and moves those that pass to Flaky. With more than
// maxRechecks unexpected failures it runs nothing. An error from rerun
// ends it.
func (r *Report) Recheck(attempts int, rerun func(pkg, test string) (TestResult, error)) error {
	if len(r.Unexpected) > maxRechecks {
		return nil
	}
	var still []Finding
	for _, f := range r.Unexpected {
		passed := false
		for range attempts {
			t, err := rerun(f.Package, f.Test)
			if err != nil {
				return err
			}
			f.Rechecks = append(f.Rechecks, t.Outcome)
			if passed = !t.Outcome.Failing(); passed {
				break
			}
		}
		if passed {
			r.Flaky = append(r.Flaky, f)
		} else {
			still = append(still, f)
		}
	}
	r.Unexpected = still
	return nil
}

// classify files f under the report's lists.
func (r *Report) classify(f Finding) {
	dFail, wFail := f.Direct.Outcome.Failing(), f.Waypoint.Outcome.Failing()
	switch {
	case wFail && !dFail && f.Allowed != nil:
		r.Expected = append(r.Expected, f)
	case wFail && !dFail:
		r.Unexpected = append(r.Unexpected, f)
	case f.Allowed != nil:
		r.Stale = append(r.Stale, f)
		if wFail && dFail {
			r.Both = append(r.Both, f)
		} else if dFail {
			r.DirectOnly = append(r.DirectOnly, f)
		}
	case wFail && dFail:
		r.Both = append(r.Both, f)
	case dFail:
		r.DirectOnly = append(r.DirectOnly, f)
	}
}

// checkPackage records a package that ran no test or failed without a
// failing test.
func (r *Report) checkPackage(pkg, run string, pr *PackageRun) {
	switch {
	case pr == nil || len(pr.Tests) == 0:
		why := ""
		if pr != nil && pr.Output != "" {
			why = ":\n" + indent(pr.Output, "      ")
		}
		r.Broken = append(r.Broken, fmt.Sprintf("%s (%s): no test ran%s", pkg, run, why))
	case pr.Failed:
		r.Broken = append(r.Broken, fmt.Sprintf("%s (%s): the test binary failed outside any test:\n%s", pkg, run, indent(pr.Output, "      ")))
	}
}

// lookup returns name's result in pr; a test pr never ran is NotRun.
func lookup(pr *PackageRun, name string) (TestResult, bool) {
	if pr != nil {
		if t, ok := pr.Tests[name]; ok {
			return t, true
		}
	}
	return TestResult{Outcome: NotRun, Output: "(the test did not run in this run)"}, false
}

// testNames returns every test either run ran, sorted.
func testNames(runs ...*PackageRun) []string {
	set := map[string]bool{}
	for _, pr := range runs {
		if pr != nil {
			for name := range pr.Tests {
				set[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// counts are a package's outcomes in one run.
type counts struct {
	pass, fail, skip, timeout int
	elapsed                   time.Duration
}

func countOf(pr *PackageRun) counts {
	var c counts
	if pr == nil {
		return c
	}
	c.elapsed = pr.Elapsed
	for _, t := range pr.Tests {
		switch {
		case t.Outcome == Pass:
			c.pass++
		case t.Outcome == Skip:
			c.skip++
		case t.Outcome.Failing():
			c.fail++
			if t.Outcome == Timeout {
				c.timeout++
			}
		}
	}
	return c
}

func (c counts) String() string {
	s := fmt.Sprintf("%d/%d/%d", c.pass, c.fail, c.skip)
	if c.timeout > 0 {
		s += fmt.Sprintf(" (%d timed out)", c.timeout)
	}
	return s
}

// maxPrinted bounds the output printed per unexpected failure.
const maxPrinted = 12 << 10

// Write prints the report: a table of outcomes per package, then each
// list, the output of every unexpected failure, and the verdict.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "package\t%s pass/fail/skip\t%s pass/fail/skip\ttest binary time %s / %s\n", r.Direct.Name, r.Waypoint.Name, r.Direct.Name, r.Waypoint.Name)
	for _, pkg := range slices.Sorted(slices.Values(r.Packages)) {
		d, wp := countOf(r.Direct.Packages[pkg]), countOf(r.Waypoint.Packages[pkg])
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s / %s\n", pkg, d, wp, d.elapsed.Round(time.Second), wp.elapsed.Round(time.Second))
	}
	tw.Flush()

	section(w, "Fail only through Waypoint, listed in "+AllowedFile, r.Expected, func(f Finding) string {
		return fmt.Sprintf("%s (%s): %s", f.name(), f.Waypoint.Outcome, f.Allowed.Reason)
	})
	section(w, "Failed only through Waypoint, NOT listed, passed when run again alone — look if it recurs (not a failure)", r.Flaky, func(f Finding) string {
		return fmt.Sprintf("%s (%s, then %s); its first output through Waypoint:\n%s", f.name(), f.Waypoint.Outcome, outcomes(f.Rechecks), indent(lastBytes(f.Waypoint.Output, maxPrinted), "      "))
	})
	section(w, "Fail only through Waypoint, NOT listed — each fails make compat", r.Unexpected, func(f Finding) string {
		again := ""
		if len(f.Rechecks) > 0 {
			again = ", then alone " + outcomes(f.Rechecks)
		}
		return fmt.Sprintf("%s (%s%s); its output through Waypoint:\n%s", f.name(), f.Waypoint.Outcome, again, indent(lastBytes(f.Waypoint.Output, maxPrinted), "      "))
	})
	section(w, "Fail in both runs — the environment, not Waypoint (not a failure)", r.Both, func(f Finding) string {
		return fmt.Sprintf("%s (%s directly, %s through Waypoint): %s", f.name(), f.Direct.Outcome, f.Waypoint.Outcome, firstFailure(f.Direct.Output))
	})
	section(w, "Fail only directly — flaky or the environment (not a failure)", r.DirectOnly, func(f Finding) string {
		return fmt.Sprintf("%s (%s): %s", f.name(), f.Direct.Outcome, firstFailure(f.Direct.Output))
	})
	section(w, "Listed but no longer different — remove from "+AllowedFile+" (not a failure)", r.Stale, func(f Finding) string {
		return fmt.Sprintf("%s (line %d): directly %s, through Waypoint %s", f.name(), f.Allowed.Line, f.outcome(f.Direct, f.directSeen), f.outcome(f.Waypoint, f.wpSeen))
	})
	if len(r.Broken) > 0 {
		fmt.Fprintf(w, "\nPackages that ran nothing or failed outside a test — each fails make compat (%d):\n", len(r.Broken))
		for _, b := range r.Broken {
			fmt.Fprintf(w, "  %s\n", b)
		}
	}
	fmt.Fprintln(w)
	if r.OK() {
		fmt.Fprintf(w, "PASS: no test fails only through Waypoint except the %d listed.\n", len(r.Expected))
	} else {
		fmt.Fprintf(w, "FAIL: %d test(s) fail only through Waypoint and are not listed; %d package(s) broken.\n", len(r.Unexpected), len(r.Broken))
	}
}

// outcomes renders rechecks as "fail, pass".
func outcomes(os []Outcome) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

func (f Finding) name() string { return f.Package + " " + f.Test }

func (f Finding) outcome(t TestResult, seen bool) string {
	if !seen {
		return "not run"
	}
	return t.Outcome.String()
}

// section prints a titled list, or the title with "none".
func section(w io.Writer, title string, fs []Finding, line func(Finding) string) {
	fmt.Fprintf(w, "\n%s (%d):\n", title, len(fs))
	if len(fs) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, f := range fs {
		fmt.Fprintf(w, "  %s\n", line(f))
	}
}

// firstFailure returns the first failure message in a test's output (a
// "file_test.go:N: message" line, or testify's "Error:" line with the line
// after it when it ends in a colon), for one-line summaries.
func firstFailure(out string) string {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		t := strings.Join(strings.Fields(line), " ")
		isMsg := strings.Contains(t, "_test.go:") && !strings.HasSuffix(t, ":") && !strings.HasPrefix(t, "Error Trace:")
		if !isMsg && !strings.HasPrefix(t, "Error:") {
			continue
		}
		if strings.HasSuffix(t, ":") && i+1 < len(lines) {
			t += " " + strings.Join(strings.Fields(lines[i+1]), " ")
		}
		return t
	}
	return "(no failure message; see the test's output)"
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// lastBytes returns at most n bytes from the end of s.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
