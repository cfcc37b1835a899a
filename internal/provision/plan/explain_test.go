package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

func TestExplain(t *testing.T) {
	pr := identity.Peer{LoginName: "alice@example.com", MachineName: "laptop", NodeID: "n1"}
	eff := authz.Effective{Database: "appdb", Preset: authz.Readwrite, Schemas: authz.SchemaGrants(authz.Readwrite, "public"),
		SQL: []string{"GRANT INSERT ON public.audit_log TO {{.Role}}"}}
	role, stmts, err := Explain(ExplainOptions{Now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, pr, eff)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(stmts, ";\n")
	if role != "wp_alice_laptop_appdb" {
		t.Errorf("role: got %q", role)
	}
	for _, want := range []string{
		`CREATE ROLE "wp_alice_laptop_appdb" WITH LOGIN INHERIT NOSUPERUSER`, `PASSWORD '<redacted>' VALID UNTIL '2030-01-02 03:04:50+00'`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "wp_g_appdb_public_readwrite"`,
		`GRANT "wp_g_appdb_public_readwrite" TO "wp_alice_laptop_appdb"`,
		`GRANT CONNECT ON DATABASE "appdb" TO "wp_alice_laptop_appdb"`,
		`GRANT INSERT ON public.audit_log TO "wp_alice_laptop_appdb"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statements lack %q:\n%s", want, all)
		}
	}
	if stmts[0] != "BEGIN" || stmts[len(stmts)-1] != "COMMIT" {
		t.Errorf("want BEGIN … COMMIT, got %q … %q", stmts[0], stmts[len(stmts)-1])
	}
	eff.SQL = []string{"DROP TABLE x"}
	if _, _, err := Explain(ExplainOptions{}, pr, eff); KindOf(err) != BadSQL {
		t.Errorf("bad SQL: got %v, want BadSQL", err)
	}
}

func TestExplain_Options(t *testing.T) {
	pr := identity.Peer{LoginName: "alice@example.com", MachineName: "laptop", NodeID: "n1"}
	eff := authz.Effective{Database: "appdb", Preset: authz.Readonly}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		opts      ExplainOptions
		wantRole  string
		wantUntil string
		wantErr   bool
	}{
		{"defaults", ExplainOptions{Now: now}, "wp_alice_laptop_appdb", "2030-01-02 03:04:50+00", false},
		{"prefix", ExplainOptions{Prefix: "corp_", Now: now}, "corp_alice_laptop_appdb", "2030-01-02 03:04:50+00", false},
		{"lifetime", ExplainOptions{PasswordLifetime: time.Hour, Now: now}, "wp_alice_laptop_appdb", "2030-01-02 04:04:05+00", false},
		{"bad prefix", ExplainOptions{Prefix: "pg_", Now: now}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, stmts, err := Explain(tt.opts, pr, eff)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if role != tt.wantRole || !strings.Contains(strings.Join(stmts, "\n"), "VALID UNTIL '"+tt.wantUntil+"'") {
				t.Errorf("got role %q and statements:\n%s\nwant role %q, VALID UNTIL %s", role, strings.Join(stmts, "\n"), tt.wantRole, tt.wantUntil)
			}
		})
	}
}
