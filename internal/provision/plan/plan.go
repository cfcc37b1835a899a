package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// Plan is everything Ensure changes in one database, decided from a
// Lookup by Request.Plan. Its statements (Steps) run in one transaction on
// a connection to Database.
type Plan struct {
	Role        string
	Database    string
	CreateRole  bool
	Record      Record      // the role's owner record
	SetComment  bool        // write Record (new role, or SQL hash changed)
	AdminJoin   bool        // make the admin a member of the role (see Syntax.JoinAdmin)
	Password    string      // the verifier (never the plaintext); "<redacted>" in Explain; "" keeps the password
	ValidUntil  string      // timestamp literal text, UTC
	Groups      []GroupPlan // desired groups, sorted by name
	Join        []string    // groups to grant membership in
	Leave       []string    // Waypoint groups to revoke membership in
	ResetDirect bool        // revoke every direct privilege before CONNECT and RawSQL (the SQL changed)
	Revoke      []string    // for a Syntax that cannot revoke in SQL: the revokes the executor listed (see Syntax.ResetDirect)
	RawSQL      []string    // validated statements

	// Fingerprint, when not nil, are the schemas whose objects fingerprint
	// (ObjectsFingerprintSQL, PostgreSQL only) the transaction reads before
	// its grants; the executor stores the result in ObjectsFP.
	Fingerprint []string
	ObjectsFP   string
}

// GroupPlan is one shared group role: its name, schema and preset.
type GroupPlan struct {
	Name   string
	Schema string
	Preset authz.Preset
	Create bool
	Record Record
}

// Step is one statement of a plan with what it is about, so a failure can be
// reported against the right object.
type Step struct {
	SQL    string
	FP     bool         // the objects fingerprint query (one row, one column)
	Schema string       // for group grants: the schema
	Preset authz.Preset // for group grants: the preset
	Raw    int          // for raw SQL: index+1; 0 otherwise
}

// Steps returns the plan's statements in order (without BEGIN/COMMIT), in
// the SQL of syn.
func (pl *Plan) Steps(syn Syntax) ([]Step, error) {
	var st []Step
	add := func(sqls ...string) {
		for _, sql := range sqls {
			st = append(st, Step{SQL: sql})
		}
	}
	add(syn.Preamble()...)
	if pl.Fingerprint != nil {
		st = append(st, Step{SQL: objectsFingerprintStep(pl.Fingerprint), FP: true})
	}
	add(pl.roleStatement(syn))
	if pl.SetComment || pl.CreateRole {
		add(syn.SetRecord(pl.Role, pl.Record))
	}
	if pl.AdminJoin {
		add(syn.JoinAdmin(pl.Role)...)
	}
	for _, g := range pl.Groups {
		if g.Create {
			add(fmt.Sprintf("CREATE ROLE %s NOLOGIN", QuoteIdent(g.Name)), syn.SetRecord(g.Name, g.Record))
		}
		grants, err := grantStatements(g.Name, g.Schema, g.Preset)
		if err != nil {
			return nil, err
		}
		for _, sql := range grants {
			st = append(st, Step{SQL: sql, Schema: g.Schema, Preset: g.Preset})
		}
	}
	if pl.ResetDirect {
		add(syn.ResetDirect(pl.Role, pl.Revoke)...) // before CONNECT, which the reset revokes with the rest
	}
	role := QuoteIdent(pl.Role)
	add(fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", QuoteIdent(pl.Database), role))
	for _, g := range pl.Join {
		add(fmt.Sprintf("GRANT %s TO %s", QuoteIdent(g), role))
	}
	for _, g := range pl.Leave {
		add(fmt.Sprintf("REVOKE %s FROM %s", QuoteIdent(g), role))
	}
	for i, sql := range pl.RawSQL {
		st = append(st, Step{SQL: sql, Raw: i + 1})
	}
	return st, nil
}

// roleStatement creates the role or makes it a login role again, with the
// new password when there is one.
func (pl *Plan) roleStatement(syn Syntax) string {
	role := QuoteIdent(pl.Role)
	switch {
	case pl.CreateRole:
		return fmt.Sprintf("CREATE ROLE %s WITH %s PASSWORD %s VALID UNTIL %s",
			role, syn.LoginAttributes(true), QuoteLiteral(pl.Password), QuoteLiteral(pl.ValidUntil))
	case pl.Password == "":
		// No new password: VALID UNTIL stays, so that a reconcile never
		// extends a password the role may have set itself.
		return fmt.Sprintf("ALTER ROLE %s WITH %s", role, syn.LoginAttributes(false))
	}
	return fmt.Sprintf("ALTER ROLE %s WITH %s PASSWORD %s VALID UNTIL %s",
		role, syn.LoginAttributes(false), QuoteLiteral(pl.Password), QuoteLiteral(pl.ValidUntil))
}

// ResetDirectSQL revokes every privilege held directly by role that the
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
func ResetDirectSQL(role string) string {
	var b strings.Builder
	b.WriteString("DECLARE\n  r oid := {role}::regrole;\n  o record;\nBEGIN\n")
	for _, c := range aclCatalogs {
		b.WriteString(c.loop())
	}
	b.WriteString(resetParametersAndDefaults)
	b.WriteString("END")
	return doBlock(strings.ReplaceAll(b.String(), "{role}", QuoteLiteral(role)))
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

// aclCatalogs are the catalogs ResetDirectSQL walks. Tables are also
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
