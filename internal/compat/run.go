package compat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Spec is one run of a Build: a name for reports and the environment of
// its test binaries (see TestEnv).
type Spec struct {
	Name string
	Env  []string
}

// Options configure Build.Run.
type Options struct {
	// PerTest bounds how long one top-level test may run (not counting time
	// it waits, paused, for a parallel slot). A test that runs longer is
	// stopped — the binary gets SIGQUIT and prints every goroutine — and
	// counts as a Timeout; the package's other tests are then run again.
	// Zero means no bound.
	PerTest time.Duration
	// Slow overrides PerTest for the top-level tests it names, in any
	// package (their subtests included).
	Slow map[string]time.Duration
	// Isolate names, by package, top-level tests to run each in a binary
	// of its own (-test.run), skipped in the package's main binary: tests
	// known to hang, so that stopping one does not stop the others, and
	// long tests, so that they run beside their package rather than
	// lengthen it.
	Isolate map[string][]string
	// Backstop is the test binaries' own -test.timeout, for a hang the
	// per-test bound cannot see (in TestMain, between tests). Zero means
	// 10 minutes.
	Backstop time.Duration
	// Workers is how many test binaries run at once, over all runs. Zero
	// means 1.
	Workers int
	// Parallel is each binary's -test.parallel: how many of its t.Parallel
	// tests run at once. Zero leaves the default (GOMAXPROCS).
	Parallel int
	// Log receives one line per test binary run. Nil discards them.
	Log io.Writer
}

// PackageRun is one package's results in one run: every top-level test it
// ran, with a final outcome.
type PackageRun struct {
	Tests map[string]TestResult
	// Attempts is how many times the package's main binary ran (not
	// counting Options.Isolate's): 1, plus one per resume after a test
	// timed out or the binary died.
	Attempts int
	// Elapsed is how long its binaries ran, over all attempts and the
	// binaries of its isolated tests.
	Elapsed time.Duration
	// Failed is whether an attempt failed with no failing test to show for
	// it (a TestMain that exited, a crash before any test): Output says
	// why.
	Failed bool
	Output string
}

// RunResult is one run: its Spec's name and results by package.
type RunResult struct {
	Name     string
	Packages map[string]*PackageRun
}

// maxAttempts bounds the binary runs per package: each timeout or crash
// costs one resume, so this allows several in one package.
const maxAttempts = 6

// Run runs every package of b once per spec, up to opts.Workers binaries
// at a time, and returns one RunResult per spec, in order. Binaries start
// package by package in b.Packages's order, each spec in turn; the tests
// opts.Isolate names run in binaries of their own, after their package's.
//
// A test binary that times out or dies does not lose its other tests: a
// test stopped by opts.PerTest (or named by the binary's own timeout
// panic) is recorded as Timeout, and the binary runs again with
// -test.skip of every test that has finished, until all have (or an
// attempt finishes none: the tests it left unfinished are NotRun).
//
// Run returns an error only if a binary could not be started; test
// failures are results.
func (b *Build) Run(ctx context.Context, specs []Spec, opts Options) ([]*RunResult, error) {
	results, jobs, parts := b.plan(specs, opts)
	queue := make(chan runJob)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range max(opts.Workers, 1) {
		wg.Go(func() {
			for j := range queue {
				if err := b.runPackage(ctx, j.res, j.spec, j.pkg, j.f, opts); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	for main, ps := range parts {
		for _, part := range ps {
			maps.Copy(main.Tests, part.Tests)
			main.Elapsed += part.Elapsed
			main.Failed = main.Failed || part.Failed
			main.Output += part.Output
		}
	}
	return results, firstErr
}

// runJob is one run of a package's test binary, filling res.
type runJob struct {
	res  *PackageRun
	spec Spec
	pkg  string
	f    filter
}

// plan makes an empty result per spec and the jobs that fill them: per
// package and spec, one run of everything but the isolated tests, and one
// run per isolated test, whose results parts maps to the package's run to
// be merged into.
func (b *Build) plan(specs []Spec, opts Options) (results []*RunResult, jobs []runJob, parts map[*PackageRun][]*PackageRun) {
	results = make([]*RunResult, len(specs))
	for i, spec := range specs {
		results[i] = &RunResult{Name: spec.Name, Packages: map[string]*PackageRun{}}
	}
	parts = map[*PackageRun][]*PackageRun{}
	for _, pkg := range b.Packages {
		isolated := opts.Isolate[pkg]
		for i, spec := range specs {
			pr := newPackageRun()
			results[i].Packages[pkg] = pr
			jobs = append(jobs, runJob{pr, spec, pkg, filter{skip: isolated}})
		}
		for _, test := range isolated {
			for i, spec := range specs {
				part := newPackageRun()
				main := results[i].Packages[pkg]
				parts[main] = append(parts[main], part)
				jobs = append(jobs, runJob{part, spec, pkg, filter{run: []string{test}}})
			}
		}
	}
	return results, jobs, parts
}

func newPackageRun() *PackageRun { return &PackageRun{Tests: map[string]TestResult{}} }

// RunTest runs one top-level test of pkg alone with spec's environment (as
// Run would, per-test limit included) and returns its result; NotRun if
// the binary never reported it.
func (b *Build) RunTest(ctx context.Context, spec Spec, pkg, test string, opts Options) (TestResult, error) {
	pr := newPackageRun()
	if err := b.runPackage(ctx, pr, spec, pkg, filter{run: []string{test}}, opts); err != nil {
		return TestResult{}, err
	}
	if t, ok := pr.Tests[test]; ok {
		return t, nil
	}
	return TestResult{Outcome: NotRun, Output: pr.Output}, nil
}

// filter selects the top-level tests a binary runs: only those named in
// run (all if empty), except those named in skip.
type filter struct {
	run, skip []string
}

// runPackage runs pkg's binary for spec until every test it started has a
// final outcome (see Run).
func (b *Build) runPackage(ctx context.Context, pr *PackageRun, spec Spec, pkg string, f filter, opts Options) error {
	attempt := f
	for {
		pr.Attempts++
		r, elapsed, err := b.runBinary(ctx, spec, pkg, attempt, opts)
		if err != nil {
			return err
		}
		pr.Elapsed += elapsed
		if opts.Log != nil {
			logAttempt(opts.Log, spec.Name, pkg, f, len(attempt.skip)-len(f.skip), r, elapsed)
		}
		finished := pr.merge(r)
		if finished == nil || pr.Attempts >= maxAttempts || allFinished(pr, f.run) {
			pr.giveUp()
			return nil
		}
		attempt.skip = append(slices.Clone(f.skip), finished...)
	}
}

// allFinished reports whether run names tests and each has an outcome in
// pr: then a binary that ended early left nothing else to resume.
func allFinished(pr *PackageRun, run []string) bool {
	return len(run) > 0 && !slices.ContainsFunc(run, func(name string) bool { return pr.Tests[name].Outcome == 0 })
}

// logAttempt writes one line about one run of a binary.
func logAttempt(w io.Writer, run, pkg string, f filter, resumedSkip int, r *PackageResult, elapsed time.Duration) {
	what := pkg
	if len(f.run) > 0 {
		what += " " + strings.Join(f.run, " ")
	}
	note := ""
	if resumedSkip > 0 {
		note = fmt.Sprintf(", resumed skipping %d finished tests", resumedSkip)
	}
	switch {
	case len(r.Hung) > 0:
		note += fmt.Sprintf(", stopped %s", strings.Join(r.Hung, " "))
	case len(r.Unfinished) > 0:
		note += fmt.Sprintf(", ended early (%s) leaving %d unfinished: %s", r.exit, len(r.Unfinished), lastLine(r.dump+r.Output))
	}
	fmt.Fprintf(w, "  %-8s %-8s %d tests in %s%s\n", run, what, len(r.Tests), elapsed.Round(100*time.Millisecond), note)
}

// merge records one attempt's results and returns what the next attempt
// skips: every test that has finished so far; or nil when no resume is
// needed or it would make no progress.
func (pr *PackageRun) merge(r *PackageResult) (finished []string) {
	progress := false
	for name, t := range r.Tests {
		switch {
		case t.Outcome != 0:
			pr.Tests[name] = t
			progress = true
		case slices.Contains(r.Hung, name):
			out := t.Output
			if stacks := r.Stacks(name); stacks != "" {
				out += "\n[compat] the test's goroutines when it was stopped:\n" + stacks
			}
			pr.Tests[name] = TestResult{Outcome: Timeout, Output: out}
			progress = true
		default:
			// Started, not finished, not the cause: run it again.
			if _, seen := pr.Tests[name]; !seen {
				pr.Tests[name] = t
			}
		}
	}
	failing := slices.ContainsFunc(slices.Collect(maps.Values(r.Tests)), func(t TestResult) bool { return t.Outcome.Failing() })
	if r.Failed && !failing && len(r.Unfinished) == 0 {
		pr.Failed = true
		pr.Output = r.Output
	}
	if len(r.Unfinished) == 0 || !progress {
		return nil
	}
	for name, t := range pr.Tests {
		if t.Outcome != 0 {
			finished = append(finished, name)
		}
	}
	slices.Sort(finished)
	return finished
}

// giveUp marks the tests that never finished NotRun.
func (pr *PackageRun) giveUp() {
	for name, t := range pr.Tests {
		if t.Outcome == 0 {
			pr.Tests[name] = TestResult{Outcome: NotRun, Output: t.Output}
		}
	}
}

// runBinary runs pkg's test binary once with spec's environment in the
// package's source directory (as go test does), converting its output with
// `go tool test2json` and watching the running tests (see Options.PerTest).
func (b *Build) runBinary(ctx context.Context, spec Spec, pkg string, f filter, opts Options) (*PackageResult, time.Duration, error) {
	bin := exec.CommandContext(ctx, b.bins[pkg], testArgs(f, opts)...)
	bin.Dir = filepath.Join(b.Suite.Dir, filepath.FromSlash(pkg))
	bin.Env = spec.Env
	conv := exec.CommandContext(ctx, orGo(b.Go), "tool", "test2json", "-t", "-p", b.Suite.ImportPath(pkg))
	conv.Env = spec.Env
	events, err := startPiped(bin, conv, pkg)
	if err != nil {
		return nil, 0, err
	}
	began := time.Now()
	p := newParser()
	w := newWatchdog(opts.PerTest, opts.Slow, bin.Process)
	stop := w.start()
	readErr := readEvents(events, func(ev event) {
		w.observe(ev)
		p.event(ev)
	})
	stop()
	binErr := bin.Wait()
	elapsed := time.Since(began)
	convErr := conv.Wait()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, 0, fmt.Errorf("compat: %s: %w", pkg, ctx.Err())
	case readErr != nil:
		return nil, 0, readErr
	case binErr != nil && !errors.As(binErr, &exitErr):
		return nil, 0, fmt.Errorf("compat: %s: %w", pkg, binErr)
	case convErr != nil && !errors.As(convErr, &exitErr):
		return nil, 0, fmt.Errorf("compat: go tool test2json: %w", convErr)
	}
	return b.packageResult(p, pkg, binErr, w.stopped()), elapsed, nil
}

// testArgs are the test binary's flags for f under opts.
func testArgs(f filter, opts Options) []string {
	backstop := opts.Backstop
	if backstop <= 0 {
		backstop = 10 * time.Minute
	}
	args := []string{"-test.v=test2json", "-test.count=1", "-test.timeout=" + backstop.String()}
	if opts.Parallel > 0 {
		args = append(args, fmt.Sprintf("-test.parallel=%d", opts.Parallel))
	}
	if len(f.run) > 0 {
		args = append(args, "-test.run="+namesPattern(f.run))
	}
	if len(f.skip) > 0 {
		args = append(args, "-test.skip="+namesPattern(f.skip))
	}
	return args
}

// startPiped starts conv reading bin's combined output (one stream, in
// order, as go test has it), then bin, and returns conv's output. On error
// nothing is left running.
func startPiped(bin, conv *exec.Cmd, pkg string) (io.Reader, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	bin.Stdout, bin.Stderr = pw, pw
	conv.Stdin = pr
	events, err := conv.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("compat: %w", err)
	}
	if err := conv.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("compat: go tool test2json: %w", err)
	}
	pr.Close() // conv has its copy
	if err := bin.Start(); err != nil {
		pw.Close()
		conv.Wait()
		return nil, fmt.Errorf("compat: start %s: %w", pkg, err)
	}
	pw.Close() // bin has its copy: test2json sees EOF when bin exits
	return events, nil
}

// packageResult is pkg's result as p parsed it, failed when the binary
// exited with binErr, with the tests the watchdog stopped as hung.
func (b *Build) packageResult(p *parser, pkg string, binErr error, stopped []string) *PackageResult {
	res := p.results()[b.Suite.ImportPath(pkg)]
	if res == nil {
		res = &PackageResult{Tests: map[string]TestResult{}, Failed: true, Output: p.results()[""].outputOrEmpty()}
	}
	res.Failed = res.Failed || binErr != nil
	if binErr != nil {
		res.exit = binErr.Error()
	}
	res.Hung = slices.Compact(slices.Sorted(slices.Values(append(res.Hung, stopped...))))
	return res
}

// lastLine returns the last non-blank line of s, for log lines.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (r *PackageResult) outputOrEmpty() string {
	if r == nil {
		return ""
	}
	return r.Output
}

// namesPattern is a -test.run/-test.skip pattern matching exactly the
// top-level tests named.
func namesPattern(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}
