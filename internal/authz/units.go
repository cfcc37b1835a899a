package authz

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/units"
)

// ParseDuration parses a limit duration as written in a grant: anything the
// configuration file accepts (units.ParseDuration: "90s", "1h30m", "2d"), or,
// as grant JSON often carries numbers, a plain number of seconds ("90",
// "0.5"). Surrounding whitespace is ignored. Negative values are errors; "0"
// means zero (unlimited, where the caller gives zero that meaning).
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	if r, err := units.ParseDecimal(t); err == nil {
		ns, err := scaleRat(r, int64(time.Second))
		if err != nil {
			return 0, fmt.Errorf("duration %q %w", s, err)
		}
		return time.Duration(ns), nil
	}
	d, err := units.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"90s\", \"1h\", \"2d\" or a number of seconds)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// ParseByteSize parses a size as written in a grant, with the same units as
// the configuration file (units.ParseByteSize): "10GB", "512MiB", "4096".
func ParseByteSize(s string) (int64, error) {
	return units.ParseByteSize(s)
}

// scaleRat returns r×unit truncated toward zero, or an error when r is
// negative or the result does not fit in an int64.
func scaleRat(r *big.Rat, unit int64) (int64, error) {
	if r.Sign() < 0 {
		return 0, errors.New("must not be negative")
	}
	v := new(big.Rat).Mul(r, new(big.Rat).SetInt64(unit))
	q := new(big.Int).Quo(v.Num(), v.Denom())
	if !q.IsInt64() {
		return 0, errors.New("is too large")
	}
	return q.Int64(), nil
}
