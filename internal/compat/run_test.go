package compat

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuildRun runs the fake suite in testdata/fakesuite twice, once with a
// test that hangs, and checks every outcome: the per-test limit stops the
// hang, a parent waiting for its parallel subtests is not stopped, and the
// tests after the hang run on a resume.
func TestBuildRun(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "fakesuite"))
	if err != nil {
		t.Fatal(err)
	}
	s := Suite{Module: "fakesuite", Version: "(local)", Dir: dir}
	ctx := t.Context()
	b, err := s.Build(ctx, "", TestEnv(os.Environ(), nil), []string{"."}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hangs := Spec{Name: "hangs", Env: TestEnv(os.Environ(), map[string]string{"FAKE_HANG": "1", "FAKE_RUN": "hangs"})}
	calm := Spec{Name: "calm", Env: TestEnv(os.Environ(), map[string]string{"FAKE_RUN": "calm"})}
	// TestFail runs in binaries of its own, and its result still counts.
	opts := Options{PerTest: 3 * time.Second, Workers: 2, Parallel: 1, Isolate: map[string][]string{".": {"TestFail"}}}
	results, err := b.Run(ctx, []Spec{hangs, calm}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Outcome{
		"TestPass": Pass, "TestFail": Fail, "TestSkip": Skip, "TestSubFail": Fail,
		"TestParallelWaits": Pass, "TestHang": Timeout, "TestAfterHang": Pass, "TestEnvSeen": Pass,
	}
	for i, tc := range []struct {
		run      string
		hang     Outcome
		attempts int
	}{{"hangs", Timeout, 2}, {"calm", Pass, 1}} {
		pr := results[i].Packages["."]
		if results[i].Name != tc.run || pr == nil {
			t.Fatalf("result %d: got %q with %v, want %q", i, results[i].Name, pr, tc.run)
		}
		want["TestHang"] = tc.hang
		for name, w := range want {
			if got := pr.Tests[name].Outcome; got != w {
				t.Errorf("%s: %s: got %v, want %v; output:\n%s", tc.run, name, got, w, pr.Tests[name].Output)
			}
		}
		if len(pr.Tests) != len(want) {
			t.Errorf("%s: got tests %v, want %d", tc.run, slices.Sorted(maps.Keys(pr.Tests)), len(want))
		}
		if pr.Attempts != tc.attempts {
			t.Errorf("%s: got %d attempts, want %d", tc.run, pr.Attempts, tc.attempts)
		}
	}
	hang := results[0].Packages["."].Tests["TestHang"].Output
	if !strings.Contains(hang, "fakesuite.TestHang(") {
		t.Errorf("TestHang's output lacks its goroutine stack:\n%s", hang)
	}
	for test, want := range map[string]Outcome{"TestSubFail": Fail, "TestNoSuchTest": NotRun} {
		got, err := b.RunTest(ctx, hangs, ".", test, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != want {
			t.Errorf("RunTest(%s): got %v, want %v", test, got.Outcome, want)
		}
	}
}

func TestWatchdog(t *testing.T) {
	now := time.Unix(0, 0)
	w := newWatchdog(10*time.Second, map[string]time.Duration{"TestSlow": time.Minute}, nil)
	w.now = func() time.Time { return now }
	step := func(d time.Duration, events ...string) {
		now = now.Add(d)
		for _, e := range events {
			action, test, _ := strings.Cut(e, " ")
			w.observe(event{Action: action, Test: test})
		}
	}
	overdue := func() []string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.overdue()
	}
	for _, tc := range []struct {
		after  time.Duration
		events []string
		want   []string
	}{
		// TestA waits for a parallel slot: paused does not count.
		{0, []string{"run TestA", "pause TestA", "run TestB"}, nil},
		{8 * time.Second, nil, nil},
		{3 * time.Second, nil, []string{"TestB"}},
		{0, []string{"pass TestB", "cont TestA", "run TestA/x", "pause TestA/x", "run TestA/y", "pause TestA/y"}, nil},
		// TestA waits for its subtests, which wait for slots: nobody runs.
		{30 * time.Second, nil, nil},
		{0, []string{"cont TestA/x"}, nil},
		{11 * time.Second, nil, []string{"TestA/x"}},
		{0, []string{"fail TestA/x", "cont TestA/y", "pass TestA/y"}, nil},
		// Back in TestA's own code after its last subtest: its clock restarts.
		{9 * time.Second, nil, nil},
		{2 * time.Second, nil, []string{"TestA"}},
		{0, []string{"pass TestA"}, nil},
		// A subtest whose name has a slash is still TestC's child.
		{0, []string{"run TestC", "run TestC/a/b", "pause TestC/a/b"}, nil},
		{30 * time.Second, nil, nil},
		{0, []string{"cont TestC/a/b", "pass TestC/a/b"}, nil},
		{11 * time.Second, nil, []string{"TestC"}},
		{0, []string{"pass TestC"}, nil},
		// TestSlow has a limit of its own.
		{0, []string{"run TestSlow", "run TestSlow/x"}, nil},
		{59 * time.Second, nil, nil},
		{2 * time.Second, nil, []string{"TestSlow/x"}},
	} {
		step(tc.after, tc.events...)
		if got := overdue(); !slices.Equal(got, tc.want) {
			t.Errorf("after %v %v: overdue %v, want %v", tc.after, tc.events, got, tc.want)
		}
	}
}

func TestPackageRunMerge(t *testing.T) {
	pr := &PackageRun{Tests: map[string]TestResult{}}
	// The binary timed out in TestB, with TestC waiting for a slot.
	skip := pr.merge(&PackageResult{
		Tests:      map[string]TestResult{"TestA": {Outcome: Pass}, "TestB": {Output: "b"}, "TestC": {}},
		Unfinished: []string{"TestB", "TestC"},
		Hung:       []string{"TestB"},
		Failed:     true,
	})
	if want := []string{"TestA", "TestB"}; !slices.Equal(skip, want) {
		t.Fatalf("first resume skips %v, want %v", skip, want)
	}
	if got := pr.Tests["TestB"].Outcome; got != Timeout {
		t.Errorf("TestB: got %v, want timeout", got)
	}
	// The resume dies at once, finishing nothing: give up.
	skip = pr.merge(&PackageResult{Tests: map[string]TestResult{"TestC": {}}, Unfinished: []string{"TestC"}, Failed: true})
	if skip != nil {
		t.Fatalf("a resume that finished nothing asks for another: %v", skip)
	}
	pr.giveUp()
	if got := pr.Tests["TestC"].Outcome; got != NotRun {
		t.Errorf("TestC: got %v, want not run", got)
	}
	if pr.Failed {
		t.Error("Failed is set although failing tests explain the failure")
	}
}

func TestPackageRunMergeFailedOutsideTests(t *testing.T) {
	pr := &PackageRun{Tests: map[string]TestResult{}}
	if skip := pr.merge(&PackageResult{Tests: map[string]TestResult{}, Failed: true, Output: "TestMain: no database"}); skip != nil {
		t.Fatalf("got resume %v, want none", skip)
	}
	if !pr.Failed || pr.Output != "TestMain: no database" {
		t.Errorf("got Failed=%v Output=%q, want the failure recorded", pr.Failed, pr.Output)
	}
}

func TestNamesPattern(t *testing.T) {
	re := regexp.MustCompile(namesPattern([]string{"TestA", "TestB.x"}))
	for name, want := range map[string]bool{"TestA": true, "TestB.x": true, "TestAB": false, "TestBxx": false, "TestBzx": false, "XTestA": false} {
		if got := re.MatchString(name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

func TestBinaryName(t *testing.T) {
	for path, want := range map[string]string{
		"github.com/jackc/pgx/v5":        "pgx.test",
		"github.com/jackc/pgx/v5/pgconn": "pgconn.test",
		"fakesuite":                      "fakesuite.test",
		"example.com/v2x":                "v2x.test",
	} {
		if got := binaryName(path); got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}

func TestTestEnv(t *testing.T) {
	got := TestEnv([]string{"PATH=/bin", "PGHOST=elsewhere", "PGX_TEST_TLS_CONN_STRING=x", "GOFLAGS=-race", "HOME=/root"},
		map[string]string{"PGX_TEST_DATABASE": "postgres://a"})
	want := []string{"PATH=/bin", "HOME=/root", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "PGX_TEST_DATABASE=postgres://a"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
