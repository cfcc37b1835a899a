package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// dbLockKey is the transaction-level advisory lock every provisioning and
// cleanup transaction takes in the target database first. Concurrent GRANTs
// that touch the same catalog row (the same table, or the database for
// CONNECT) otherwise fail with "tuple concurrently updated", and two
// instances could race to create the same group. Advisory lock keys are
// per database, so this serializes per database, across instances.
var dbLockKey = lockKey("\x00database-grants")

// plan is everything Ensure changes in one database, decided from a lookup.
// Its statements run in one transaction on a connection to Database.
type plan struct {
	Role        string
	Database    string
	CreateRole  bool
	Record      ownerRecord // the role's owner record
	SetComment  bool        // write Record (new role, or SQL hash changed)
	AdminJoin   bool        // GRANT the role TO the admin (see steps)
	Password    string      // the verifier (never the plaintext); "<redacted>" in Explain; "" keeps the password
	ValidUntil  string      // timestamp literal text, UTC
	Groups      []groupPlan // desired groups, sorted by name
	Join        []string    // groups to grant membership in
	Leave       []string    // Waypoint groups to revoke membership in
	ResetDirect bool        // revoke direct privileges before RawSQL (the SQL changed)
	RawSQL      []string    // validated statements

	// Fingerprint, when not nil, are the schemas whose objects fingerprint
	// (objectsFingerprintSQL) the transaction reads before its grants;
	// apply stores the result in ObjectsFP.
	Fingerprint []string
	ObjectsFP   string

	// CRDBRecords, when not "", is the CockroachDB owner-record table
	// (database.schema.table, quoted) written instead of role comments;
	// it also selects CockroachDB syntax (see crdb.go).
	CRDBRecords string
}

// groupPlan is one shared group role: its name, schema and preset.
type groupPlan struct {
	Name   string
	Schema string
	Preset authz.Preset
	Create bool
	Record ownerRecord
}

// step is one statement of a plan with what it is about, so a failure can be
// reported against the right object.
type step struct {
	SQL    string
	FP     bool         // the objects fingerprint query (one row, one column)
	Schema string       // for group grants: the schema
	Preset authz.Preset // for group grants: the preset
	Raw    int          // for raw SQL: index+1; 0 otherwise
}

// steps returns the plan's statements in order (without BEGIN/COMMIT).
func (pl *plan) steps() ([]step, error) {
	crdb := pl.CRDBRecords != ""
	var st []step
	add := func(sql string) { st = append(st, step{SQL: sql}) }
	if !crdb {
		add(fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", dbLockKey))
		add("SET LOCAL standard_conforming_strings = on")
		if pl.Fingerprint != nil {
			st = append(st, step{SQL: objectsFingerprintStep(pl.Fingerprint), FP: true})
		}
	}
	role := quoteIdent(pl.Role)
	createAttrs, alterAttrs := "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS", "LOGIN INHERIT"
	if crdb {
		createAttrs, alterAttrs = "LOGIN NOCREATEDB NOCREATEROLE", "LOGIN"
	}
	if pl.CreateRole {
		add(fmt.Sprintf("CREATE ROLE %s WITH %s PASSWORD %s VALID UNTIL %s",
			role, createAttrs, quoteLiteral(pl.Password), quoteLiteral(pl.ValidUntil)))
	} else if pl.Password == "" {
		add(fmt.Sprintf("ALTER ROLE %s WITH %s VALID UNTIL %s", role, alterAttrs, quoteLiteral(pl.ValidUntil)))
	} else {
		add(fmt.Sprintf("ALTER ROLE %s WITH %s PASSWORD %s VALID UNTIL %s",
			role, alterAttrs, quoteLiteral(pl.Password), quoteLiteral(pl.ValidUntil)))
	}
	if pl.SetComment || pl.CreateRole {
		add(pl.recordSQL(pl.Role, pl.Record))
	}
	if pl.AdminJoin && !crdb {
		// The admin becomes a member of the role so that it can grant on
		// objects the role creates (admin preset): otherwise every later
		// GRANT ... ON ALL TABLES IN SCHEMA fails on them, for every user
		// of that schema. Cleanup needs the membership too.
		add(fmt.Sprintf("GRANT %s TO CURRENT_USER", role))
	}
	for _, g := range pl.Groups {
		if g.Create {
			add(fmt.Sprintf("CREATE ROLE %s NOLOGIN", quoteIdent(g.Name)))
			add(pl.recordSQL(g.Name, g.Record))
		}
		grants, err := grantStatements(g.Name, g.Schema, g.Preset)
		if err != nil {
			return nil, err
		}
		for _, sql := range grants {
			st = append(st, step{SQL: sql, Schema: g.Schema, Preset: g.Preset})
		}
	}
	add(fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", quoteIdent(pl.Database), role))
	for _, g := range pl.Join {
		add(fmt.Sprintf("GRANT %s TO %s", quoteIdent(g), role))
	}
	for _, g := range pl.Leave {
		add(fmt.Sprintf("REVOKE %s FROM %s", quoteIdent(g), role))
	}
	if pl.ResetDirect && !crdb {
		add(resetDirectSQL(pl.Role))
	}
	for i, sql := range pl.RawSQL {
		st = append(st, step{SQL: sql, Raw: i + 1})
	}
	return st, nil
}

// recordSQL writes role's owner record: a role comment on PostgreSQL, a row
// of the record table on CockroachDB (which has no COMMENT ON ROLE).
func (pl *plan) recordSQL(role string, rec ownerRecord) string {
	if pl.CRDBRecords != "" {
		return fmt.Sprintf("UPSERT INTO %s (role, record) VALUES (%s, %s)",
			pl.CRDBRecords, quoteLiteral(role), quoteLiteral(rec.String()))
	}
	return fmt.Sprintf("COMMENT ON ROLE %s IS %s", quoteIdent(role), quoteLiteral(rec.String()))
}

// resetDirectSQL revokes every privilege the admin granted directly to role
// on tables, sequences and schemas of the current database, so that re-running
// changed raw SQL leaves exactly the new privileges (all in the same
// transaction). Objects the role owns are left alone. Privileges on
// functions and default privileges are not reset; Cleanup's DROP OWNED
// removes them with the role. role is a generated name ([a-z0-9_]) and is
// also quoted.
func resetDirectSQL(role string) string {
	lit := quoteLiteral(role)
	return `DO $wp$
DECLARE o record;
BEGIN
  FOR o IN SELECT DISTINCT c.oid::regclass AS obj, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE a.grantee = ` + lit + `::regrole AND a.grantor = current_user::regrole AND c.relowner <> ` + lit + `::regrole
  LOOP
    EXECUTE format('REVOKE ALL ON %s %s FROM %I', o.kind, o.obj, ` + lit + `);
  END LOOP;
  FOR o IN SELECT DISTINCT n.nspname AS obj
      FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE a.grantee = ` + lit + `::regrole AND a.grantor = current_user::regrole AND n.nspowner <> ` + lit + `::regrole
  LOOP
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', o.obj, ` + lit + `);
  END LOOP;
END
$wp$`
}

// grantHash fingerprints a request's grant (request.fingerprint) for the
// owner record, so that a warm Ensure can tell from the role's comment alone
// that no instance has reconciled the role to another grant since.
func grantHash(fingerprint string) string {
	sum := sha256.Sum256([]byte(fingerprint))
	return hex.EncodeToString(sum[:8])
}

// sqlHash fingerprints the rendered raw SQL, for the owner record.
func sqlHash(stmts []string) string {
	if len(stmts) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(stmts, "\x00")))
	return hex.EncodeToString(sum[:8])
}
