package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/units"
)

// Grant is one grant object of a caller's capability value: what one matching
// ACL rule of the tailnet policy allows. A caller usually has several; Decide
// merges them.
//
// The JSON form is
//
//	{"limits": {"max_conns": 10, "max_conn_duration": "1h", "max_bytes_per_conn": "10GB"},
//	 "backends": {"pg-main": {"pg": {"databases": {
//	     "appdb": {"permissions": ["readwrite"], "schemas": ["public", "app"],
//	               "sql": ["GRANT INSERT ON public.audit_log TO {{.Role}}"]},
//	     "*":     {"permissions": ["readonly"]}}}}},
//	 "console": "view"}
//
// A field Waypoint does not know, at any level, makes the grant invalid, and
// so does a known field with a wrong type or value: the caller is refused
// (fail closed) with an error naming the field, rather than served with a
// guess (a typo "schema" would otherwise silently mean ["public"]). Field
// names match exactly, case included.
type Grant struct {
	// Limits bound the caller's connections. Nil means the grant sets no
	// limit. Limits apply to every listener the caller reaches; the strictest
	// value across all grant objects wins.
	Limits *GrantLimits `json:"limits,omitempty"`
	// Backends is keyed by listener name (the `name` of a [[listeners]]
	// entry). A listener without an entry is not granted by this object.
	Backends map[string]Backend `json:"backends,omitempty"`
	// Console is the caller's access to the operator console: ConsoleView
	// ("view") or ConsoleAdmin ("admin"); absent grants none. Across grant
	// objects the strongest wins (see Console). It grants no database
	// access, and database grants give no console access.
	Console ConsoleAccess `json:"console,omitempty"`
}

// Backend is the part of a grant for one listener. Its only field is the
// protocol "pg" (any other is an error, like every unknown field); a
// listener entry without it grants nothing.
type Backend struct {
	// PG is the grant for a listener in postgres mode. Nil grants nothing.
	PG *PGBackend `json:"pg,omitempty"`
}

// PGBackend grants databases behind a postgres-mode listener.
type PGBackend struct {
	// Databases is keyed by database name; the key "*" matches every
	// database. For a given database the exact entry and the "*" entry merge.
	Databases map[string]DatabaseGrant `json:"databases,omitempty"`
}

// DatabaseGrant is what a caller may do in one database.
type DatabaseGrant struct {
	// Permissions are preset names: "readonly", "readwrite" or "admin",
	// case-insensitive. The strongest one granted is used. Unknown names
	// make the whole grant invalid.
	Permissions []string `json:"permissions,omitempty"`
	// Schemas the presets apply to. Empty means ["public"].
	Schemas []string `json:"schemas,omitempty"`
	// SQL are Go-template GRANT/REVOKE/ALTER DEFAULT PRIVILEGES statements
	// run at provisioning ({{.Role}}, {{.Database}}, {{.User}}). They are
	// refused unless raw SQL is allowed on the listener, and skipped for a
	// preset-limited connection. Validating the statements is provisioning's
	// job; here each must only be non-blank.
	SQL []string `json:"sql,omitempty"`
}

// GrantLimits are the limits one grant object sets. A zero field means the
// grant sets no such limit (the configured default then applies).
//
// In JSON every field may be a number or a string: max_conns a whole number;
// max_conn_duration a number of seconds or a string accepted by
// ParseDuration ("90s", "1h", "2d"); max_bytes_per_conn a number of bytes or
// a string accepted by ParseByteSize ("10GB", "512MiB"). Negative values are
// errors.
type GrantLimits struct {
	// MaxConns is the most concurrent connections per caller.
	MaxConns int
	// MaxConnDuration is the longest one session may last.
	MaxConnDuration time.Duration
	// MaxBytesPerConn is the most bytes one session may relay.
	MaxBytesPerConn int64
}

// grantLimitsJSON is the wire form of GrantLimits, decoded field by field so
// that errors can name the field and accept both numbers and strings.
type grantLimitsJSON struct {
	MaxConns        json.RawMessage `json:"max_conns,omitempty"`
	MaxConnDuration json.RawMessage `json:"max_conn_duration,omitempty"`
	MaxBytesPerConn json.RawMessage `json:"max_bytes_per_conn,omitempty"`
}

// UnmarshalJSON implements json.Unmarshaler. A null or absent field is zero.
// Errors name the offending field.
func (l *GrantLimits) UnmarshalJSON(b []byte) error {
	var raw grantLimitsJSON
	if err := decodeStrict(b, &raw, "max_conns", "max_conn_duration", "max_bytes_per_conn"); err != nil {
		return err
	}
	var out GrantLimits
	n, err := decodeLimit(raw.MaxConns, parseCount)
	if err != nil {
		return inField("max_conns", err)
	}
	out.MaxConns = int(n)
	n, err = decodeLimit(raw.MaxConnDuration, parseDurationValue)
	if err != nil {
		return inField("max_conn_duration", err)
	}
	out.MaxConnDuration = time.Duration(n)
	out.MaxBytesPerConn, err = decodeLimit(raw.MaxBytesPerConn, parseByteSizeValue)
	if err != nil {
		return inField("max_bytes_per_conn", err)
	}
	*l = out
	return nil
}

// MarshalJSON implements json.Marshaler, writing the duration as a string
// ParseDuration reads back, so that a marshalled grant round-trips.
func (l GrantLimits) MarshalJSON() ([]byte, error) {
	var dur string
	if l.MaxConnDuration != 0 {
		dur = l.MaxConnDuration.String()
	}
	return json.Marshal(struct {
		MaxConns        int    `json:"max_conns,omitempty"`
		MaxConnDuration string `json:"max_conn_duration,omitempty"`
		MaxBytesPerConn int64  `json:"max_bytes_per_conn,omitempty"`
	}{l.MaxConns, dur, l.MaxBytesPerConn})
}

// limitValue is one limit field's JSON value: exactly one of number and text
// is set.
type limitValue struct {
	number *big.Rat // a JSON number
	raw    string   // the JSON number as written, for messages
	text   string   // a JSON string
}

// decodeLimit decodes one limit field with parse. An absent or null field is 0.
func decodeLimit(raw json.RawMessage, parse func(limitValue) (int64, error)) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if isAbsent(raw) {
		return 0, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return parse(limitValue{text: s})
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		r, err := parseJSONNumber(string(raw))
		if err != nil {
			return 0, err
		}
		return parse(limitValue{number: r, raw: string(raw)})
	default:
		return 0, fmt.Errorf("got a JSON %s, want a number or a string", jsonKind(raw))
	}
}

// maxExponent bounds the exponent of a JSON number in a limit, so that a
// hostile "1e999999999" cannot make big.Rat allocate without bound.
const maxExponent = 30

// parseJSONNumber parses a valid JSON number exactly.
func parseJSONNumber(s string) (*big.Rat, error) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return nil, fmt.Errorf("number %s is out of range", s)
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("invalid number %s", s)
	}
	return r, nil
}

// parseCount reads a whole, non-negative count that fits in an int32 (so it
// is a valid int everywhere).
func parseCount(v limitValue) (int64, error) {
	r := v.number
	if r == nil {
		var err error
		if r, err = units.ParseDecimal(strings.TrimSpace(v.text)); err != nil {
			return 0, fmt.Errorf("invalid count %q (want a whole number)", v.text)
		}
	}
	shown := v.raw
	if v.number == nil {
		shown = quoteShort(v.text)
	}
	if !r.IsInt() || r.Sign() < 0 {
		return 0, fmt.Errorf("%s is not a whole non-negative number", shown)
	}
	if r.Num().BitLen() > 31 {
		return 0, fmt.Errorf("%s is too large", shown)
	}
	return r.Num().Int64(), nil
}

// parseDurationValue reads a number of seconds or a ParseDuration string.
func parseDurationValue(v limitValue) (int64, error) {
	if v.number == nil {
		d, err := ParseDuration(v.text)
		return int64(d), err
	}
	ns, err := scaleRat(v.number, int64(time.Second))
	if err != nil {
		return 0, fmt.Errorf("%s seconds %w", v.raw, err)
	}
	return ns, nil
}

// parseByteSizeValue reads a whole number of bytes or a ParseByteSize string.
func parseByteSizeValue(v limitValue) (int64, error) {
	if v.number == nil {
		return ParseByteSize(v.text)
	}
	if !v.number.IsInt() || v.number.Sign() < 0 {
		return 0, fmt.Errorf("%s is not a whole non-negative number of bytes", v.raw)
	}
	if !v.number.Num().IsInt64() {
		return 0, fmt.Errorf("%s is too large", v.raw)
	}
	return v.number.Num().Int64(), nil
}
