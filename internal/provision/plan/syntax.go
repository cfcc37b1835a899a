package plan

import (
	"fmt"
	"strings"
)

// Syntax renders the statements of a plan whose SQL differs between the
// servers Waypoint provisions: PostgreSQL and CockroachDB. It is pure
// string rendering; the executor's dialect (which also locks, looks up and
// cleans up) embeds the Syntax of its server.
type Syntax interface {
	// Preamble returns the statements that open every provisioning
	// transaction, after BEGIN.
	Preamble() []string
	// LoginAttributes returns the options of CREATE ROLE (create) or
	// ALTER ROLE that make a role a plain login role.
	LoginAttributes(create bool) string
	// SetRecord returns the statement that stores rec as role's owner
	// record.
	SetRecord(role string, rec Record) string
	// JoinAdmin returns the statements that make the admin a member of
	// role, so that it can grant on the objects role creates and clean
	// role up; none where the server does not need that.
	JoinAdmin(role string) []string
	// ResetDirect returns the statements that revoke every privilege role
	// holds directly. listed are revokes the executor listed from the
	// server beforehand (Plan.Revoke), for a server that cannot find them
	// in SQL; a Syntax that can ignores them.
	ResetDirect(role string, listed []string) []string
}

// PostgreSQL is the Syntax of PostgreSQL: owner records are role comments.
type PostgreSQL struct{}

// Preamble turns standard_conforming_strings on for the transaction.
func (PostgreSQL) Preamble() []string {
	return []string{"SET LOCAL standard_conforming_strings = on"}
}

// LoginAttributes spells out every attribute on CREATE, so a role never
// inherits a server's defaults, and restores LOGIN INHERIT on ALTER.
func (PostgreSQL) LoginAttributes(create bool) string {
	if create {
		return "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
	}
	return "LOGIN INHERIT"
}

// SetRecord comments the role.
func (PostgreSQL) SetRecord(role string, rec Record) string {
	return fmt.Sprintf("COMMENT ON ROLE %s IS %s", QuoteIdent(role), QuoteLiteral(rec.String()))
}

// JoinAdmin grants role to the admin. Without it every later GRANT ... ON
// ALL TABLES IN SCHEMA fails on objects role created (admin preset), for
// every user of that schema; Cleanup needs the membership too.
func (PostgreSQL) JoinAdmin(role string) []string {
	return []string{fmt.Sprintf("GRANT %s TO CURRENT_USER", QuoteIdent(role))}
}

// ResetDirect is one DO block (ResetDirectSQL).
func (PostgreSQL) ResetDirect(role string, _ []string) []string {
	return []string{ResetDirectSQL(role)}
}

// CockroachDB is the Syntax of CockroachDB, which has no COMMENT ON ROLE,
// no INHERIT or SUPERUSER role options (roles always inherit) and no DO
// blocks.
type CockroachDB struct {
	// Records is the owner-record table, qualified with its database and
	// quoted, written through a cross-database reference.
	Records string
}

// Preamble is empty.
func (CockroachDB) Preamble() []string { return nil }

// LoginAttributes leaves out the options CockroachDB does not know.
func (CockroachDB) LoginAttributes(create bool) string {
	if create {
		return "LOGIN NOCREATEDB NOCREATEROLE"
	}
	return "LOGIN"
}

// SetRecord upserts a row of the record table.
func (c CockroachDB) SetRecord(role string, rec Record) string {
	return fmt.Sprintf("UPSERT INTO %s (role, record) VALUES (%s, %s)",
		c.Records, QuoteLiteral(role), QuoteLiteral(rec.String()))
}

// JoinAdmin is empty: the admin needs no membership on CockroachDB.
func (CockroachDB) JoinAdmin(string) []string { return nil }

// ResetDirect returns the revokes the executor listed from SHOW GRANTS
// (see CockroachRevokeSQL).
func (CockroachDB) ResetDirect(_ string, listed []string) []string { return listed }

// CockroachRevokeSQL is the REVOKE ALL for one row (object type, database,
// schema, object) of CockroachDB's SHOW GRANTS FOR role, or "" for an
// object type it does not know.
func CockroachRevokeSQL(kind, db, schema, object, role string) string {
	target := ""
	switch strings.ToLower(kind) {
	case "database":
		target = "DATABASE " + QuoteIdent(db)
	case "schema":
		target = "SCHEMA " + QuoteIdent(db) + "." + QuoteIdent(schema)
	case "table", "view", "materialized view":
		target = "TABLE " + QuoteIdent(db) + "." + QuoteIdent(schema) + "." + QuoteIdent(object)
	case "sequence":
		target = "SEQUENCE " + QuoteIdent(db) + "." + QuoteIdent(schema) + "." + QuoteIdent(object)
	case "type":
		target = "TYPE " + QuoteIdent(db) + "." + QuoteIdent(schema) + "." + QuoteIdent(object)
	case "function", "routine":
		target = "FUNCTION " + QuoteIdent(db) + "." + QuoteIdent(schema) + "." + object // object carries its argument list
	default:
		return ""
	}
	return "REVOKE ALL ON " + target + " FROM " + QuoteIdent(role)
}
