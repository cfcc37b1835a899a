package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file decodes grant JSON level by level, so that an error names the
// full path to the offending value, map keys included, e.g.
// `backends["pg-main"].pg.databases["appdb"].permissions: got a JSON string,
// want an array`. encoding/json alone reports "backends.pg.databases.permissions".

// fieldError is a decoding error at a path inside a grant object.
type fieldError struct {
	path string // e.g. `backends["pg-main"].pg`
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// inField returns err located inside the field or map key name (a map key is
// written `["key"]`): a fieldError's path is prefixed, any other error gets
// name as its path.
func inField(name string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) && error(fe) == err {
		sep := "."
		if strings.HasPrefix(fe.path, "[") {
			sep = ""
		}
		return &fieldError{path: name + sep + fe.path, err: fe.err}
	}
	return &fieldError{path: name, err: err}
}

// ErrUnknownField is wrapped by the error for a field Waypoint does not know
// in a grant object, at any level. Such a grant is refused rather than
// decoded without the field: a typo such as "schema" for "schemas" must not
// silently fall back to a default.
var ErrUnknownField = errors.New("unknown field")

// decodeStrict is decodeObject for an object that may hold only the fields
// named in known. Names must match exactly, case included (encoding/json
// alone would accept "Permissions" for "permissions" and ignore "schema").
// An unknown field is an error wrapping ErrUnknownField that names it and
// the fields that are allowed.
func decodeStrict(b []byte, v any, known ...string) error {
	if err := decodeObject(b, v); err != nil {
		return err
	}
	return checkFields(b, known)
}

// checkFields returns an error for the first field of the JSON object b whose
// name is not in known. b must be valid JSON; anything but an object (null)
// has no fields and passes.
func checkFields(b []byte, known []string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		if !slices.Contains(known, name) {
			return fmt.Errorf("%w %s (allowed: %s)", ErrUnknownField, quoteShort(name), strings.Join(known, ", "))
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// decodeObject unmarshals the JSON object b into v. JSON null leaves v
// unchanged; any other non-object is an error. Type errors name the field.
func decodeObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("got a JSON %s, want an object", jsonKind(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return describeJSONError(err)
	}
	return nil
}

// describeJSONError rewrites encoding/json's type errors to name the field and
// the expected JSON type instead of Go type names.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	msg := fmt.Errorf("got a JSON %s, want %s", te.Value, jsonTypeName(te.Type.String()))
	if te.Field == "" {
		return msg
	}
	return &fieldError{path: te.Field, err: msg}
}

// jsonTypeName turns a Go type name from an UnmarshalTypeError into the JSON
// type a policy author should write.
func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	default:
		return "an object"
	}
}

// jsonKind names the kind of the JSON value b, for error messages.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// UnmarshalJSON implements json.Unmarshaler for a grant object.
func (g *Grant) UnmarshalJSON(b []byte) error {
	var raw struct {
		Limits   json.RawMessage            `json:"limits"`
		Backends map[string]json.RawMessage `json:"backends"`
		Console  json.RawMessage            `json:"console"`
	}
	if err := decodeStrict(b, &raw, "limits", "backends", "console"); err != nil {
		return err
	}
	var out Grant
	var err error
	if out.Limits, err = decodeOptional[GrantLimits](raw.Limits); err != nil {
		return inField("limits", err)
	}
	backends, err := decodeMap[Backend](raw.Backends)
	if err != nil {
		return inField("backends", err)
	}
	out.Backends = backends
	if out.Console, err = decodeConsole(raw.Console); err != nil {
		return inField("console", err)
	}
	*g = out
	return nil
}

// UnmarshalJSON implements json.Unmarshaler for one listener's grant.
func (be *Backend) UnmarshalJSON(b []byte) error {
	pg, err := onlyField(b, "pg", decodeOptional[PGBackend])
	if err == nil {
		*be = Backend{PG: pg}
	}
	return err
}

// UnmarshalJSON implements json.Unmarshaler for a postgres listener's grant.
func (p *PGBackend) UnmarshalJSON(b []byte) error {
	dbs, err := onlyField(b, "databases", decodeObjects[DatabaseGrant])
	if err == nil {
		*p = PGBackend{Databases: dbs}
	}
	return err
}

// onlyField decodes b, a JSON object whose one known field is name (any
// other is an error), and that field's value with decode; errors in the
// value are reported under name.
func onlyField[T any](b []byte, name string, decode func(json.RawMessage) (T, error)) (T, error) {
	var raw map[string]json.RawMessage
	if err := decodeStrict(b, &raw, name); err != nil {
		var zero T
		return zero, err
	}
	v, err := decode(raw[name])
	if err != nil {
		return v, inField(name, err)
	}
	return v, nil
}

// decodeObjects decodes raw, a JSON object of JSON objects, with decodeMap;
// absent or null is nil.
func decodeObjects[V any](raw json.RawMessage) (map[string]V, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := decodeObject(raw, &m); err != nil {
		return nil, err
	}
	return decodeMap[V](m)
}

// UnmarshalJSON implements json.Unmarshaler for one databases entry.
func (d *DatabaseGrant) UnmarshalJSON(b []byte) error {
	type plain DatabaseGrant // without this method, so Unmarshal does not recurse
	var out plain
	if err := decodeStrict(b, &out, "permissions", "schemas", "sql"); err != nil {
		return err
	}
	*d = DatabaseGrant(out)
	return nil
}

// isAbsent reports whether a field's raw JSON is missing or null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeOptional decodes an optional object field: nil when the field is
// absent or null, else a new T filled by its UnmarshalJSON.
func decodeOptional[T any, PT interface {
	*T
	json.Unmarshaler
}](raw json.RawMessage) (*T, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	v := PT(new(T))
	if err := v.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return (*T)(v), nil
}

// decodeMap decodes every value of m as a JSON object of type V, in key
// order (so the first error reported is deterministic). A nil m yields nil.
func decodeMap[V any](m map[string]json.RawMessage) (map[string]V, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]V, len(m))
	for _, k := range sortedKeys(m) {
		var v V
		if err := decodeObject(m[k], &v); err != nil {
			return nil, inField(fmt.Sprintf("[%q]", k), err)
		}
		out[k] = v
	}
	return out, nil
}
