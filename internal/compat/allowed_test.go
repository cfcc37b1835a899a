package compat

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAllowed(t *testing.T) {
	got, err := ParseAllowed("# comment\n\n. TestA one line\npgconn TestB\n    two\n\tlines\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Allowed{
		{Package: ".", Test: "TestA", Reason: "one line", Line: 3},
		{Package: "pgconn", Test: "TestB", Reason: "two lines", Line: 4},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseAllowed_Errors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no reason", ". TestA\n", "line 1: . TestA has no reason"},
		{"duplicate", ". TestA x\n. TestA y\n", "line 2: . TestA is already listed on line 1"},
		{"subtest", ". TestA/sub x\n", `line 1: "TestA/sub" is not a top-level test name`},
		{"not a test", ". BenchmarkA x\n", "is not a top-level test name"},
		{"one field", "TestA\n", "want <package> <Test> <reason>"},
		{"indented first", "  reason\n. TestA\n", "indented line before the first entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowed(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The repository's list parses and names only packages that are run.
func TestAllowedDifferences(t *testing.T) {
	list, err := AllowedDifferences()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("the list is empty; TestConnect, at least, differs by design")
	}
	for _, a := range list {
		if !slices.Contains(Packages, a.Package) {
			t.Errorf("%s line %d: package %q is not one of the packages run %v", AllowedFile, a.Line, a.Package, Packages)
		}
	}
}
