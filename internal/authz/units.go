package authz

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// ParseDuration parses a limit duration as written in a grant: a Go duration
// ("90s", "1h30m"), a number of days ("2d", "1.5d"), or a plain number of
// seconds ("90", "0.5"). Surrounding whitespace is ignored. Negative values and
// values beyond time.Duration's range are errors; "0" means zero (unlimited,
// where the caller gives zero that meaning).
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	if days, ok := strings.CutSuffix(t, "d"); ok {
		return scaleDuration(days, 24*time.Hour, s)
	}
	if isDecimal(t) {
		return scaleDuration(t, time.Second, s)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"90s\", \"1h\", \"2d\" or a number of seconds)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// scaleDuration returns number×unit for a decimal number string, truncated to
// whole nanoseconds. orig is the caller's input, used in error messages.
func scaleDuration(number string, unit time.Duration, orig string) (time.Duration, error) {
	r, err := parseDecimal(number)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"90s\", \"1h\", \"2d\" or a number of seconds)", orig)
	}
	ns, err := scaleRat(r, int64(unit))
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", orig, err)
	}
	return time.Duration(ns), nil
}

// byteUnits maps a lower-cased size suffix to its multiplier: decimal units
// are powers of 1000, binary ("i") units powers of 1024.
var byteUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// ParseByteSize parses a size as written in a grant: a number with an optional
// case-insensitive unit, e.g. "10GB", "512MiB", "1.5 gb", "4096". Decimal
// units KB, MB, GB, TB are powers of 1000; binary units KiB, MiB, GiB, TiB
// powers of 1024; no unit or "B" means bytes. The result must be a whole,
// non-negative number of bytes that fits in an int64.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	number, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	r, err := parseDecimal(number)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. \"10GB\", \"512MiB\" or a number of bytes)", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return r.Num().Int64(), nil
}

// isDecimal reports whether s is an unsigned decimal number: digits with at
// most one '.', and at least one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// parseDecimal parses an unsigned decimal number exactly. It accepts only what
// isDecimal accepts (no sign, exponent or fraction syntax), so that "1/2" or
// "1e9" are not silently read by big.Rat.
func parseDecimal(s string) (*big.Rat, error) {
	if !isDecimal(s) {
		return nil, fmt.Errorf("not a decimal number: %q", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("not a decimal number: %q", s)
	}
	return r, nil
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
