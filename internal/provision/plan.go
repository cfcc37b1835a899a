package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

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
	ResetDirect bool        // revoke every direct privilege before CONNECT and RawSQL (the SQL changed)
	Revoke      []string    // CockroachDB: the statements that do ResetDirect (see crdbRevokeDirect)
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
		// No new password: VALID UNTIL stays, so that a reconcile never
		// extends a password the role may have set itself.
		add(fmt.Sprintf("ALTER ROLE %s WITH %s", role, alterAttrs))
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
	if pl.ResetDirect {
		// Before CONNECT, which the reset revokes with the rest.
		if crdb {
			for _, sql := range pl.Revoke {
				add(sql)
			}
		} else {
			add(resetDirectSQL(pl.Role))
		}
	}
	add(fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", quoteIdent(pl.Database), role))
	for _, g := range pl.Join {
		add(fmt.Sprintf("GRANT %s TO %s", quoteIdent(g), role))
	}
	for _, g := range pl.Leave {
		add(fmt.Sprintf("REVOKE %s FROM %s", quoteIdent(g), role))
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

// resetDirectSQL revokes every privilege held directly by role that the
// admin can revoke, on every kind of object GRANT reaches (aclCatalogs):
// tables and views (with their columns), sequences, functions and
// procedures, schemas, types and domains, large objects, foreign-data
// wrappers and servers and languages in the current database; databases,
// tablespaces and configuration parameters cluster-wide; and default
// privileges that name the role. Privileges the admin can revoke are those
// it granted or that a role it is a member of granted (it then acts as that
// role). Objects the role owns are left alone (an owner's rights are not
// grants). Run in a provisioning transaction when the raw SQL changed, it
// leaves exactly what the new statements grant; Cleanup runs it to
// deactivate a role. role is a generated name ([a-z0-9_]) and is also
// quoted.
func resetDirectSQL(role string) string {
	var b strings.Builder
	b.WriteString("DECLARE\n  r oid := {role}::regrole;\n  o record;\nBEGIN\n")
	for _, c := range aclCatalogs {
		b.WriteString(c.loop())
	}
	b.WriteString(resetParametersAndDefaults)
	b.WriteString("END")
	return doBlock(strings.ReplaceAll(b.String(), "{role}", quoteLiteral(role)))
}

// aclCatalog is one catalog whose rows carry an ACL, and how to name a row
// in REVOKE.
type aclCatalog struct {
	from   string // FROM clause; the row's alias is x
	acl    string // the ACL column of x
	owner  string // the owner column of x
	object string // expression naming the row for format's %s
	kind   string // the REVOKE object keyword
	where  string // extra condition, or ""
}

// aclCatalogs are the catalogs resetDirectSQL walks. Tables are also
// reached through their columns' ACLs: REVOKE ALL ON TABLE revokes column
// privileges too.
var aclCatalogs = []aclCatalog{
	{from: "pg_class x", acl: "x.relacl", owner: "x.relowner", object: "x.oid::regclass::text", kind: "TABLE", where: "x.relkind <> 'S'"},
	{from: "pg_class x JOIN pg_attribute t ON t.attrelid = x.oid", acl: "t.attacl", owner: "x.relowner", object: "x.oid::regclass::text", kind: "TABLE"},
	{from: "pg_class x", acl: "x.relacl", owner: "x.relowner", object: "x.oid::regclass::text", kind: "SEQUENCE", where: "x.relkind = 'S'"},
	{from: "pg_proc x", acl: "x.proacl", owner: "x.proowner", object: "x.oid::regprocedure::text", kind: "ROUTINE"},
	{from: "pg_namespace x", acl: "x.nspacl", owner: "x.nspowner", object: "quote_ident(x.nspname)", kind: "SCHEMA"},
	{from: "pg_type x", acl: "x.typacl", owner: "x.typowner", object: "x.oid::regtype::text", kind: "TYPE"},
	{from: "pg_largeobject_metadata x", acl: "x.lomacl", owner: "x.lomowner", object: "x.oid::text", kind: "LARGE OBJECT"},
	{from: "pg_database x", acl: "x.datacl", owner: "x.datdba", object: "quote_ident(x.datname)", kind: "DATABASE"},
	{from: "pg_tablespace x", acl: "x.spcacl", owner: "x.spcowner", object: "quote_ident(x.spcname)", kind: "TABLESPACE"},
	{from: "pg_foreign_data_wrapper x", acl: "x.fdwacl", owner: "x.fdwowner", object: "quote_ident(x.fdwname)", kind: "FOREIGN DATA WRAPPER"},
	{from: "pg_foreign_server x", acl: "x.srvacl", owner: "x.srvowner", object: "quote_ident(x.srvname)", kind: "FOREIGN SERVER"},
	{from: "pg_language x", acl: "x.lanacl", owner: "x.lanowner", object: "quote_ident(x.lanname)", kind: "LANGUAGE"},
}

// loop is the PL/pgSQL loop that revokes from the role r everything the
// admin can revoke on this catalog's rows it does not own.
func (c aclCatalog) loop() string {
	where := ""
	if c.where != "" {
		where = " AND " + c.where
	}
	return "  FOR o IN SELECT DISTINCT " + c.object + " AS obj FROM " + c.from + ", aclexplode(" + c.acl + ") a\n" +
		"     WHERE " + c.owner + " <> r AND a.grantee = r AND pg_has_role(current_user, a.grantor, 'MEMBER')" + where + "\n" +
		"  LOOP\n    EXECUTE format('REVOKE ALL ON " + c.kind + " %s FROM %I', o.obj, {role});\n  END LOOP;\n"
}

// resetParametersAndDefaults revokes configuration-parameter privileges
// (PostgreSQL 15+, pg_parameter_acl; looked up dynamically so older servers
// skip it) and default privileges that name the role.
const resetParametersAndDefaults = `  IF to_regclass('pg_catalog.pg_parameter_acl') IS NOT NULL THEN
    FOR o IN EXECUTE 'SELECT DISTINCT p.parname AS obj FROM pg_parameter_acl p, aclexplode(p.paracl) a
        WHERE a.grantee = $1 AND pg_has_role(current_user, a.grantor, ''MEMBER'')' USING r
    LOOP
      EXECUTE format('REVOKE ALL ON PARAMETER %s FROM %I', o.obj, {role});
    END LOOP;
  END IF;
  FOR o IN SELECT DISTINCT d.defaclrole::regrole AS owner, d.defaclnamespace::regnamespace AS nsp, d.defaclnamespace AS nspoid,
                  CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                       WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END AS kind
      FROM pg_default_acl d, aclexplode(d.defaclacl) a
     WHERE a.grantee = r AND pg_has_role(current_user, d.defaclrole, 'MEMBER')
  LOOP
    IF o.nspoid = 0 THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %s REVOKE ALL ON %s FROM %I', o.owner, o.kind, {role});
    ELSE
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON %s FROM %I', o.owner, o.nsp, o.kind, {role});
    END IF;
  END LOOP;
`

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
