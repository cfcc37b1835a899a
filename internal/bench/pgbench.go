package bench

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// tpsRE matches pgbench's summary line, "tps = 1234.567890 (without initial
// connection time)"; older versions print "(excluding connections
// establishing)" and a second "(including …)" line, which comes first.
var tpsRE = regexp.MustCompile(`(?m)^tps = ([0-9]+(?:\.[0-9]+)?) \((?:without initial connection time|excluding connections establishing)\)`)

// ErrNoTPS is returned by ParseTPS when pgbench printed no TPS figure.
var ErrNoTPS = errors.New("bench: no tps line in pgbench output")

// ParseTPS returns the transactions per second pgbench reported, excluding
// connection setup.
func ParseTPS(out []byte) (float64, error) {
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, ErrNoTPS
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, fmt.Errorf("bench: tps %q: %w", m[1], err)
	}
	return tps, nil
}
