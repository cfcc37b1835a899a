package drivers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// line is one JSON line a driver script prints on stdout: first a header
// {"driver", "version"}, then one {"feature", "ok", "detail"} per feature.
// A feature the driver has no way to do carries "unsupported" (why) and
// ok false.
type line struct {
	Driver      string `json:"driver"`
	Version     string `json:"version"`
	Feature     string `json:"feature"`
	OK          bool   `json:"ok"`
	Detail      string `json:"detail"`
	Unsupported string `json:"unsupported"`
}

// run is what one script reported.
type run struct {
	Version string
	Results map[string]line // by feature
	Noise   []string        // stdout lines that were not JSON results
}

// parseRun reads a script's stdout. A feature reported twice is an error:
// the script is broken.
func parseRun(r io.Reader) (run, error) {
	out := run{Results: map[string]line{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		var l line
		if !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &l) != nil || (l.Feature == "" && l.Driver == "") {
			if text != "" {
				out.Noise = append(out.Noise, text)
			}
			continue
		}
		if l.Feature == "" {
			out.Version = l.Version
			continue
		}
		if _, dup := out.Results[l.Feature]; dup {
			return out, fmt.Errorf("feature %q reported twice", l.Feature)
		}
		out.Results[l.Feature] = l
	}
	return out, sc.Err()
}

// verdict is how a cell of the matrix came out against its expectation.
type verdict int

const (
	passed         verdict = iota // worked, as expected
	knownFailure                  // failed, and expectations say it fails and why
	notSupported                  // the driver has no way to do it, as expectations say
	failed                        // failed unexpectedly
	unexpectedPass                // expectations say it fails, but it worked: update them
	missingResult                 // the script printed nothing for the feature
	badUnsupported                // unsupported, but expectations do not say so (or the reverse)
)

// ok reports whether the verdict keeps the test green.
func (v verdict) ok() bool { return v == passed || v == knownFailure || v == notSupported }

// cellResult is one evaluated cell.
type cellResult struct {
	Feature string
	Verdict verdict
	Detail  string // the script's detail
	Why     string // the expectation's reason, for known failures and unsupported
}

// evaluate compares a driver's run with exps (normally expectations),
// feature by feature in table order.
func evaluate(driverName string, r run, exps map[cell]expectation) []cellResult {
	var cells []cellResult
	for _, f := range features {
		exp, listed := exps[cell{driverName, f.ID}]
		l, reported := r.Results[f.ID]
		c := cellResult{Feature: f.ID, Detail: l.Detail, Why: exp.why}
		switch {
		case !reported:
			c.Verdict = missingResult
		case l.Unsupported != "":
			c.Verdict = badUnsupported
			if listed && exp.kind == unsupported {
				c.Verdict = notSupported
			}
			if c.Detail == "" {
				c.Detail = l.Unsupported
			}
		case listed && exp.kind == unsupported:
			c.Verdict = badUnsupported
		case l.OK && listed:
			c.Verdict = unexpectedPass
		case l.OK:
			c.Verdict = passed
		case listed:
			c.Verdict = knownFailure
		default:
			c.Verdict = failed
		}
		cells = append(cells, c)
	}
	return cells
}

// complaint says what is wrong with a cell that fails the test.
func complaint(driverName string, c cellResult) string {
	switch c.Verdict {
	case failed:
		return fmt.Sprintf("%s %s: failed: %s", driverName, c.Feature, c.Detail)
	case unexpectedPass:
		return fmt.Sprintf("%s %s: passed, but expectations list it as failing (%s): remove it from expectations (detail: %s)", driverName, c.Feature, c.Why, c.Detail)
	case missingResult:
		return fmt.Sprintf("%s %s: the script printed no result", driverName, c.Feature)
	case badUnsupported:
		return fmt.Sprintf("%s %s: unsupported by the script (%s) or by expectations (%s), but not both", driverName, c.Feature, c.Detail, c.Why)
	}
	return ""
}

// column is one driver's evaluated run, for the table.
type column struct {
	Driver, Version string
	Cells           []cellResult // in features order; nil when the driver did not run
}

// markdownTable renders the matrix with features as rows and drivers as
// columns: ✓ worked, ✗ failed, — unsupported by the driver, each ✗ and —
// with a numbered note that says why (the expectation's reason for
// expected outcomes, the detail otherwise).
func markdownTable(cols []column) string {
	var b strings.Builder
	var notes []string
	note := func(text string) int {
		if i := slices.Index(notes, text); i >= 0 {
			return i + 1
		}
		notes = append(notes, text)
		return len(notes)
	}
	b.WriteString("| feature |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", strings.TrimSpace(c.Driver+" "+c.Version))
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, f := range features {
		fmt.Fprintf(&b, "| %s |", f.Label)
		for _, c := range cols {
			if c.Cells == nil {
				b.WriteString(" not run |")
				continue
			}
			fmt.Fprintf(&b, " %s |", mark(c.Cells[i], note))
		}
		b.WriteString("\n")
	}
	for i, n := range notes {
		fmt.Fprintf(&b, "\n%d. %s", i+1, n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// mark is one cell's symbol, with a note number where it needs one.
func mark(c cellResult, note func(string) int) string {
	switch c.Verdict {
	case passed:
		return "✓"
	case knownFailure:
		return fmt.Sprintf("✗ (%d)", note(c.Why))
	case notSupported:
		return fmt.Sprintf("— (%d)", note(c.Why))
	case unexpectedPass:
		return fmt.Sprintf("✓ but listed as failing (%d)", note(c.Why))
	case missingResult:
		return "no result"
	default:
		return fmt.Sprintf("✗ UNEXPECTED (%d)", note(c.Detail))
	}
}

// detailTable lists every cell's detail, for the test log.
func detailTable(cols []column) string {
	var b strings.Builder
	for _, c := range cols {
		for _, cell := range c.Cells {
			fmt.Fprintf(&b, "%-14s %-20s %-15s %s\n", c.Driver, cell.Feature, cell.Verdict, cell.Detail)
		}
	}
	return b.String()
}

func (v verdict) String() string {
	switch v {
	case passed:
		return "ok"
	case knownFailure:
		return "known-failure"
	case notSupported:
		return "unsupported"
	case failed:
		return "FAILED"
	case unexpectedPass:
		return "UNEXPECTED-PASS"
	case missingResult:
		return "MISSING"
	case badUnsupported:
		return "BAD-UNSUPPORTED"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}
