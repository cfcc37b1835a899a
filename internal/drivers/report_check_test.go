package drivers

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRun(t *testing.T) {
	out := `{"driver":"psycopg","version":"3.1.7"}
a warning a driver printed
{"feature":"simple","ok":true,"detail":"two result sets"}
{"feature":"extended_binary","ok":false,"unsupported":"text only"}
`
	r, err := parseRun(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "3.1.7" {
		t.Errorf("version: got %q, want 3.1.7", r.Version)
	}
	if got := r.Results["simple"]; !got.OK || got.Detail != "two result sets" {
		t.Errorf("simple: got %+v, want ok with its detail", got)
	}
	if got := r.Results["extended_binary"]; got.OK || got.Unsupported != "text only" {
		t.Errorf("extended_binary: got %+v, want unsupported", got)
	}
	if !slices.Equal(r.Noise, []string{"a warning a driver printed"}) {
		t.Errorf("noise: got %q", r.Noise)
	}

	dup := `{"feature":"simple","ok":true}` + "\n" + `{"feature":"simple","ok":false}`
	if _, err := parseRun(strings.NewReader(dup)); err == nil {
		t.Error("a feature reported twice: got no error, want one")
	}
}

// allOK is a run in which every feature worked, but for overrides.
func allOK(overrides ...line) run {
	r := run{Results: map[string]line{}}
	for _, f := range features {
		r.Results[f.ID] = line{Feature: f.ID, OK: true, Detail: "fine"}
	}
	for _, o := range overrides {
		r.Results[o.Feature] = o
	}
	return r
}

func TestEvaluate(t *testing.T) {
	exps := map[cell]expectation{
		{"d", "backend_pid"}:     {fails, "pid"},
		{"d", "extended_binary"}: {unsupported, "text only"},
	}
	tests := []struct {
		name    string
		run     run
		feature string
		want    verdict
	}{
		{"works", allOK(line{Feature: "extended_binary", Unsupported: "text only"}), "simple", passed},
		{"fails unlisted", allOK(line{Feature: "simple", Detail: "boom"}), "simple", failed},
		{"fails listed", allOK(line{Feature: "backend_pid"}, line{Feature: "extended_binary", Unsupported: "x"}), "backend_pid", knownFailure},
		{"listed but passes", allOK(), "backend_pid", unexpectedPass},
		{"unsupported as listed", allOK(line{Feature: "extended_binary", Unsupported: "text only"}), "extended_binary", notSupported},
		{"listed unsupported but tried", allOK(), "extended_binary", badUnsupported},
		{"unsupported, not listed", allOK(line{Feature: "simple", Unsupported: "why"}), "simple", badUnsupported},
		{"not reported", run{Results: map[string]line{}}, "simple", missingResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *cellResult
			for _, c := range evaluate("d", tt.run, exps) {
				if c.Feature == tt.feature {
					got = &c
				}
			}
			if got == nil {
				t.Fatalf("no cell for %s", tt.feature)
			}
			if got.Verdict != tt.want {
				t.Errorf("%s: got %v, want %v", tt.feature, got.Verdict, tt.want)
			}
			if got.Verdict.ok() != (tt.want == passed || tt.want == knownFailure || tt.want == notSupported) {
				t.Errorf("%v.ok() = %v", got.Verdict, got.Verdict.ok())
			}
		})
	}
}

func TestMarkdownTable(t *testing.T) {
	exps := map[cell]expectation{{"d", "backend_pid"}: {fails, "the pid is made up"}}
	cols := []column{
		{Driver: "d", Version: "1.0", Cells: evaluate("d", allOK(line{Feature: "backend_pid"}), exps)},
		{Driver: "missing"},
	}
	got := markdownTable(cols)
	for _, want := range []string{
		"| feature | d 1.0 | missing |",
		"| " + features[0].Label + " | ✓ | not run |",
		"| the driver's backend pid = `SELECT pg_backend_pid()` | ✗ (1) | not run |",
		"\n1. the pid is made up\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestExpectationsNameRealCells guards against a typo that would make an
// expectation silently match nothing.
func TestExpectationsNameRealCells(t *testing.T) {
	for c, e := range expectations {
		if !slices.ContainsFunc(drivers, func(d driver) bool { return d.Name == c.driver }) {
			t.Errorf("expectation %v: no driver %q", c, c.driver)
		}
		if !slices.ContainsFunc(features, func(f feature) bool { return f.ID == c.feature }) {
			t.Errorf("expectation %v: no feature %q", c, c.feature)
		}
		if e.why == "" {
			t.Errorf("expectation %v: no reason", c)
		}
	}
	seen := map[string]bool{}
	for _, f := range features {
		if seen[f.ID] {
			t.Errorf("feature %q listed twice", f.ID)
		}
		seen[f.ID] = true
	}
}
