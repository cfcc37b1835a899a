package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Bound says which side of a target's limit a figure must stay on.
type Bound int

const (
	// AtMost: the figure must be <= Limit (latency ratios, memory).
	AtMost Bound = iota + 1
	// AtLeast: the figure must be >= Limit (throughput ratios, success).
	AtLeast
)

// Target is what a figure should reach. The zero value is "no target".
type Target struct {
	Bound Bound
	Limit float64
	// Label is how the target reads in the table, e.g. "≤ 1.25×".
	Label string
}

// Verdicts a Row can carry.
const (
	Pass = "PASS"
	Miss = "MISS"
	// NotMeasured marks a targeted figure that could not be computed (NaN:
	// no baseline, no samples).
	NotMeasured = "n/a"
)

// Verdict returns Pass or Miss for v, NotMeasured when v is NaN, and ""
// when t is the zero Target.
func (t Target) Verdict(v float64) string {
	switch {
	case t.Bound == 0:
		return ""
	case math.IsNaN(v):
		return NotMeasured
	case t.Bound == AtMost && v <= t.Limit, t.Bound == AtLeast && v >= t.Limit:
		return Pass
	}
	return Miss
}

// AtMostRatio is the target "ratio <= limit".
func AtMostRatio(limit float64) Target {
	return Target{Bound: AtMost, Limit: limit, Label: fmt.Sprintf("≤ %g×", limit)}
}

// AtLeastRatio is the target "ratio >= limit".
func AtLeastRatio(limit float64) Target {
	return Target{Bound: AtLeast, Limit: limit, Label: fmt.Sprintf("≥ %g×", limit)}
}

// Row is one line of the report: a figure through Waypoint, the same figure
// through the L4 baseline, their ratio, and the target the checked value is
// held against.
type Row struct {
	Name     string
	Waypoint string // "" prints "-"
	Baseline string // "" prints "-"
	// Ratio is Waypoint/Baseline; NaN prints "-".
	Ratio float64
	// Value is the figure Target is checked against (often Ratio).
	Value  float64
	Target Target
}

// Section is a titled group of rows.
type Section struct {
	Title string
	Rows  []Row
}

// Report is the whole benchmark output. Methods are not safe for concurrent
// use.
type Report struct {
	Title    string
	Sections []Section
	Notes    []string
}

// Add appends row to the section titled title, creating it at the end.
func (r *Report) Add(title string, row Row) {
	for i := range r.Sections {
		if r.Sections[i].Title == title {
			r.Sections[i].Rows = append(r.Sections[i].Rows, row)
			return
		}
	}
	r.Sections = append(r.Sections, Section{Title: title, Rows: []Row{row}})
}

// Note appends a free-form line printed after the table.
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Verdicts counts the rows that passed, missed and could not be measured.
func (r *Report) Verdicts() (pass, miss, na int) {
	for _, s := range r.Sections {
		for _, row := range s.Rows {
			switch row.Target.Verdict(row.Value) {
			case Pass:
				pass++
			case Miss:
				miss++
			case NotMeasured:
				na++
			}
		}
	}
	return pass, miss, na
}

// WriteTo renders the report as an aligned text table.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	if r.Title != "" {
		fmt.Fprintf(&b, "%s\n%s\n", r.Title, strings.Repeat("=", len([]rune(r.Title))))
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range r.Sections {
		fmt.Fprintf(tw, "\n%s\t\t\t\t\t\n", s.Title)
		fmt.Fprintf(tw, "  figure\twaypoint\tL4 baseline\tratio\ttarget\tverdict\n")
		for _, row := range s.Rows {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", row.Name, dash(row.Waypoint), dash(row.Baseline),
				ratioString(row.Ratio), dash(row.Target.Label), dash(row.Target.Verdict(row.Value)))
		}
	}
	tw.Flush()
	pass, miss, na := r.Verdicts()
	fmt.Fprintf(&b, "\ntargets: %d PASS, %d MISS, %d n/a\n", pass, miss, na)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ratioString(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", r)
}
