package config

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/units"
)

// Defaults applied by Parse where a key is absent.
const (
	defaultStateDir         = "/var/lib/waypoint/tsnet"
	defaultInterval         = time.Minute
	defaultRedisKeyPrefix   = "waypoint:"
	defaultDrainTimeout     = 30 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	defaultAdminDatabase    = "postgres"
	defaultUserPrefix       = "wp_"
	defaultUserTTL          = 24 * time.Hour
	defaultCleanupInterval  = 5 * time.Minute
	defaultMaxSpares        = 32
	defaultSpareIdle        = time.Minute
)

// decoder turns the generic TOML tree into a Config. It is strict: keys are
// case-sensitive, unknown keys and wrong types are errors, and it carries on
// after an error so that one run reports every problem.
//
// It walks the tree instead of letting go-toml decode into tagged structs
// because go-toml cannot keep that promise: it stops at the first type
// mismatch, and its strict mode reports unknown keys without array indices
// ("listeners.postgres.bogus", not listeners[1]…).
type decoder struct {
	lookupEnv func(string) (string, bool)
	errs      *errorList
}

// table is one TOML table being decoded. Every getter marks its key as used;
// finish reports the keys nobody asked for.
type table struct {
	d    *decoder
	path string
	m    map[string]any
	used map[string]bool
}

func (d *decoder) table(path string, m map[string]any) *table {
	return &table{d: d, path: path, m: m, used: make(map[string]bool)}
}

// key returns the path of key k in t.
func (t *table) key(k string) string { return joinKey(t.path, k) }

// get returns the raw value of k and whether it is present.
func (t *table) get(k string) (any, bool) {
	t.used[k] = true
	v, ok := t.m[k]
	return v, ok
}

// wrongType reports that k holds v where want was expected.
func (t *table) wrongType(k, want string, v any) {
	t.d.errs.addf(t.key(k), "must be %s, not %s", want, tomlType(v))
}

// typed returns the value of k if it is a T. ok is false when k is absent
// or, reported as wanting want, holds another type.
func typed[T any](t *table, k, want string) (x T, ok bool) {
	v, present := t.get(k)
	if !present {
		return x, false
	}
	if x, ok = v.(T); !ok {
		t.wrongType(k, want, v)
	}
	return x, ok
}

// finish reports every key of t that no getter read, in name order (the
// errors are sorted by line later).
func (t *table) finish() {
	var unknown []string
	for k := range t.m {
		if !t.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		t.d.errs.add(t.key(k), "unknown key")
	}
}

// str reads the string k into dst, expanding ${VAR}; absent leaves dst
// alone. It reports whether k was present and valid.
func (t *table) str(k string, dst *string) bool {
	s, ok := typed[string](t, k, "a string")
	return ok && t.d.expand(t.key(k), s, dst)
}

// expand stores s, with ${VAR} expanded, in dst, or reports why it cannot.
func (d *decoder) expand(key, s string, dst *string) bool {
	out, err := expandEnv(s, d.lookupEnv)
	if err != nil {
		d.errs.add(key, err.Error())
		return false
	}
	*dst = out
	return true
}

// strDefault reads the string k into dst, or stores def when k is absent.
func (t *table) strDefault(k string, dst *string, def string) {
	*dst = def
	t.str(k, dst)
}

// enum reads the string k, lower-cased, into dst, or stores def when k is
// absent. Membership is checked by Validate.
func (t *table) enum(k string, dst *string, def string) {
	*dst = def
	if t.str(k, dst) {
		*dst = strings.ToLower(*dst)
	}
}

// strList reads an array of strings, expanding ${VAR} in each; absent
// leaves dst alone. It reports whether k was present and every element
// valid (invalid elements are reported and left out).
func (t *table) strList(k string, dst *[]string) bool {
	items, ok := typed[[]any](t, k, "an array of strings")
	if !ok {
		return false
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		key := indexKey(t.key(k), i)
		s, isString := item.(string)
		if !isString {
			t.d.errs.addf(key, "must be a string, not %s", tomlType(item))
			continue
		}
		if t.d.expand(key, s, &s) {
			out = append(out, s)
		}
	}
	*dst = out
	return len(out) == len(items)
}

// enumList reads an array of strings, lower-cased and without duplicates
// (the first of each stays), into dst; absent, or with an invalid element,
// leaves dst alone. Membership is checked by Validate.
func (t *table) enumList(k string, dst *[]string) {
	var items []string
	if !t.strList(k, &items) {
		return
	}
	out := make([]string, 0, len(items))
	for _, s := range items {
		if s = strings.ToLower(s); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	*dst = out
}

// boolean reads the boolean k into dst; absent leaves dst alone. It reports
// whether k was present and valid.
func (t *table) boolean(k string, dst *bool) bool {
	b, ok := typed[bool](t, k, "true or false")
	if ok {
		*dst = b
	}
	return ok
}

// integer reads the integer k into dst; absent leaves dst alone.
func (t *table) integer(k string, dst *int) {
	n, ok := typed[int64](t, k, "an integer")
	switch {
	case !ok:
		return
	case n > math.MaxInt32 || n < math.MinInt32:
		t.d.errs.addf(t.key(k), "%d is out of range", n)
	default:
		*dst = int(n)
	}
}

// duration reads k, a duration string ("90s", "1h30m", "7d") or the integer
// 0, into dst; absent stores def.
func (t *table) duration(k string, dst *time.Duration, def time.Duration) {
	*dst = def
	v, ok := t.get(k)
	if !ok {
		return
	}
	switch v := v.(type) {
	case int64:
		if v != 0 {
			t.d.errs.addf(t.key(k), "must be a duration string such as \"90s\" or \"1h30m\" (only 0 may be written as a number)")
			return
		}
		*dst = 0
	case string:
		if d, ok := parseString(t, k, v, units.ParseDuration); ok {
			*dst = d
		}
	default:
		t.wrongType(k, "a duration string such as \"90s\"", v)
	}
}

// byteSize reads k, an integer number of bytes or a size string ("10GB"),
// into dst; absent leaves dst alone.
func (t *table) byteSize(k string, dst *int64) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	switch v := v.(type) {
	case int64:
		*dst = v
	case string:
		if n, ok := parseString(t, k, v, units.ParseByteSize); ok {
			*dst = n
		}
	default:
		t.wrongType(k, "a size such as \"10GB\" or a number of bytes", v)
	}
}

// parseString expands ${VAR} in s, the string value of k in t, and parses
// the result with parse. ok is false when either step failed; the failure is
// reported under k.
func parseString[T any](t *table, k, s string, parse func(string) (T, error)) (v T, ok bool) {
	if !t.d.expand(t.key(k), s, &s) {
		return v, false
	}
	v, err := parse(s)
	if err != nil {
		t.d.errs.add(t.key(k), err.Error())
		return v, false
	}
	return v, true
}

// sub returns the sub-table k, or nil when it is absent or not a table.
func (t *table) sub(k string) *table {
	m, ok := typed[map[string]any](t, k, "a table")
	if !ok {
		return nil
	}
	return t.d.table(t.key(k), m)
}

// tables returns the elements of the array of tables k (written [[k]] or as
// an array of inline tables); nil entries stand for elements that are not
// tables and were reported.
func (t *table) tables(k string) []*table {
	elems, ok := typed[[]any](t, k, "an array of tables ([["+k+"]])")
	if !ok {
		return nil
	}
	out := make([]*table, len(elems))
	for i, e := range elems {
		path := indexKey(t.key(k), i)
		m, isTable := e.(map[string]any)
		if !isTable {
			t.d.errs.addf(path, "must be a table, not %s", tomlType(e))
			continue
		}
		out[i] = t.d.table(path, m)
	}
	return out
}

// tomlType names the TOML type of a decoded value for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	default: // time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime
		return "a date/time"
	}
}
