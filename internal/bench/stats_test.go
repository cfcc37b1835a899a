package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // descending: Summarize must sort
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{N: 1, P50: 7 * time.Millisecond, P90: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"two", ms(9, 1), Latency{N: 2, P50: time.Millisecond, P90: 9 * time.Millisecond, P99: 9 * time.Millisecond, Max: 9 * time.Millisecond}},
		{"hundred", hundred, Latency{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.samples)
			if got := Summarize(tt.samples); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(in, tt.samples) {
				t.Errorf("Summarize modified its input: got %v, want %v", tt.samples, in)
			}
		})
	}
}

func TestLatencyString(t *testing.T) {
	tests := []struct {
		name string
		l    Latency
		want string
	}{
		{"empty", Latency{}, "no samples"},
		{"figures", Latency{N: 3, P50: 1500 * time.Microsecond, P90: 2 * time.Millisecond, P99: 10 * time.Millisecond},
			"p50 1.50ms  p90 2.00ms  p99 10.00ms  (n=3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name string
		a, b float64
		want float64 // NaN: want NaN
	}{
		{"plain", 3, 2, 1.5},
		{"zero numerator", 0, 2, 0},
		{"no baseline", 3, 0, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ratio(tt.a, tt.b)
			if math.IsNaN(tt.want) != math.IsNaN(got) || (!math.IsNaN(got) && got != tt.want) {
				t.Errorf("Ratio(%v, %v): got %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
	if got := DurationRatio(3*time.Millisecond, 2*time.Millisecond); got != 1.5 {
		t.Errorf("DurationRatio: got %v, want 1.5", got)
	}
	if got := ms(1234567 * time.Nanosecond); !strings.HasPrefix(got, "1.23") {
		t.Errorf("ms: got %q, want 1.23ms", got)
	}
}
