package proxy_test

import (
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestIntegration_Grant_UnknownFieldRefused plays a policy author who makes
// a typo: a grant with a field Waypoint does not know, at several levels of
// the grant object. Each is refused with FATAL 28000 whose message names the
// field and where it is (so the caller can get it fixed), and nothing is
// created on the backend for the caller, although the rest of the grant
// would allow the connection.
func TestIntegration_Grant_UnknownFieldRefused(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	tests := []struct {
		name  string
		grant string
		want  string // in the client's error message
	}{
		{
			name:  "schema for schemas",
			grant: `{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"],"schema":["app"]}}}}}}`,
			want:  `backends["pg-main"].pg.databases["appdb"]: unknown field "schema"`,
		},
		{
			name:  "top level",
			grant: `{"limit":{"max_conns":1},"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`,
			want:  `grant object 1: unknown field "limit"`,
		},
		{
			name:  "limits",
			grant: `{"limits":{"max_connections":1},"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`,
			want:  `limits: unknown field "max_connections"`,
		},
		{
			name:  "backends entry",
			grant: `{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}},"ttl":"1h"}}}`,
			want:  `backends["pg-main"]: unknown field "ttl"`,
		},
		{
			name:  "pg",
			grant: `{"backends":{"pg-main":{"pg":{"database":{"appdb":{"permissions":["readonly"]}}}}}}`,
			want:  `backends["pg-main"].pg: unknown field "database"`,
		},
	}
	typo := r.client("typo@example.com", "laptop")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.grant(typo, tt.grant)
			conn, err := r.connect(typo, "appdb", nil)
			if err == nil {
				conn.Close(t.Context())
				t.Fatal("connected with a grant that has an unknown field, want a refusal")
			}
			pe := pgError(err)
			if pe == nil || pe.Severity != "FATAL" || pe.Code != "28000" || !strings.Contains(pe.Message, tt.want) {
				t.Fatalf("got %v, want FATAL 28000 whose message contains %q", err, tt.want)
			}
			r.waitIdle(t)
			r.assertNoRoles(t, "wp_typo_")
		})
	}
}

// TestIntegration_PresetRequest_Invalid plays a client that mistypes its
// per-connection preset request, as a startup parameter and inside
// options. It is refused with FATAL 28000 saying once what is wrong and what
// is valid, and a hint to fix the connection's settings (not to ask for a
// grant: the grant is fine); nothing is created on the backend.
func TestIntegration_PresetRequest_Invalid(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	c := r.client("presets@example.com", "laptop", readwriteAppdb)
	tests := []struct {
		name   string
		params map[string]string
		want   string // in the message, after "invalid waypoint_presets request: "
	}{
		{name: "unknown name", params: map[string]string{"waypoint_presets": "root"}, want: `startup parameter "waypoint_presets": unknown preset "root"`},
		{name: "unknown name in options", params: map[string]string{"options": "-c waypoint.presets=readonly,superuser"}, want: `options item "waypoint.presets": unknown preset "superuser"`},
		{name: "empty list item", params: map[string]string{"options": "-c waypoint_presets=readonly,"}, want: `options item "waypoint_presets": empty preset name in "readonly,"`},
		{name: "empty value", params: map[string]string{"waypoint_presets": ""}, want: `startup parameter "waypoint_presets": empty value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := r.connect(c, "appdb", tt.params)
			if err == nil {
				conn.Close(t.Context())
				t.Fatal("connected with an invalid waypoint_presets request")
			}
			pe := pgError(err)
			if pe == nil || pe.Severity != "FATAL" || pe.Code != "28000" {
				t.Fatalf("got %v, want FATAL 28000", err)
			}
			want := "invalid waypoint_presets request: " + tt.want +
				"; valid values are readonly, readwrite and admin, or a comma-separated list of them (the strongest listed applies)"
			if pe.Message != want {
				t.Errorf("got message\n%q\nwant\n%q", pe.Message, want)
			}
			if !strings.HasPrefix(pe.Hint, "Fix waypoint_presets in this connection's settings") || strings.Contains(pe.Hint, "administrator") {
				t.Errorf("got hint %q, want it to say to fix the connection's settings", pe.Hint)
			}
		})
	}
	r.waitIdle(t)
	r.assertNoRoles(t, "wp_presets_")
}
