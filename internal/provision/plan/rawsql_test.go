package plan

import (
	"errors"
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

const testRole = "wp_alice_laptop_appdb"

func TestValidateSQL(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		ok   bool
	}{
		{"grant table", `GRANT INSERT ON public.audit_log TO "wp_alice_laptop_appdb"`, true},
		{"grant unquoted", `GRANT SELECT ON ALL TABLES IN SCHEMA app TO wp_alice_laptop_appdb`, true},
		{"revoke", `REVOKE DELETE ON public.items FROM "wp_alice_laptop_appdb"`, true},
		{"default privileges", `ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO "wp_alice_laptop_appdb"`, true},
		{"trailing semicolon", `GRANT SELECT ON t TO "wp_alice_laptop_appdb";`, true},
		{"line comment", "GRANT SELECT ON t TO \"wp_alice_laptop_appdb\" -- ; DROP TABLE t", true},
		{"block comment", `GRANT SELECT ON t /* ; DROP TABLE t; */ TO "wp_alice_laptop_appdb"`, true},
		{"stacked", `GRANT SELECT ON t TO "wp_alice_laptop_appdb"; DROP TABLE x`, false},
		{"stacked after comment newline", "GRANT SELECT ON t TO \"wp_alice_laptop_appdb\" --\n; DROP TABLE x", false},
		{"block comment hides nothing", `GRANT SELECT ON t TO "wp_alice_laptop_appdb" /* */; DROP TABLE x`, false},
		{"empty", ``, false},
		{"only comment", `-- nothing`, false},
		{"alter role superuser", `ALTER ROLE "wp_alice_laptop_appdb" SUPERUSER`, false},
		{"copy to program", `COPY (SELECT 1) TO PROGRAM 'rm -rf /'`, false},
		{"do block", `DO $$BEGIN EXECUTE 'ALTER ROLE x SUPERUSER'; END$$`, false},
		{"grant role membership", `GRANT pg_read_server_files TO "wp_alice_laptop_appdb"`, false},
		{"grant to public", `GRANT SELECT ON t TO PUBLIC`, false},
		{"grant to other role", `GRANT SELECT ON t TO mallory`, false},
		{"grant to role and other", `GRANT SELECT ON t TO "wp_alice_laptop_appdb", mallory`, false},
		{"grant to current_user", `GRANT SELECT ON t TO CURRENT_USER`, false},
		{"with grant option", `GRANT SELECT ON t TO "wp_alice_laptop_appdb" WITH GRANT OPTION`, false},
		{"revoke grant option", `REVOKE GRANT OPTION FOR SELECT ON t FROM "wp_alice_laptop_appdb"`, true},
		{"granted by", `GRANT SELECT ON t TO "wp_alice_laptop_appdb" GRANTED BY postgres`, false},
		{"select", `SELECT pg_read_file('/etc/passwd')`, false},
		{"set role", `SET ROLE postgres`, false},
		{"create function", `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, false},
		{"not sql", `GRANT GRANT GRANT`, false},
		{"case-folded name differs", `GRANT SELECT ON t TO "WP_ALICE_LAPTOP_APPDB"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSQL(tt.sql, testRole)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateSQL(%q): got %v, want ok=%v", tt.sql, err, tt.ok)
			}
		})
	}
}

// TestRenderSQL_Quoting renders templates with hostile database and login
// names: the values are quoted before substitution, so the result is still
// one GRANT to the role, or refused.
func TestRenderSQL_Quoting(t *testing.T) {
	hostile := []string{
		`x"; DROP TABLE t; --`, `x'; DROP TABLE t; --`, `a\'b`, `\`, `"`, `'`, `;`, `$$`, `$wp$`,
		"tab\tnew\nline", "zoë 数据库", "\u202eevil", "nul\x00byte", `x" TO mallory, "y`,
	}
	templates := []string{
		"GRANT CONNECT ON DATABASE {{.Database}} TO {{.Role}}",
		"GRANT SELECT ON t TO {{.Role}} -- for {{.User}}",
		"GRANT SELECT ON t TO {{.Role}} /* {{.User}} {{.Database}} */",
	}
	for _, tmpl := range templates {
		for _, h := range hostile {
			sql, err := RenderSQL(tmpl, testRole, h, h)
			if err != nil {
				t.Errorf("RenderSQL(%q, %q): %v", tmpl, h, err)
				continue
			}
			tree, perr := pg_query.Parse(sql)
			verr := ValidateSQL(sql, testRole)
			if verr == nil && (perr != nil || len(tree.GetStmts()) != 1) {
				t.Errorf("accepted %q which is not exactly one statement", sql)
			}
			if strings.Contains(tmpl, "DATABASE") && verr != nil {
				t.Errorf("database name %q broke the statement %q: %v", h, sql, verr)
			}
		}
	}
	// The login as a literal cannot become an identifier or a statement.
	sql, _ := RenderSQL("GRANT SELECT ON {{.User}} TO {{.Role}}", testRole, "db", `x" TO mallory; --`)
	if ValidateSQL(sql, testRole) == nil {
		t.Errorf("accepted %q", sql)
	}
}

func TestRenderSQL_Errors(t *testing.T) {
	tests := []struct{ name, tmpl string }{
		{"unknown field", "{{.Nope}}"},
		{"unterminated action", "{{"},
		{"too long", strings.Repeat("x", maxSQLTemplateLen+1)},
		{"renders too long", strings.Repeat("{{.Role}}", maxSQLTemplateLen/9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RenderSQL(tt.tmpl, testRole, "db", "u"); err == nil {
				t.Errorf("RenderSQL(%.20q): got nil error", tt.tmpl)
			}
		})
	}
}

// TestRenderSQL_OnlySubstitutions: a grant author (or whoever edits the
// policy) cannot make provisioning loop or allocate without bound. Every
// construct but the three substitutions is refused before execution, and
// the output is bounded while it is written.
func TestRenderSQL_OnlySubstitutions(t *testing.T) {
	for _, tmpl := range []string{
		"{{range 1000000000}}{{end}}",
		"{{range 1000000000}}x{{end}}",
		"{{if .Role}}GRANT{{end}}",
		"{{with .Role}}{{.}}{{end}}",
		`{{define "x"}}y{{end}}{{template "x"}}`,
		`{{block "x" .}}y{{end}}`,
		"{{$r := .Role}}{{$r}}",
		"{{.Role | printf \"%s\"}}",
		"{{printf \"%0100000000d\" 1}}",
		"{{.}}",
		"{{.Role.Len}}",
	} {
		t.Run(tmpl, func(t *testing.T) {
			start := time.Now()
			_, err := RenderSQL(tmpl, testRole, "db", "u")
			if err == nil {
				t.Errorf("RenderSQL(%q): got nil error, want refused", tmpl)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("RenderSQL(%q) ran for %v; it must refuse before executing", tmpl, d)
			}
		})
	}
	// The bound applies to what is written, not only to the result.
	w := &boundedWriter{max: 4}
	if _, err := w.Write([]byte("12345")); !errors.Is(err, errTooLong) {
		t.Errorf("boundedWriter: got %v writing 5 bytes with max 4, want errTooLong", err)
	}
}

func TestPrepareSQL_AllValidatedFirst(t *testing.T) {
	_, err := prepareSQL([]string{"GRANT SELECT ON t TO {{.Role}}", "DROP TABLE t"}, testRole, "db", "u")
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != BadSQL || pe.Object != "sql[1]" {
		t.Errorf("got %v, want BadSQL for sql[1]", err)
	}
}

// FuzzValidateSQL checks that no accepted input parses to anything but
// exactly one GRANT, REVOKE or ALTER DEFAULT PRIVILEGES statement for the
// role, including after template rendering with arbitrary names.
func FuzzValidateSQL(f *testing.F) {
	f.Add(`GRANT SELECT ON t TO {{.Role}}`, "appdb", "alice@example.com")
	f.Add(`GRANT SELECT ON t TO {{.Role}}; DROP TABLE t`, `db"; DROP`, `a'b`)
	f.Add(`ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {{.Role}}`, `\`, `\'`)
	f.Add(`REVOKE ALL ON DATABASE {{.Database}} FROM {{.Role}} -- {{.User}}`, "x\ny", "$$")
	f.Fuzz(func(t *testing.T, tmpl, database, user string) {
		sql, err := RenderSQL(tmpl, testRole, database, user)
		if err != nil {
			sql = tmpl
		}
		if ValidateSQL(sql, testRole) != nil {
			return
		}
		tree, err := pg_query.Parse(sql)
		if err != nil || len(tree.GetStmts()) != 1 {
			t.Fatalf("accepted %q: parse %v", sql, err)
		}
		n := tree.GetStmts()[0].GetStmt()
		g := n.GetGrantStmt()
		if ad := n.GetAlterDefaultPrivilegesStmt(); ad != nil {
			g = ad.GetAction()
		}
		if g == nil {
			t.Fatalf("accepted %q of type %s", sql, stmtType(n))
		}
		for _, r := range g.GetGrantees() {
			if r.GetRoleSpec().GetRolename() != testRole {
				t.Fatalf("accepted %q with grantee %v", sql, r)
			}
		}
	})
}
