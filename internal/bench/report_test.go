package bench

import (
	"math"
	"strings"
	"testing"
)

func TestTargetVerdict(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		v      float64
		want   string
	}{
		{"no target", Target{}, 5, ""},
		{"at most, under", AtMostRatio(1.25), 1.1, Pass},
		{"at most, equal", AtMostRatio(1.25), 1.25, Pass},
		{"at most, over", AtMostRatio(1.25), 1.3, Miss},
		{"at least, over", AtLeastRatio(0.95), 1.0, Pass},
		{"at least, equal", AtLeastRatio(0.95), 0.95, Pass},
		{"at least, under", AtLeastRatio(0.95), 0.5, Miss},
		{"not measured", AtMostRatio(2), math.NaN(), NotMeasured},
		{"no target beats NaN", Target{}, math.NaN(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.target.Verdict(tt.v); got != tt.want {
				t.Errorf("Verdict(%v): got %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

func TestTargetLabels(t *testing.T) {
	if got, want := AtMostRatio(1.25).Label, "≤ 1.25×"; got != want {
		t.Errorf("AtMostRatio label: got %q, want %q", got, want)
	}
	if got, want := AtLeastRatio(0.9).Label, "≥ 0.9×"; got != want {
		t.Errorf("AtLeastRatio label: got %q, want %q", got, want)
	}
}

func TestReportWriteTo(t *testing.T) {
	r := &Report{Title: "bench"}
	r.Add("latency", Row{Name: "warm", Waypoint: "1ms", Baseline: "1ms", Ratio: 1.1, Value: 1.1, Target: AtMostRatio(1.25)})
	r.Add("throughput", Row{Name: "tps", Waypoint: "90", Baseline: "100", Ratio: 0.9, Value: 0.9, Target: AtLeastRatio(0.95)})
	r.Add("latency", Row{Name: "cold", Ratio: math.NaN(), Value: math.NaN(), Target: AtMostRatio(2)})
	r.Add("latency", Row{Name: "info only", Waypoint: "x", Ratio: math.NaN()})
	r.Note("ran on %d cores", 2)

	if got := len(r.Sections); got != 2 {
		t.Fatalf("sections: got %d, want 2 (rows grouped by title)", got)
	}
	if got := len(r.Sections[0].Rows); got != 3 {
		t.Errorf("rows in %q: got %d, want 3", r.Sections[0].Title, got)
	}
	pass, miss, na := r.Verdicts()
	if pass != 1 || miss != 1 || na != 1 {
		t.Errorf("verdicts: got %d/%d/%d pass/miss/n/a, want 1/1/1", pass, miss, na)
	}
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	find := func(name string) string {
		for _, l := range lines {
			if strings.Contains(l, "  "+name+" ") {
				return l
			}
		}
		t.Fatalf("no line for %q in:\n%s", name, out)
		return ""
	}
	for _, tt := range []struct {
		row  string
		want []string
	}{
		{"warm", []string{"1.10×", "≤ 1.25×", Pass}},
		{"tps", []string{"0.90×", "≥ 0.95×", Miss}},
		{"cold", []string{"-", NotMeasured}},
	} {
		line := find(tt.row)
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("row %q: got %q, want it to contain %q", tt.row, line, w)
			}
		}
	}
	if strings.Contains(find("info only"), Pass) || strings.Contains(find("info only"), Miss) {
		t.Errorf("row without a target got a verdict: %q", find("info only"))
	}
	for _, w := range []string{"bench\n=====\n", "targets: 1 PASS, 1 MISS, 1 n/a", "note: ran on 2 cores"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
