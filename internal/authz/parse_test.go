package authz

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// raws converts JSON strings to capability values.
func raws(caps ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(caps))
	for i, c := range caps {
		out[i] = json.RawMessage(c)
	}
	return out
}

func TestParseGrants(t *testing.T) {
	appdb := map[string]Backend{"pg-main": {PG: &PGBackend{Databases: map[string]DatabaseGrant{
		"appdb": {Permissions: []string{"readwrite"}},
	}}}}
	tests := []struct {
		name string
		caps []string
		want []Grant
	}{
		{name: "nil caps", caps: nil, want: nil},
		{name: "null value", caps: []string{`null`}, want: nil},
		{name: "empty array", caps: []string{`[]`}, want: nil},
		{name: "null elements skipped", caps: []string{`[null]`}, want: nil},
		{
			name: "array of one",
			caps: []string{`[{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"]}}}}}}]`},
			want: []Grant{{Backends: appdb}},
		},
		{
			name: "single object accepted",
			caps: []string{` {"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"]}}}}}} `},
			want: []Grant{{Backends: appdb}},
		},
		{
			name: "every known field at every level",
			caps: []string{`[{"limits":{"max_conns":1,"max_conn_duration":"1h","max_bytes_per_conn":"1KB"},` +
				`"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"],"schemas":["app"],"sql":["GRANT x"]}}}}}}]`},
			want: []Grant{{
				Limits: &GrantLimits{MaxConns: 1, MaxConnDuration: time.Hour, MaxBytesPerConn: 1000},
				Backends: map[string]Backend{"pg-main": {PG: &PGBackend{Databases: map[string]DatabaseGrant{
					"appdb": {Permissions: []string{"readwrite"}, Schemas: []string{"app"}, SQL: []string{"GRANT x"}},
				}}}},
			}},
		},
		{
			name: "several values and objects keep order",
			caps: []string{`[{"limits":{"max_conns":1}},{"limits":{"max_conns":2}}]`, `{"limits":{"max_conns":3}}`},
			want: []Grant{
				{Limits: &GrantLimits{MaxConns: 1}},
				{Limits: &GrantLimits{MaxConns: 2}},
				{Limits: &GrantLimits{MaxConns: 3}},
			},
		},
		{
			name: "limits as numbers",
			caps: []string{`[{"limits":{"max_conns":10,"max_conn_duration":90,"max_bytes_per_conn":1048576}}]`},
			want: []Grant{{Limits: &GrantLimits{MaxConns: 10, MaxConnDuration: 90 * time.Second, MaxBytesPerConn: 1 << 20}}},
		},
		{
			name: "limits as strings with units",
			caps: []string{`[{"limits":{"max_conns":"10","max_conn_duration":"2d","max_bytes_per_conn":"10GB"}}]`},
			want: []Grant{{Limits: &GrantLimits{MaxConns: 10, MaxConnDuration: 48 * time.Hour, MaxBytesPerConn: 10_000_000_000}}},
		},
		{
			name: "limits fractional seconds and exponent",
			caps: []string{`[{"limits":{"max_conn_duration":1.5,"max_bytes_per_conn":1e3}}]`},
			want: []Grant{{Limits: &GrantLimits{MaxConnDuration: 1500 * time.Millisecond, MaxBytesPerConn: 1000}}},
		},
		{
			name: "null limits fields are zero",
			caps: []string{`[{"limits":{"max_conns":null,"max_conn_duration":null}}]`},
			want: []Grant{{Limits: &GrantLimits{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGrants(raws(tt.caps...))
			if err != nil {
				t.Fatalf("ParseGrants: got error %v, want none", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseGrants:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseGrantsErrors(t *testing.T) {
	db := func(entry string) string {
		return `[{"backends":{"pg-main":{"pg":{"databases":{"appdb":` + entry + `}}}}}]`
	}
	tests := []struct {
		name       string
		caps       []string
		wantDetail []string // substrings of the error
	}{
		{name: "invalid JSON", caps: []string{`[{"backends":`}, wantDetail: []string{"capability value 1", "not valid JSON"}},
		{name: "empty value", caps: []string{``}, wantDetail: []string{"empty value"}},
		{name: "string value", caps: []string{`"readonly"`}, wantDetail: []string{"JSON string", "want an array of grant objects"}},
		{name: "number element", caps: []string{`[null, {}, 5]`}, wantDetail: []string{"grant object 3", "JSON number", "want an object"}},
		{name: "second value bad", caps: []string{`[]`, `true`}, wantDetail: []string{"capability value 2", "JSON boolean"}},
		{name: "backends wrong type", caps: []string{`[{"backends":[]}]`}, wantDetail: []string{"backends", "array", "want an object"}},
		{name: "permissions not a list", caps: []string{db(`{"permissions":"readonly"}`)}, wantDetail: []string{"permissions", "want an array"}},
		{name: "permission not a string", caps: []string{db(`{"permissions":[1]}`)}, wantDetail: []string{"permissions", "want a string"}},
		{name: "unknown preset", caps: []string{db(`{"permissions":["readonly","superuser"]}`)}, wantDetail: []string{`backends["pg-main"].pg.databases["appdb"].permissions[1]`, `unknown preset "superuser"`}},
		{name: "blank schema", caps: []string{db(`{"permissions":["readonly"],"schemas":[" "]}`)}, wantDetail: []string{"schemas[0]", "empty schema name"}},
		{name: "blank sql", caps: []string{db(`{"permissions":["readonly"],"sql":[""]}`)}, wantDetail: []string{"sql[0]", "empty statement"}},
		{name: "empty database key", caps: []string{`[{"backends":{"pg-main":{"pg":{"databases":{"":{"permissions":["readonly"]}}}}}}]`}, wantDetail: []string{"empty database name"}},
		{name: "negative max_conns", caps: []string{`[{"limits":{"max_conns":-1}}]`}, wantDetail: []string{"limits.max_conns", "not a whole non-negative number"}},
		{name: "fractional max_conns", caps: []string{`[{"limits":{"max_conns":1.5}}]`}, wantDetail: []string{"limits.max_conns"}},
		{name: "huge max_conns", caps: []string{`[{"limits":{"max_conns":1e20}}]`}, wantDetail: []string{"limits.max_conns", "too large"}},
		{name: "huge exponent", caps: []string{`[{"limits":{"max_bytes_per_conn":1e999999999}}]`}, wantDetail: []string{"limits.max_bytes_per_conn", "out of range"}},
		{name: "bad duration", caps: []string{`[{"limits":{"max_conn_duration":"soon"}}]`}, wantDetail: []string{"limits.max_conn_duration", `invalid duration "soon"`}},
		{name: "negative duration", caps: []string{`[{"limits":{"max_conn_duration":-5}}]`}, wantDetail: []string{"limits.max_conn_duration", "negative"}},
		{name: "bad size", caps: []string{`[{"limits":{"max_bytes_per_conn":"10 parsecs"}}]`}, wantDetail: []string{"limits.max_bytes_per_conn", "unknown unit"}},
		{name: "fractional bytes", caps: []string{`[{"limits":{"max_bytes_per_conn":0.5}}]`}, wantDetail: []string{"limits.max_bytes_per_conn", "whole"}},
		{name: "limit wrong type", caps: []string{`[{"limits":{"max_conns":true}}]`}, wantDetail: []string{"limits.max_conns", "number or a string"}},
		{name: "limits not an object", caps: []string{`[{"limits":3}]`}, wantDetail: []string{"limits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGrants(raws(tt.caps...))
			if err == nil {
				t.Fatalf("ParseGrants = %+v, want an error", got)
			}
			if !errors.Is(err, ErrBadGrant) {
				t.Errorf("got error %v, want one wrapping ErrBadGrant", err)
			}
			for _, want := range tt.wantDetail {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestParseGrantsUnknownFields: a field Waypoint does not know, at any level
// of a grant object, refuses the whole capability with an error naming the
// field and the path to the object holding it. Nothing is guessed: not a
// typo, not another letter case, not a field a newer version might add.
func TestParseGrantsUnknownFields(t *testing.T) {
	db := func(entry string) string {
		return `[{"backends":{"pg-main":{"pg":{"databases":{"appdb":` + entry + `}}}}}]`
	}
	tests := []struct {
		name string
		caps []string
		want string // the error after "capability value 1, grant object N: "
	}{
		{
			name: "typo schema in a database entry",
			caps: []string{db(`{"permissions":["readonly"],"schema":["app"]}`)},
			want: `backends["pg-main"].pg.databases["appdb"]: unknown field "schema" (allowed: permissions, schemas, sql)`,
		},
		{
			name: "other letter case in a database entry",
			caps: []string{db(`{"Permissions":["admin"]}`)},
			want: `backends["pg-main"].pg.databases["appdb"]: unknown field "Permissions" (allowed: permissions, schemas, sql)`,
		},
		{
			name: "escaped name is the name it spells",
			caps: []string{db(`{"permissions":["readonly"],"schema":["app"]}`)},
			want: `backends["pg-main"].pg.databases["appdb"]: unknown field "schema"`,
		},
		{
			name: "top level",
			caps: []string{`[{"backend":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}]`},
			want: `unknown field "backend" (allowed: limits, backends, console)`,
		},
		{
			name: "limits",
			caps: []string{`[{"limits":{"max_connections":1}}]`},
			want: `limits: unknown field "max_connections" (allowed: max_conns, max_conn_duration, max_bytes_per_conn)`,
		},
		{
			name: "backends entry",
			caps: []string{`[{"backends":{"pg-main":{"postgres":{"databases":{}}}}}]`},
			want: `backends["pg-main"]: unknown field "postgres" (allowed: pg)`,
		},
		{
			name: "pg",
			caps: []string{`[{"backends":{"pg-main":{"pg":{"database":{"appdb":{"permissions":["readonly"]}}}}}}]`},
			want: `backends["pg-main"].pg: unknown field "database" (allowed: databases)`,
		},
		{
			name: "wildcard database entry",
			caps: []string{`[{"backends":{"pg-main":{"pg":{"databases":{"*":{"permissions":["readonly"],"ttl":"1h"}}}}}}]`},
			want: `backends["pg-main"].pg.databases["*"]: unknown field "ttl"`,
		},
		{
			name: "second grant object",
			caps: []string{`[{"limits":{"max_conns":1}},{"limits":{"max_conns":2,"burst":3}}]`},
			want: `grant object 2: limits: unknown field "burst"`,
		},
		{
			name: "long name is shortened",
			caps: []string{db(`{"` + strings.Repeat("x", 500) + `":1}`)},
			want: `unknown field "` + strings.Repeat("x", 40),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGrants(raws(tt.caps...))
			if err == nil {
				t.Fatalf("ParseGrants = %+v, want an error naming the unknown field", got)
			}
			if !errors.Is(err, ErrBadGrant) || !errors.Is(err, ErrUnknownField) {
				t.Errorf("got error %v, want one wrapping ErrBadGrant and ErrUnknownField", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("got an error of %d bytes, want the field name shortened", len(err.Error()))
			}
		})
	}
}

func TestGrantLimitsJSONRoundTrip(t *testing.T) {
	in := GrantLimits{MaxConns: 3, MaxConnDuration: 90 * time.Minute, MaxBytesPerConn: 5 << 30}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var out GrantLimits
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if out != in {
		t.Errorf("round trip via %s: got %+v, want %+v", b, out, in)
	}
}
