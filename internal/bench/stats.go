package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Latency summarises a set of durations. The zero value is an empty summary
// (N == 0), whose percentiles are zero.
type Latency struct {
	N             int
	P50, P90, P99 time.Duration
	Max           time.Duration
}

// Summarize returns the nearest-rank percentiles of samples. It does not
// modify samples. An empty slice gives the zero Latency.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Latency{
		N:   len(s),
		P50: percentile(s, 50),
		P90: percentile(s, 90),
		P99: percentile(s, 99),
		Max: s[len(s)-1],
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// sorted, non-empty slice s: the smallest sample with at least p% of the
// samples at or below it.
func percentile(s []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// String renders the summary as "p50 … p90 … p99 … (n=…)" in milliseconds.
func (l Latency) String() string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  (n=%d)", ms(l.P50), ms(l.P90), ms(l.P99), l.N)
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// Ratio returns a/b, or NaN when b is zero (no baseline to compare with).
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// DurationRatio is Ratio for durations.
func DurationRatio(a, b time.Duration) float64 { return Ratio(float64(a), float64(b)) }
