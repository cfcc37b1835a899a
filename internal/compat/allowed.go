package compat

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// Allowed is one entry of the allowed-differences list: a test that may
// fail through Waypoint while it passes directly, and why.
type Allowed struct {
	Package string // relative to the module root, "." for the root package
	Test    string // top-level test name
	Reason  string
	Line    int // where the entry starts in the file
}

// AllowedFile is the allowed-differences list's path in the repository.
const AllowedFile = "internal/compat/allowed-differences.txt"

//go:embed allowed-differences.txt
var allowedText string

// AllowedDifferences returns the repository's allowed-differences list.
func AllowedDifferences() ([]Allowed, error) {
	list, err := ParseAllowed(allowedText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AllowedFile, err)
	}
	return list, nil
}

var testNameRE = regexp.MustCompile(`^Test[A-Za-z0-9_]*$`)

// ParseAllowed parses an allowed-differences list. Each entry is
//
//	<package> <Test> [reason…]
//	    [more of the reason…]
//
// with the package relative to the module root ("." for the root package)
// and a top-level test name; the reason may start on the entry's line and
// continues on the following indented lines. Every entry needs a reason.
// Blank lines and lines starting with # are ignored. A test listed twice is
// an error.
func ParseAllowed(text string) ([]Allowed, error) {
	var list []Allowed
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if len(list) == 0 {
				return nil, fmt.Errorf("line %d: indented line before the first entry", n)
			}
			last := &list[len(list)-1]
			last.Reason = strings.TrimSpace(last.Reason + " " + trimmed)
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %d: want <package> <Test> <reason>, got %q", n, trimmed)
		}
		a := Allowed{Package: fields[0], Test: fields[1], Reason: strings.Join(fields[2:], " "), Line: n}
		if !testNameRE.MatchString(a.Test) {
			return nil, fmt.Errorf("line %d: %q is not a top-level test name", n, a.Test)
		}
		key := a.Package + " " + a.Test
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: %s %s is already listed on line %d", n, a.Package, a.Test, first)
		}
		seen[key] = n
		list = append(list, a)
	}
	for _, a := range list {
		if a.Reason == "" {
			return nil, fmt.Errorf("line %d: %s %s has no reason", a.Line, a.Package, a.Test)
		}
	}
	return list, nil
}
