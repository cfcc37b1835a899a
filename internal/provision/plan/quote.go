package plan

import (
	"fmt"
	"strings"
	"time"
)

// QuoteIdent quotes s as an SQL identifier ("a""b"), dropping NUL bytes,
// exactly as pgx.Identifier.Sanitize does.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, "\x00", ""), `"`, `""`) + `"`
}

// QuoteQualified quotes schema.name as two identifiers.
func QuoteQualified(schema, name string) string {
	return QuoteIdent(schema) + "." + QuoteIdent(name)
}

// QuoteLiteral quotes s as an SQL string literal the way libpq's
// PQescapeLiteral does: quotes are doubled, and a string containing a
// backslash is written as E'...' with backslashes doubled, so the result
// means s whatever standard_conforming_strings is.
func QuoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	if !strings.Contains(s, `\`) {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "E'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// doBlock wraps a PL/pgSQL body in DO with a dollar-quote tag that does not
// occur in body.
func doBlock(body string) string {
	tag := "$wp$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$wp%d$", i)
	}
	return "DO " + tag + "\n" + body + "\n" + tag
}

// TimestampLiteral formats t in UTC as the text of a timestamptz literal,
// as VALID UNTIL takes it.
func TimestampLiteral(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}
