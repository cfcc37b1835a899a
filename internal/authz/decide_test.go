package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// alice returns a user-owned peer with the given capability values.
func alice(caps ...string) identity.Peer {
	return identity.Peer{
		LoginName:   "alice@example.com",
		MachineName: "laptop",
		NodeID:      "n1",
		Caps:        raws(caps...),
	}
}

// pgGrant returns a grant object for listener pg-main with the given
// databases object, e.g. `{"appdb":{"permissions":["readonly"]}}`.
func pgGrant(databases string) string {
	return `{"backends":{"pg-main":{"pg":{"databases":` + databases + `}}}}`
}

func TestDecide(t *testing.T) {
	req := Request{Listener: "pg-main", Database: "appdb"}
	tests := []struct {
		name string
		caps []string
		req  Request
		pol  Policy
		want Effective // Listener/Database are filled in from req
	}{
		{
			name: "exact database",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readwrite"]}}`) + `]`},
			want: Effective{Preset: Readwrite, Schemas: SchemaGrants(Readwrite, "public")},
		},
		{
			name: "wildcard database",
			caps: []string{`[` + pgGrant(`{"*":{"permissions":["readonly"]}}`) + `]`},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public")},
		},
		{
			name: "exact and wildcard merge per schema",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"],"schemas":["app"]},"*":{"permissions":["readwrite"],"schemas":["public","audit"]}}`) + `]`},
			want: Effective{Preset: Readwrite, Schemas: []SchemaGrant{{"app", Readonly}, {"audit", Readwrite}, {"public", Readwrite}}},
		},
		{
			name: "several grant objects and values merge",
			caps: []string{
				`[` + pgGrant(`{"appdb":{"permissions":["readonly"],"schemas":["b"]}}`) + `]`,
				`[` + pgGrant(`{"appdb":{"permissions":["admin"],"schemas":["a","b"]}}`) + `]`,
			},
			want: Effective{Preset: Admin, Schemas: SchemaGrants(Admin, "a", "b")},
		},
		{
			// The cross product this must never be: admin on appdb.public.
			name: "no cross product: wildcard admin on scratch plus exact readonly on public",
			caps: []string{
				`[` + pgGrant(`{"*":{"permissions":["admin"],"schemas":["scratch"]}}`) + `]`,
				`[` + pgGrant(`{"appdb":{"permissions":["readonly"],"schemas":["public"]}}`) + `]`,
			},
			want: Effective{Preset: Admin, Schemas: []SchemaGrant{{"public", Readonly}, {"scratch", Admin}}},
		},
		{
			name: "an entry without schemas means public for that entry only",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]},"*":{"permissions":["readwrite"],"schemas":["app"]}}`) + `]`},
			want: Effective{Preset: Readwrite, Schemas: []SchemaGrant{{"app", Readwrite}, {"public", Readonly}}},
		},
		{
			name: "preset request lowers each schema, never raises",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["admin"],"schemas":["a"]},"*":{"permissions":["readonly"],"schemas":["b"]}}`) + `]`},
			req:  Request{Listener: "pg-main", Database: "appdb", MaxPreset: Readwrite},
			want: Effective{Preset: Readwrite, Schemas: []SchemaGrant{{"a", Readwrite}, {"b", Readonly}}, PresetLimited: true},
		},
		{
			name: "wildcard does not match the admin database; an exact entry does",
			caps: []string{`[` + pgGrant(`{"postgres":{"permissions":["readonly"],"schemas":["x"]},"*":{"permissions":["admin"]}}`) + `]`},
			req:  Request{Listener: "pg-main", Database: "postgres"},
			pol:  Policy{AdminDatabase: "postgres"},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "x")},
		},
		{
			name: "presets case-insensitive and deduplicated",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["ReadOnly","READONLY"," readwrite "]}}`) + `]`},
			want: Effective{Preset: Readwrite, Schemas: SchemaGrants(Readwrite, "public")},
		},
		{
			name: "schemas sorted and deduplicated",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"],"schemas":["z","a","z","m"]}}`) + `]`},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "a", "m", "z")},
		},
		{
			name: "other databases and listeners ignored",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]},"billing":{"permissions":["admin"],"schemas":["x"]}}`) +
				`,{"backends":{"pg-other":{"pg":{"databases":{"*":{"permissions":["admin"]}}}}}}]`},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public")},
		},
		{
			name: "sql deduplicated in grant order when allowed",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"],"sql":["B","A"]},"*":{"permissions":["readonly"],"sql":["A","C"]}}`) + `,` +
				pgGrant(`{"appdb":{"permissions":["readonly"],"sql":["C","D"]}}`) + `]`},
			pol:  Policy{AllowRawSQL: true},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), SQL: []string{"B", "A", "C", "D"}},
		},
		{
			name: "limits: strictest non-zero wins across grant objects",
			caps: []string{`[{"limits":{"max_conns":10,"max_conn_duration":"2h","max_bytes_per_conn":0}},` +
				`{"limits":{"max_conns":3,"max_conn_duration":"3h","max_bytes_per_conn":"1GB"}},` +
				pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			pol:  Policy{DefaultLimits: Limits{MaxConns: 1, MaxConnDuration: time.Minute, MaxBytesPerConn: 1}},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), Limits: Limits{MaxConns: 3, MaxConnDuration: 2 * time.Hour, MaxBytesPerConn: 1_000_000_000}},
		},
		{
			name: "limits: missing or zero falls back to defaults",
			caps: []string{`[{"limits":{"max_conns":0,"max_conn_duration":"30m"}},` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			pol:  Policy{DefaultLimits: Limits{MaxConns: 10, MaxConnDuration: time.Hour, MaxBytesPerConn: 5 << 30}},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), Limits: Limits{MaxConns: 10, MaxConnDuration: 30 * time.Minute, MaxBytesPerConn: 5 << 30}},
		},
		{
			name: "limits: none anywhere means unlimited",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public")},
		},
		{
			name: "limits from a grant object for another listener still apply",
			caps: []string{`[{"limits":{"max_conns":2},"backends":{"pg-other":{"pg":{"databases":{"*":{"permissions":["admin"]}}}}}},` +
				pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), Limits: Limits{MaxConns: 2}},
		},
		{
			name: "preset request lowers, marks limited and drops sql without needing allow_raw_sql",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["admin"],"sql":["GRANT x"]}}`) + `]`},
			req:  Request{Listener: "pg-main", Database: "appdb", MaxPreset: Readonly},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), PresetLimited: true},
		},
		{
			name: "database named * matches its entry once",
			caps: []string{`[` + pgGrant(`{"*":{"permissions":["readonly"],"sql":["A"]}}`) + `]`},
			req:  Request{Listener: "pg-main", Database: "*"},
			pol:  Policy{AllowRawSQL: true},
			want: Effective{Preset: Readonly, Schemas: SchemaGrants(Readonly, "public"), SQL: []string{"A"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			if r == (Request{}) {
				r = req
			}
			got, err := Decide(alice(tt.caps...), r, tt.pol)
			if err != nil {
				t.Fatalf("Decide: got error %v, want %+v", err, tt.want)
			}
			want := tt.want
			want.Listener, want.Database = r.Listener, r.Database
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Decide:\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecideDenials(t *testing.T) {
	req := Request{Listener: "pg-main", Database: "appdb"}
	tests := []struct {
		name       string
		caps       []string
		req        Request
		pol        Policy
		want       Reason
		wantDetail string // substring of Detail
	}{
		{name: "no capability", caps: nil, want: NoGrant},
		{name: "null capability", caps: []string{`null`}, want: NoGrant},
		{name: "empty array", caps: []string{`[]`}, want: NoGrant},
		{name: "no listener", caps: []string{`[{"backends":{"pg-other":{"pg":{"databases":{"*":{"permissions":["admin"]}}}}}}]`}, want: NoListener},
		{name: "limits only", caps: []string{`[{"limits":{"max_conns":1}}]`}, want: NoListener},
		{name: "listener without pg", caps: []string{`[{"backends":{"pg-main":{}}}]`}, want: NoListener},
		{name: "listener with an unknown protocol", caps: []string{`[{"backends":{"pg-main":{"mysql":{}}}}]`}, want: BadGrant, wantDetail: `backends["pg-main"]: unknown field "mysql"`},
		{name: "no database", caps: []string{`[` + pgGrant(`{"billing":{"permissions":["admin"]}}`) + `]`}, want: NoDatabase},
		{name: "no databases at all", caps: []string{`[` + pgGrant(`{}`) + `]`}, want: NoDatabase},
		{name: "empty database requested", caps: []string{`[` + pgGrant(`{"*":{"permissions":["admin"]}}`) + `]`}, req: Request{Listener: "pg-main"}, want: NoDatabase},
		{name: "wildcard never reaches the admin database", caps: []string{`[` + pgGrant(`{"*":{"permissions":["admin"]}}`) + `]`}, req: Request{Listener: "pg-main", Database: "postgres"}, pol: Policy{AdminDatabase: "postgres"}, want: NoDatabase},
		{name: "empty permissions", caps: []string{`[` + pgGrant(`{"appdb":{"permissions":[],"schemas":["app"]}}`) + `]`}, want: NoPermissions},
		{name: "missing permissions", caps: []string{`[` + pgGrant(`{"appdb":{}}`) + `]`}, want: NoPermissions},
		{name: "malformed JSON", caps: []string{`[{"backends":`}, want: BadGrant, wantDetail: "not valid JSON"},
		{name: "unknown preset", caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["superuser"]}}`) + `]`}, want: BadGrant, wantDetail: `unknown preset "superuser"`},
		{name: "unknown preset in another database", caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]},"other":{"permissions":["reader"]}}`) + `]`}, want: BadGrant, wantDetail: `databases["other"].permissions[0]: unknown preset "reader"`},
		{name: "malformed limit", caps: []string{`[{"limits":{"max_conn_duration":"forever"}},` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`}, want: BadGrant, wantDetail: "limits.max_conn_duration"},
		{name: "raw sql not allowed", caps: []string{`[` + pgGrant(`{"*":{"permissions":["readonly"],"sql":["GRANT x"]}}`) + `]`}, want: RawSQLNotAllowed},
		{name: "bad preset request", caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`}, req: Request{Listener: "pg-main", Database: "appdb", MaxPreset: "root"}, want: BadPresetRequest, wantDetail: `"root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			if r == (Request{}) {
				r = req
			}
			got, err := Decide(alice(tt.caps...), r, tt.pol)
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("Decide = %+v, %v; want a *Denial with reason %v", got, err, tt.want)
			}
			if d.Reason != tt.want {
				t.Errorf("got reason %v, want %v (%v)", d.Reason, tt.want, err)
			}
			if !strings.Contains(d.Detail, tt.wantDetail) {
				t.Errorf("got detail %q, want it to contain %q", d.Detail, tt.wantDetail)
			}
			if !reflect.DeepEqual(got, Effective{}) {
				t.Errorf("got Effective %+v with a denial, want the zero value", got)
			}
		})
	}
}

// TestLimitDBPermissionsToPostgresPreset checks that a per-connection preset
// request can only lower the granted preset, never raise it.
func TestLimitDBPermissionsToPostgresPreset(t *testing.T) {
	tests := []struct {
		granted, requested, want Preset
	}{
		{Readonly, Readonly, Readonly},
		{Readonly, Readwrite, Readonly},
		{Readonly, Admin, Readonly},
		{Readwrite, Readonly, Readonly},
		{Readwrite, Readwrite, Readwrite},
		{Readwrite, Admin, Readwrite},
		{Admin, Readonly, Readonly},
		{Admin, Readwrite, Readwrite},
		{Admin, Admin, Admin},
	}
	for _, tt := range tests {
		t.Run(string(tt.granted)+"/"+string(tt.requested), func(t *testing.T) {
			caps := `[` + pgGrant(`{"appdb":{"permissions":["`+string(tt.granted)+`"],"sql":["GRANT x"]}}`) + `]`
			req := Request{Listener: "pg-main", Database: "appdb", MaxPreset: tt.requested}
			got, err := Decide(alice(caps), req, Policy{})
			if err != nil {
				t.Fatalf("Decide: got error %v, want preset %s", err, tt.want)
			}
			if got.Preset != tt.want {
				t.Errorf("granted %s, requested %s: got preset %s, want %s", tt.granted, tt.requested, got.Preset, tt.want)
			}
			if !got.PresetLimited {
				t.Errorf("got PresetLimited false, want true")
			}
			if len(got.SQL) != 0 {
				t.Errorf("got SQL %q, want none for a preset-limited connection", got.SQL)
			}
		})
	}
}

// TestDecideNoPresetRequestKeepsGrant checks that without a request the
// granted preset and SQL are kept and PresetLimited is false.
func TestDecideNoPresetRequestKeepsGrant(t *testing.T) {
	caps := `[` + pgGrant(`{"appdb":{"permissions":["admin"],"sql":["GRANT x"]}}`) + `]`
	got, err := Decide(alice(caps), Request{Listener: "pg-main", Database: "appdb"}, Policy{AllowRawSQL: true})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if got.Preset != Admin || got.PresetLimited || !reflect.DeepEqual(got.SQL, []string{"GRANT x"}) {
		t.Errorf("got %+v, want preset admin, not limited, SQL [GRANT x]", got)
	}
}

func TestDenialMessages(t *testing.T) {
	user := identity.Peer{LoginName: "alice@example.com", MachineName: "laptop"}
	tagged := identity.Peer{LoginName: identity.TaggedLogin, MachineName: "runner", Tags: []string{"tag:ci", "tag:deploy"}}
	sqlGrant := `[` + pgGrant(`{"billing":{"permissions":["readonly"],"sql":["GRANT SELECT ON secret TO {{.Role}}"]}}`) + `]`
	badGrant := `[` + pgGrant(`{"billing":{"permissions":["readonly","{\"evil\":1}"]}}`) + `]`
	tests := []struct {
		name       string
		peer       identity.Peer
		caps       []string
		want       Reason
		wantError  []string
		wantClient []string
	}{
		{
			name:       "no grant",
			peer:       user,
			want:       NoGrant,
			wantError:  []string{"alice@example.com (laptop)", `"billing"`, `"pg-main"`, "no Waypoint grant"},
			wantClient: []string{"alice@example.com (laptop)", `"billing"`, `"pg-main"`, "ask your tailnet admin"},
		},
		{
			name:       "no listener",
			peer:       user,
			caps:       []string{`[{"backends":{"other":{"pg":{}}}}]`},
			want:       NoListener,
			wantError:  []string{"alice@example.com (laptop)", `no grant for listener "pg-main"`, `"billing"`},
			wantClient: []string{"alice@example.com", `add listener "pg-main"`, `"billing"`},
		},
		{
			name:       "no database",
			peer:       user,
			caps:       []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			want:       NoDatabase,
			wantError:  []string{`alice@example.com (laptop) has no grant for database "billing" on listener "pg-main"`},
			wantClient: []string{"alice@example.com", `add database "billing"`, `"pg-main"`},
		},
		{
			name:       "bad grant: detail in the log, not for the client",
			peer:       user,
			caps:       []string{badGrant},
			want:       BadGrant,
			wantError:  []string{"alice@example.com (laptop)", `"billing"`, `"pg-main"`, "malformed", "permissions[1]", "unknown preset"},
			wantClient: []string{"alice@example.com", `"billing"`, `"pg-main"`, "malformed", "ask your tailnet admin to fix it"},
		},
		{
			name:       "raw sql",
			peer:       user,
			caps:       []string{sqlGrant},
			want:       RawSQLNotAllowed,
			wantError:  []string{"alice@example.com (laptop)", `"billing"`, `"pg-main"`, "allow_raw_sql"},
			wantClient: []string{"alice@example.com", "allow_raw_sql", "waypoint_presets="},
		},
		{
			name:       "no permissions",
			peer:       user,
			caps:       []string{`[` + pgGrant(`{"billing":{}}`) + `]`},
			want:       NoPermissions,
			wantError:  []string{"alice@example.com (laptop)", `"billing"`, `"pg-main"`, "no permissions"},
			wantClient: []string{`"permissions"`, "readonly, readwrite or admin"},
		},
		{
			name:       "tagged node named by its tags",
			peer:       tagged,
			caps:       []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`},
			want:       NoDatabase,
			wantError:  []string{"tagged node tag:ci,tag:deploy (runner)", `"billing"`, `"pg-main"`},
			wantClient: []string{"tagged node tag:ci,tag:deploy (runner)", `"billing"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := tt.peer
			peer.Caps = raws(tt.caps...)
			_, err := Decide(peer, Request{Listener: "pg-main", Database: "billing"}, Policy{})
			var d *Denial
			if !errors.As(err, &d) || d.Reason != tt.want {
				t.Fatalf("Decide: got error %v, want a denial with reason %v", err, tt.want)
			}
			for _, want := range tt.wantError {
				if !strings.Contains(d.Error(), want) {
					t.Errorf("Error() = %q, want it to contain %q", d.Error(), want)
				}
			}
			msg := d.ClientMessage()
			for _, want := range tt.wantClient {
				if !strings.Contains(msg, want) {
					t.Errorf("ClientMessage() = %q, want it to contain %q", msg, want)
				}
			}
			for _, leak := range []string{"{", "GRANT", "evil", "tagged-devices"} {
				if strings.Contains(msg, leak) {
					t.Errorf("ClientMessage() = %q, must not contain %q", msg, leak)
				}
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := NoGrant; r <= BadPresetRequest; r++ {
		s := r.String()
		if strings.HasPrefix(s, "reason(") || seen[s] {
			t.Errorf("Reason(%d).String() = %q, want a distinct name", int(r), s)
		}
		seen[s] = true
	}
	if got := Reason(0).String(); got != "reason(0)" {
		t.Errorf("Reason(0).String() = %q, want %q", got, "reason(0)")
	}
}

func TestDecideTaggedPeer(t *testing.T) {
	peer := identity.Peer{
		LoginName:   identity.TaggedLogin,
		MachineName: "runner",
		Tags:        []string{"tag:ci"},
		Caps:        raws(`[` + pgGrant(`{"*":{"permissions":["readwrite"]}}`) + `]`),
	}
	got, err := Decide(peer, Request{Listener: "pg-main", Database: "appdb"}, Policy{})
	if err != nil {
		t.Fatalf("Decide for a tagged peer: got error %v, want a grant", err)
	}
	if got.Preset != Readwrite {
		t.Errorf("got preset %s, want %s", got.Preset, Readwrite)
	}
}
