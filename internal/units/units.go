// Package units parses the durations and byte sizes people write in
// Waypoint's configuration file and in grant limits ("90s", "7d", "10GB",
// "512MiB"), so both read them the same way. Standard library only.
package units

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// ParseDuration parses a duration in Go syntax ("90s", "1h30m", "0") with one
// extension: a leading whole or fractional number of days, "7d", "1.5d" or
// "1d12h" (a day is exactly 24 hours). A leading sign applies to the whole
// value, as in time.ParseDuration. Values that overflow are an error.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "d") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use Go syntax such as \"90s\", \"1h30m\" or \"7d\"", in)
		}
		return d, nil
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	days, rest, err := splitDays(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", in, err)
	}
	var d time.Duration
	if rest != "" {
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("invalid duration %q: after the days, use Go syntax such as \"12h\"", in)
		}
	}
	if d, err = addDays(d, days); err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", in, err)
	}
	if neg {
		d = -d
	}
	return d, nil
}

// splitDays splits an unsigned duration such as "1d12h" at its day
// component, returning the number of days and the remaining Go duration text.
func splitDays(s string) (*big.Rat, string, error) {
	i := strings.IndexByte(s, 'd')
	if i < 0 {
		return nil, "", errors.New("no days")
	}
	days, err := ParseDecimal(s[:i])
	if err != nil {
		return nil, "", errors.New("days must be written as a number followed by \"d\", first (\"1d12h\")")
	}
	rest := s[i+1:]
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		return nil, "", errors.New("sign inside a duration")
	}
	return days, rest, nil
}

// addDays returns d plus the given number of 24-hour days, refusing overflow
// and fractions of a nanosecond.
func addDays(d time.Duration, days *big.Rat) (time.Duration, error) {
	ns := new(big.Rat).Mul(days, new(big.Rat).SetInt64(int64(24*time.Hour)))
	ns.Add(ns, new(big.Rat).SetInt64(int64(d)))
	if !ns.IsInt() || !ns.Num().IsInt64() {
		return 0, errors.New("out of range")
	}
	return time.Duration(ns.Num().Int64()), nil
}

// byteUnits maps a lower-case unit (the "b" suffix already removed) to its
// multiplier: decimal units are powers of 1000, binary ("i") units of 1024.
var byteUnits = map[string]int64{
	"":   1,
	"k":  1000,
	"m":  1000 * 1000,
	"g":  1000 * 1000 * 1000,
	"t":  1000 * 1000 * 1000 * 1000,
	"p":  1000 * 1000 * 1000 * 1000 * 1000,
	"ki": 1 << 10,
	"mi": 1 << 20,
	"gi": 1 << 30,
	"ti": 1 << 40,
	"pi": 1 << 50,
}

// ParseByteSize parses a non-negative size in bytes: a plain integer ("1024")
// or a decimal number with a unit, case-insensitive and with an optional "B"
// suffix and optional space: "100kB", "10GB", "1.5GB", "512MiB", "2 gib", "1k".
// KB, MB, GB, TB and PB are powers of 1000; KiB, MiB, GiB, TiB and PiB are
// powers of 1024. The result must be a whole number of bytes that fits in an
// int64; a sign is an error.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := ParseDecimal(num)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q: use a number of bytes or a size such as \"10GB\" or \"512MiB\"", s)
	}
	if unit != "b" {
		unit = strings.TrimSuffix(unit, "b")
	} else {
		unit = ""
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit (use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)", s)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	if !n.IsInt() {
		return 0, fmt.Errorf("invalid byte size %q: not a whole number of bytes", s)
	}
	if !n.Num().IsInt64() {
		return 0, fmt.Errorf("invalid byte size %q: too large", s)
	}
	return n.Num().Int64(), nil
}

// ParseDecimal parses an unsigned decimal number exactly: digits with at most
// one '.', and at least one digit ("1", "1.5", ".5", "5."). Signs, exponents
// and fractions are errors, so that "-1", "1e9" or "1/2" are not silently
// read by big.Rat.
func ParseDecimal(s string) (*big.Rat, error) {
	r, ok := new(big.Rat), isDecimal(s)
	if ok {
		_, ok = r.SetString(s)
	}
	if !ok {
		return nil, fmt.Errorf("not a decimal number: %q", s)
	}
	return r, nil
}

// isDecimal reports whether s has the syntax ParseDecimal accepts.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] >= '0' && s[i] <= '9':
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
