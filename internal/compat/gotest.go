package compat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Outcome is how one top-level test ended in one run.
type Outcome int

// Outcomes, in the order reports list them. Fail, Timeout and NotRun all
// count as failing.
const (
	// Pass: the test and all its subtests passed.
	Pass Outcome = iota + 1
	// Skip: the test skipped itself (e.g. an optional PGX_TEST_* variable
	// is unset).
	Skip
	// Fail: the test or one of its subtests failed.
	Fail
	// Timeout: the test was still running when the test binary hit its
	// -timeout (go test's "panic: test timed out … running tests:").
	Timeout
	// NotRun: the test started but never finished, and was not running at a
	// timeout: the binary died (a panic elsewhere), and running it again did
	// not finish it either.
	NotRun
)

// outcomeNames are the Outcomes' names in reports.
var outcomeNames = map[Outcome]string{Pass: "pass", Skip: "skip", Fail: "fail", Timeout: "timeout", NotRun: "not run"}

func (o Outcome) String() string {
	if name, ok := outcomeNames[o]; ok {
		return name
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Failing reports whether o counts as a failure: Fail, Timeout or NotRun.
func (o Outcome) Failing() bool { return o >= Fail }

// TestResult is one top-level test of one package in one run.
type TestResult struct {
	// Outcome is how the test ended; 0 means it started but reported no
	// pass, fail or skip (its binary timed out or died).
	Outcome Outcome
	// Output is the tail of what the test (and its subtests) printed, at
	// most maxOutput bytes, for reports of unexpected failures.
	Output string
	// Elapsed is how long the test ran, as the testing package reports it
	// (zero for an unfinished test).
	Elapsed time.Duration
}

// maxOutput bounds TestResult.Output.
const maxOutput = 4 << 10

// PackageResult is what one test binary (or one package of a `go test
// -json` run) said.
type PackageResult struct {
	// Tests are the top-level tests that reported any event, by name.
	Tests map[string]TestResult
	// Unfinished are the tests whose Outcome is 0, sorted.
	Unfinished []string
	// Hung are the top-level tests that were running when the binary was
	// stopped: named by its timeout panic, or (set by Build.Run) by the
	// per-test limit; sorted, a subset of Unfinished.
	Hung []string
	// Failed is whether the package as a whole failed (any failing test,
	// a timeout, a panic, a build failure).
	Failed bool
	// Elapsed is how long the test binary ran, as it reports it.
	Elapsed time.Duration
	// Output is the tail of everything the package printed before any
	// goroutine dump (build errors, a panic), at most maxOutput bytes.
	Output string

	dump string // the goroutine dump that ended the binary, if any (see Stacks)
	exit string // how the binary exited when not with status 0 (set by runBinary)
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	// ImportPath names the package of build-output and build-fail events,
	// as "path [path.test]".
	ImportPath string
	Test       string
	Output     string
	Elapsed    float64 // seconds, on pass, fail and skip
}

// timedOutRE matches the first line of the testing package's timeout panic.
var timedOutRE = regexp.MustCompile(`^panic: test timed out after `)

// dumpStartRE matches the first line of a goroutine dump that ends the
// binary: the timeout panic, or the runtime's answer to SIGQUIT.
var dumpStartRE = regexp.MustCompile(`^(panic: test timed out after |SIGQUIT: quit)`)

// maxDump bounds the goroutine dump kept per package.
const maxDump = 4 << 20

// runningRE matches one test of the "running tests:" list that follows it:
// a tab-indented name with its running time, e.g. "\t\tTestFoo/bar (2m0s)".
var runningRE = regexp.MustCompile(`^\t\t(\S+) \([^)]*\)$`)

// ParseJSON reads a `go test -json` (or `go tool test2json`) stream and
// returns its results by package import path. Lines that are not JSON (a
// go command error, say) are kept as output of the package-less entry "".
// Results are per top-level test: a subtest's failure is its parent's
// failure.
func ParseJSON(r io.Reader) (map[string]*PackageResult, error) {
	p := newParser()
	if err := readEvents(r, p.event); err != nil {
		return nil, err
	}
	return p.results(), nil
}

// readEvents calls fn for each line of a test2json stream as it arrives;
// a line that is not JSON becomes an output event of package "".
func readEvents(r io.Reader, fn func(event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			ev = event{Action: "output", Output: string(line) + "\n"}
		}
		fn(ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("compat: read test2json output: %w", err)
	}
	return nil
}

func newParser() *parser { return &parser{pkgs: map[string]*pkgState{}} }

// parser accumulates events per package.
type parser struct {
	pkgs map[string]*pkgState
}

// pkgState is one package while its events are read.
type pkgState struct {
	tests    map[string]*testState // top-level tests
	order    []string
	failed   bool
	out      tail
	timedOut bool
	hung     map[string]bool
	elapsed  time.Duration
	dumping  bool            // a goroutine dump has begun: output goes to dump only
	dump     strings.Builder // the dump, at most maxDump bytes
}

// testState is one top-level test while events are read.
type testState struct {
	own       Outcome // the test's own pass, fail or skip; 0 while unfinished
	subFailed bool    // a subtest failed
	elapsed   time.Duration
	out       tail
}

func (p *parser) state(pkg string) *pkgState {
	st := p.pkgs[pkg]
	if st == nil {
		st = &pkgState{tests: map[string]*testState{}, hung: map[string]bool{}}
		p.pkgs[pkg] = st
	}
	return st
}

func (p *parser) event(ev event) {
	if ev.Package == "" {
		ev.Package, _, _ = strings.Cut(ev.ImportPath, " ")
	}
	st := p.state(ev.Package)
	if ev.Action == "output" || ev.Action == "build-output" {
		st.output(ev.Output)
	}
	if ev.Test == "" {
		switch ev.Action {
		case "fail", "build-fail":
			st.failed = true
		}
		if ev.Action == "pass" || ev.Action == "fail" {
			st.elapsed = seconds(ev.Elapsed)
		}
		return
	}
	top, sub, _ := strings.Cut(ev.Test, "/")
	ts := st.tests[top]
	if ts == nil {
		ts = &testState{}
		st.tests[top] = ts
		st.order = append(st.order, top)
	}
	if ev.Action == "output" {
		if !st.dumping {
			ts.out.write(ev.Output)
		}
		return
	}
	outcome := map[string]Outcome{"pass": Pass, "fail": Fail, "skip": Skip}[ev.Action]
	switch {
	case outcome == 0:
	case sub != "":
		ts.subFailed = ts.subFailed || outcome == Fail
	default:
		ts.own = outcome
		ts.elapsed = seconds(ev.Elapsed)
	}
}

// seconds converts test2json's Elapsed.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// output records package-level output and watches for a goroutine dump:
// a timeout panic (whose "running tests:" list names the tests that were
// running) or SIGQUIT. test2json attributes those lines to whichever test
// printed last, so every output line is looked at here, and from the dump
// on, output is kept as the dump rather than as any test's.
func (st *pkgState) output(s string) {
	line := strings.TrimRight(s, "\n")
	if dumpStartRE.MatchString(line) {
		st.dumping = true
	}
	if st.dumping {
		if st.dump.Len() < maxDump {
			st.dump.WriteString(s)
		}
	} else {
		st.out.write(s)
	}
	switch {
	case timedOutRE.MatchString(line):
		st.timedOut = true
	case st.timedOut:
		if m := runningRE.FindStringSubmatch(line); m != nil {
			top, _, _ := strings.Cut(m[1], "/")
			st.hung[top] = true
		}
	}
}

func (p *parser) results() map[string]*PackageResult {
	out := map[string]*PackageResult{}
	for pkg, st := range p.pkgs {
		r := &PackageResult{Tests: map[string]TestResult{}, Failed: st.failed, Elapsed: st.elapsed, Output: st.out.String(), dump: st.dump.String()}
		for _, name := range st.order {
			ts := st.tests[name]
			outcome := ts.own
			switch {
			case outcome == 0:
				r.Unfinished = append(r.Unfinished, name)
				if st.hung[name] {
					r.Hung = append(r.Hung, name)
				}
			case ts.subFailed:
				outcome = Fail
			}
			r.Tests[name] = TestResult{Outcome: outcome, Output: ts.out.String(), Elapsed: ts.elapsed}
		}
		slices.Sort(r.Unfinished)
		slices.Sort(r.Hung)
		out[pkg] = r
	}
	return out
}

// maxStacks bounds the goroutine stacks Stacks returns.
const maxStacks = 8 << 10

// Stacks returns the goroutines of the dump that ended the binary (a
// timeout or SIGQUIT) that run code of the top-level test name — its
// function or one of its closures — at most maxStacks bytes; "" if there
// was no dump or none matches.
func (r *PackageResult) Stacks(name string) string {
	if r.dump == "" {
		return ""
	}
	frame := regexp.MustCompile(`\.` + regexp.QuoteMeta(name) + `(\(|\.func)`)
	var b strings.Builder
	for block := range strings.SplitSeq(r.dump, "\n\n") {
		if strings.HasPrefix(block, "goroutine ") && frame.MatchString(block) {
			if b.Len()+len(block) > maxStacks {
				b.WriteString("…\n")
				break
			}
			b.WriteString(block + "\n\n")
		}
	}
	return b.String()
}

// tail keeps the last maxOutput bytes written to it.
type tail struct {
	b []byte
}

func (t *tail) write(s string) {
	t.b = append(t.b, s...)
	if over := len(t.b) - maxOutput; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
}

func (t *tail) String() string { return string(t.b) }
