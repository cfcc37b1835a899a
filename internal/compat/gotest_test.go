package compat

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// stream renders test2json events, one per line; an event "output T text"
// is an output line of test T ("-" for none), "ACTION T [elapsed]" any
// other event.
func stream(t *testing.T, pkg string, events ...string) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		action, rest, _ := strings.Cut(e, " ")
		test, text, _ := strings.Cut(rest, " ")
		if test == "-" {
			test = ""
		}
		ev := map[string]any{"Action": action, "Package": pkg}
		if test != "" {
			ev["Test"] = test
		}
		if action == "output" {
			ev["Output"] = text + "\n"
		} else if text != "" {
			var secs float64
			if err := json.Unmarshal([]byte(text), &secs); err != nil {
				t.Fatal(err)
			}
			ev["Elapsed"] = secs
		}
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	return b.String()
}

func TestParseJSON_Outcomes(t *testing.T) {
	in := stream(t, "p",
		"start -",
		"run TestPass", "output TestPass hello", "pass TestPass 0.5",
		"run TestSkip", "skip TestSkip",
		"run TestFail", "output TestFail x_test.go:3: boom", "fail TestFail",
		"run TestSub", "run TestSub/a", "fail TestSub/a", "run TestSub/b", "pass TestSub/b", "fail TestSub",
		// A parent whose own event says pass still fails with a failed subtest.
		"run TestOdd", "run TestOdd/a", "fail TestOdd/a", "pass TestOdd",
		"fail - 2.5",
	) + "not json at all\n"
	got, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	r := got["p"]
	want := map[string]Outcome{"TestPass": Pass, "TestSkip": Skip, "TestFail": Fail, "TestSub": Fail, "TestOdd": Fail}
	for name, w := range want {
		if g := r.Tests[name].Outcome; g != w {
			t.Errorf("%s: got %v, want %v", name, g, w)
		}
	}
	if len(r.Tests) != len(want) || len(r.Unfinished) != 0 || len(r.Hung) != 0 {
		t.Errorf("got tests %d, unfinished %v, hung %v; want %d, none, none", len(r.Tests), r.Unfinished, r.Hung, len(want))
	}
	if !r.Failed || r.Elapsed != 2500*time.Millisecond || r.Tests["TestPass"].Elapsed != 500*time.Millisecond {
		t.Errorf("got Failed=%v Elapsed=%v TestPass.Elapsed=%v, want true 2.5s 0.5s", r.Failed, r.Elapsed, r.Tests["TestPass"].Elapsed)
	}
	if !strings.Contains(r.Tests["TestFail"].Output, "boom") {
		t.Errorf("TestFail's output %q lacks its message", r.Tests["TestFail"].Output)
	}
	if !strings.Contains(got[""].Output, "not json at all") {
		t.Errorf("a line that is not JSON was lost: %+v", got[""])
	}
}

// A binary that hit -test.timeout: its panic names the running tests, its
// goroutine dump is not any test's output, and Stacks finds a test's
// goroutines in it.
func TestParseJSON_Timeout(t *testing.T) {
	in := stream(t, "p",
		"run TestDone", "pass TestDone",
		"run TestWaiting", "pause TestWaiting",
		"run TestHang", "output TestHang started",
		"run TestC", "run TestC/sub",
		"output TestHang panic: test timed out after 2s",
		"output TestHang \trunning tests:",
		"output TestHang \t\tTestC/sub (2s)",
		"output TestHang \t\tTestHang (2s)",
		"output TestHang ",
		"output TestHang goroutine 7 [sleep]:",
		"output TestHang p.TestHang(0xc000)",
		"output TestHang ",
		"output TestHang goroutine 8 [select]:",
		"output TestHang p.TestC.func1(0xc000)",
		"fail - 2",
	)
	got, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	r := got["p"]
	if want := []string{"TestC", "TestHang", "TestWaiting"}; !slices.Equal(r.Unfinished, want) {
		t.Errorf("unfinished: got %v, want %v", r.Unfinished, want)
	}
	if want := []string{"TestC", "TestHang"}; !slices.Equal(r.Hung, want) {
		t.Errorf("hung: got %v, want %v", r.Hung, want)
	}
	if out := r.Tests["TestHang"].Output; strings.Contains(out, "goroutine") || !strings.Contains(out, "started") {
		t.Errorf("TestHang's own output: got %q, want its line without the dump", out)
	}
	if s := r.Stacks("TestHang"); !strings.Contains(s, "goroutine 7") || strings.Contains(s, "goroutine 8") {
		t.Errorf("Stacks(TestHang) = %q, want goroutine 7 only", s)
	}
	if s := r.Stacks("TestC"); !strings.Contains(s, "goroutine 8") {
		t.Errorf("Stacks(TestC) = %q, want goroutine 8", s)
	}
}

func TestParseJSON_BuildFailure(t *testing.T) {
	in := `{"ImportPath":"p [p.test]","Action":"build-output","Output":"# p [p.test]\n"}
{"ImportPath":"p [p.test]","Action":"build-output","Output":"x_test.go:2:15: undefined: testing\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}
{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p","Elapsed":0.005,"FailedBuild":"p [p.test]"}
`
	got, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	r := got["p"]
	if r == nil || !r.Failed || len(r.Tests) != 0 || !strings.Contains(r.Output, "undefined: testing") {
		t.Errorf("got %+v, want a failed package with the build error and no tests", r)
	}
}
