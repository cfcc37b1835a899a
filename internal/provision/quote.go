package provision

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// quoteIdent quotes s as an SQL identifier ("a""b").
func quoteIdent(s string) string {
	return pgx.Identifier{s}.Sanitize()
}

// quoteQualified quotes schema.name as two identifiers.
func quoteQualified(schema, name string) string {
	return pgx.Identifier{schema, name}.Sanitize()
}

// quoteLiteral quotes s as an SQL string literal the way libpq's
// PQescapeLiteral does: quotes are doubled, and a string containing a
// backslash is written as E'...' with backslashes doubled, so the result
// means s whatever standard_conforming_strings is.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	if !strings.Contains(s, `\`) {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "E'" + strings.ReplaceAll(s, "'", "''") + "'"
}
