package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// TestPlanSteps is longer than 60 lines because its table spells out every
// statement of each plan in both syntaxes.
func TestPlanSteps(t *testing.T) {
	rec := Record{Waypoint: 1, Kind: RecordUser, Subject: "a@x", Database: "db"}
	grec := Record{Waypoint: 1, Kind: RecordGroup, Database: "db", Schema: "public", Preset: "readonly"}
	group := GroupPlan{Name: "g", Schema: "public", Preset: authz.Readonly, Create: true, Record: grec}
	grants := []string{
		`GRANT USAGE ON SCHEMA "public" TO "g"`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "g"`,
		`GRANT SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "g"`,
	}
	crdb := CockroachDB{Records: `"admin".waypoint.role_records`}
	create := Plan{Role: "r", Database: "db", CreateRole: true, Record: rec, AdminJoin: true, Password: "v", ValidUntil: "2030-01-01 00:00:00+00",
		Groups: []GroupPlan{group}, Join: []string{"g", "wp_users"}, RawSQL: []string{`GRANT SELECT ON t TO "r"`}}
	update := Plan{Role: "r", Database: "db", Record: rec, SetComment: true, Password: "v", ValidUntil: "2030-01-01 00:00:00+00",
		Leave: []string{"old"}, ResetDirect: true, Revoke: []string{`REVOKE ALL ON TABLE "db"."public"."t" FROM "r"`}}
	reconcile := Plan{Role: "r", Database: "db", Record: rec, Fingerprint: []string{"public"}}
	tests := []struct {
		name string
		syn  Syntax
		pl   Plan
		want []string
	}{
		{"PostgreSQL create", PostgreSQL{}, create, slices.Concat([]string{
			"SET LOCAL standard_conforming_strings = on",
			`CREATE ROLE "r" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'v' VALID UNTIL '2030-01-01 00:00:00+00'`,
			`COMMENT ON ROLE "r" IS '` + rec.String() + `'`,
			`GRANT "r" TO CURRENT_USER`,
			`CREATE ROLE "g" NOLOGIN`,
			`COMMENT ON ROLE "g" IS '` + grec.String() + `'`,
		}, grants, []string{
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
			`GRANT "g" TO "r"`,
			`GRANT "wp_users" TO "r"`,
			`GRANT SELECT ON t TO "r"`,
		})},
		{"CockroachDB create", crdb, create, slices.Concat([]string{
			`CREATE ROLE "r" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD 'v' VALID UNTIL '2030-01-01 00:00:00+00'`,
			`UPSERT INTO "admin".waypoint.role_records (role, record) VALUES ('r', '` + rec.String() + `')`,
			`CREATE ROLE "g" NOLOGIN`,
			`UPSERT INTO "admin".waypoint.role_records (role, record) VALUES ('g', '` + grec.String() + `')`,
		}, grants, []string{
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
			`GRANT "g" TO "r"`,
			`GRANT "wp_users" TO "r"`,
			`GRANT SELECT ON t TO "r"`,
		})},
		{"PostgreSQL update with reset", PostgreSQL{}, update, []string{
			"SET LOCAL standard_conforming_strings = on",
			`ALTER ROLE "r" WITH LOGIN INHERIT PASSWORD 'v' VALID UNTIL '2030-01-01 00:00:00+00'`,
			`COMMENT ON ROLE "r" IS '` + rec.String() + `'`,
			ResetDirectSQL("r"),
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
			`REVOKE "old" FROM "r"`,
		}},
		{"CockroachDB update with reset", crdb, update, []string{
			`ALTER ROLE "r" WITH LOGIN PASSWORD 'v' VALID UNTIL '2030-01-01 00:00:00+00'`,
			`UPSERT INTO "admin".waypoint.role_records (role, record) VALUES ('r', '` + rec.String() + `')`,
			`REVOKE ALL ON TABLE "db"."public"."t" FROM "r"`,
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
			`REVOKE "old" FROM "r"`,
		}},
		{"PostgreSQL reconcile keeps the password", PostgreSQL{}, reconcile, []string{
			"SET LOCAL standard_conforming_strings = on",
			objectsFingerprintStep([]string{"public"}),
			`ALTER ROLE "r" WITH LOGIN INHERIT`,
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
		}},
		{"CockroachDB reconcile keeps the password", crdb, Plan{Role: "r", Database: "db", Record: rec}, []string{
			`ALTER ROLE "r" WITH LOGIN`,
			`GRANT CONNECT ON DATABASE "db" TO "r"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := tt.pl.Steps(tt.syn)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(steps))
			for i, s := range steps {
				got[i] = s.SQL
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestPlanSteps_Annotations: each statement says what it is about, so that
// a failure is reported against the right object.
func TestPlanSteps_Annotations(t *testing.T) {
	pl := Plan{Role: "r", Database: "db", Fingerprint: []string{"s"}, Record: Record{Waypoint: 1, Kind: RecordUser},
		Groups: []GroupPlan{{Name: "g", Schema: "s", Preset: authz.Admin}}, RawSQL: []string{"GRANT a", "GRANT b"}}
	steps, err := pl.Steps(PostgreSQL{})
	if err != nil {
		t.Fatal(err)
	}
	type note struct {
		fp     bool
		schema string
		preset authz.Preset
		raw    int
	}
	want := []note{
		{},                                 // SET LOCAL
		{fp: true},                         // objects fingerprint
		{},                                 // ALTER ROLE
		{schema: "s", preset: authz.Admin}, // GRANT ... ON SCHEMA
		{schema: "s", preset: authz.Admin}, // ... ON ALL TABLES
		{schema: "s", preset: authz.Admin}, // ... ON ALL SEQUENCES
		{},                                 // GRANT CONNECT
		{raw: 1},
		{raw: 2},
	}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d", len(steps), len(want))
	}
	for i, s := range steps {
		if got := (note{s.FP, s.Schema, s.Preset, s.Raw}); got != want[i] {
			t.Errorf("step %d (%.40s): got %+v, want %+v", i, s.SQL, got, want[i])
		}
	}
}

func TestPlanSteps_UnknownPreset(t *testing.T) {
	pl := Plan{Role: "r", Database: "db", Groups: []GroupPlan{{Name: "g", Schema: "s", Preset: "nope"}}}
	if _, err := pl.Steps(PostgreSQL{}); KindOf(err) != BadSQL {
		t.Errorf("got %v, want BadSQL", err)
	}
}

func TestCockroachRevokeSQL(t *testing.T) {
	tests := []struct {
		kind, schema, object string
		want                 string
	}{
		{"database", "", "", `REVOKE ALL ON DATABASE "appdb" FROM "r"`},
		{"schema", "public", "", `REVOKE ALL ON SCHEMA "appdb"."public" FROM "r"`},
		{"table", "public", "t", `REVOKE ALL ON TABLE "appdb"."public"."t" FROM "r"`},
		{"view", "public", "v", `REVOKE ALL ON TABLE "appdb"."public"."v" FROM "r"`},
		{"materialized view", "public", "m", `REVOKE ALL ON TABLE "appdb"."public"."m" FROM "r"`},
		{"Sequence", "public", "s", `REVOKE ALL ON SEQUENCE "appdb"."public"."s" FROM "r"`},
		{"type", "public", "ty", `REVOKE ALL ON TYPE "appdb"."public"."ty" FROM "r"`},
		{"function", "public", "f(INT8)", `REVOKE ALL ON FUNCTION "appdb"."public".f(INT8) FROM "r"`},
		{"routine", "public", "p()", `REVOKE ALL ON FUNCTION "appdb"."public".p() FROM "r"`},
		{"external connection", "", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := CockroachRevokeSQL(tt.kind, "appdb", tt.schema, tt.object, "r"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
