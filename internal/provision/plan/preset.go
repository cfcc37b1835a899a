package plan

import (
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// privileges is what one preset grants on each schema.
type privileges struct {
	schema    []string
	tables    []string
	sequences []string
}

var presetPrivileges = map[authz.Preset]privileges{
	authz.Readonly: {
		schema:    []string{"USAGE"},
		tables:    []string{"SELECT"},
		sequences: []string{"SELECT"},
	},
	authz.Readwrite: {
		schema:    []string{"USAGE"},
		tables:    []string{"SELECT", "INSERT", "UPDATE", "DELETE"},
		sequences: []string{"SELECT", "USAGE"},
	},
	authz.Admin: {
		schema:    []string{"USAGE", "CREATE"},
		tables:    []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"},
		sequences: []string{"SELECT", "USAGE", "UPDATE"},
	},
}

func privilegesOf(p authz.Preset) (privileges, error) {
	privs, ok := presetPrivileges[p]
	if !ok {
		return privileges{}, &Error{Kind: BadSQL, Object: "preset " + string(p), Msg: "unknown preset"}
	}
	return privs, nil
}

// grantStatements are the statements that give group the preset's
// privileges on schema. They are idempotent, and re-running them reaches
// tables created since the last run. The admin preset uses ALL PRIVILEGES on
// tables and sequences.
func grantStatements(group, schema string, preset authz.Preset) ([]string, error) {
	privs, err := privilegesOf(preset)
	if err != nil {
		return nil, err
	}
	g, s := QuoteIdent(group), QuoteIdent(schema)
	tables, sequences := strings.Join(privs.tables, ", "), strings.Join(privs.sequences, ", ")
	if preset == authz.Admin {
		tables, sequences = "ALL PRIVILEGES", "ALL PRIVILEGES"
	}
	return []string{
		fmt.Sprintf("GRANT %s ON SCHEMA %s TO %s", strings.Join(privs.schema, ", "), s, g),
		fmt.Sprintf("GRANT %s ON ALL TABLES IN SCHEMA %s TO %s", tables, s, g),
		fmt.Sprintf("GRANT %s ON ALL SEQUENCES IN SCHEMA %s TO %s", sequences, s, g),
	}, nil
}

// MissingQuery returns a query listing what a role lacks of preset's
// privileges in schema $2: rows (kind, schema, name) with kind "schema",
// "table" or "sequence", tables and sequences first. $1 is the role to check ("" = current_user). With
// grantOption it checks the right to grant (WITH GRANT OPTION, which owners
// have implicitly), which is what the admin needs.
func MissingQuery(preset authz.Preset, grantOption bool) (string, error) {
	privs, err := privilegesOf(preset)
	if err != nil {
		return "", err
	}
	return `WITH who AS (SELECT coalesce(nullif($1::text, ''), current_user)::name AS r)
SELECT kind, nsp, name FROM (
SELECT 'schema' AS kind, n.nspname::text AS nsp, ''::text AS name FROM pg_namespace n, who
 WHERE n.nspname = $2 AND NOT (` + allOf("has_schema_privilege(who.r, n.oid, '%s')", privs.schema, grantOption) + `)
UNION ALL
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname::text, c.relname::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, who
 WHERE n.nspname = $2 AND (
   (c.relkind = 'S' AND NOT (` + allOf("has_sequence_privilege(who.r, c.oid, '%s')", privs.sequences, grantOption) + `))
   OR (c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT (` + allOf("has_table_privilege(who.r, c.oid, '%s')", privs.tables, grantOption) + `)))
) x
ORDER BY kind = 'schema', kind = 'sequence', nsp, name`, nil
}

// allOf joins one check per privilege with AND (a has_*_privilege call with
// a list means "any of", not "all of").
func allOf(format string, privs []string, grantOption bool) string {
	parts := make([]string, len(privs))
	for i, p := range privs {
		if grantOption {
			p += " WITH GRANT OPTION"
		}
		parts[i] = fmt.Sprintf(format, p)
	}
	return strings.Join(parts, " AND ")
}
