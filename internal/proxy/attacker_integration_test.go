package proxy_test

// The attacker suite: each test plays a granted but hostile user through
// the real path (tailnet, Waypoint, PostgreSQL 15 and 18) and shows that
// what the user tries does not get them more than their grant. SECURITY.md
// names these tests.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// superString runs sql as the superuser in database and returns its one
// text value.
func superString(t *testing.T, pg *pgtest.Cluster, database, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := pg.Super(t, database).QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// execSQL runs sql on conn and returns the error.
func execSQL(conn *pgx.Conn, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, sql, args...)
	return err
}

// roleOf returns the backend role of a Waypoint session.
func roleOf(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var role string
	if err := conn.QueryRow(context.Background(), "SELECT current_user::text").Scan(&role); err != nil {
		t.Fatal(err)
	}
	return role
}

// makeIdle makes role look unused since 2000, as if user_ttl had passed,
// and waits until it has no backend session.
func makeIdle(t *testing.T, r *rig, role string) {
	t.Helper()
	r.pg.Exec(t, "postgres", "UPDATE waypoint.roles SET last_used = '2000-01-01' WHERE role = $1", role)
	waitFor(t, "sessions of "+role+" to end", func() bool {
		return superString(t, r.pg, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE usename = $1", role) == "0"
	})
}

// TestAttack_SecurityDefinerAfterCleanup: a user with the admin preset
// leaves a SECURITY DEFINER function and a table behind and stops using the
// role. Cleanup must not hand them to the admin (whose CREATEROLE the
// function would then run with — on PostgreSQL 15 a way to
// pg_execute_server_program and OS commands), nor to any role that can log
// in or holds CREATEROLE/CREATEDB/SUPERUSER/BYPASSRLS; and the table keeps
// its rows.
func TestAttack_SecurityDefinerAfterCleanup(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		pg.CreateAppDatabase(t, "secdefdb")
		mallory := r.client("atk-secdef-mallory@evil.example", "evil", grantJSON(map[string]authz.DatabaseGrant{"secdefdb": dbGrant("admin")}))
		victim := r.client("atk-secdef-victim@example.com", "desk", grantJSON(map[string]authz.DatabaseGrant{"secdefdb": dbGrant("readonly")}))

		conn := r.mustConnect(mallory, "secdefdb", map[string]string{"options": "-c waypoint_presets=admin"})
		role := roleOf(t, conn)
		for _, sql := range []string{
			"CREATE TABLE public.mallory_data (v text)",
			"INSERT INTO public.mallory_data VALUES ('keep me'), ('me too')",
			`CREATE FUNCTION public.whoami() RETURNS text LANGUAGE sql SECURITY DEFINER
			   AS $$ SELECT current_user || ' createrole=' || (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user) $$`,
			"GRANT EXECUTE ON FUNCTION public.whoami() TO PUBLIC",
			"GRANT SELECT ON public.mallory_data TO PUBLIC",
		} {
			if err := execSQL(conn, sql); err != nil {
				t.Fatalf("as the admin-preset user: %s: %v", sql, err)
			}
		}
		conn.Close(context.Background())
		makeIdle(t, r, role)

		res, err := r.prov.Cleanup(context.Background())
		if err != nil || res.Errors != 0 {
			t.Fatalf("Cleanup: %v, %d errors", err, res.Errors)
		}
		if !contains(res.Deactivated, role) {
			t.Fatalf("Cleanup: got deactivated %v, want %s among them (it owns objects)", res.Deactivated, role)
		}
		// Who owns what the user made: the user's own role, which can no
		// longer log in and holds no dangerous attribute.
		owners := superString(t, pg, "secdefdb", `SELECT string_agg(DISTINCT format('%s login=%s createrole=%s createdb=%s super=%s bypassrls=%s',
		      o.rolname, o.rolcanlogin, o.rolcreaterole, o.rolcreatedb, o.rolsuper, o.rolbypassrls), '; ')
		  FROM (SELECT proowner AS owner FROM pg_proc WHERE proname = 'whoami'
		        UNION ALL SELECT relowner FROM pg_class WHERE relname = 'mallory_data') x JOIN pg_roles o ON o.oid = x.owner`)
		if want := role + " login=f createrole=f createdb=f super=f bypassrls=f"; owners != want {
			t.Errorf("owners of the user's objects after cleanup: got %q, want %q", owners, want)
		}
		// Another user calls the function: it runs as the deactivated
		// role, never as the admin.
		vconn := r.mustConnect(victim, "secdefdb", nil)
		var who string
		if err := vconn.QueryRow(context.Background(), "SELECT public.whoami()").Scan(&who); err != nil {
			t.Fatalf("call the left-behind function: %v", err)
		}
		if want := role + " createrole=false"; who != want {
			t.Errorf("SECURITY DEFINER function after cleanup runs as %q, want %q (never %s)", who, want, pg.AdminUser)
		}
		// No data lost.
		if n := superString(t, pg, "secdefdb", "SELECT count(*)::text FROM public.mallory_data"); n != "2" {
			t.Errorf("rows in the user's table after cleanup: got %s, want 2", n)
		}
		// The deactivated role has no membership and no privilege of its
		// grant left (so its function reaches nothing beyond its objects).
		if got := superString(t, pg, "secdefdb", `SELECT format('%s members_of=%s connect=%s usage_public=%s',
		      r.rolcanlogin, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid),
		      EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = 'secdefdb' AND a.grantee = r.oid),
		      has_table_privilege(r.oid, 'public.items', 'SELECT'))
		  FROM pg_roles r WHERE r.rolname = $1`, role); got != "f members_of=0 connect=f usage_public=f" {
			t.Errorf("deactivated role: got %s", got)
		}
	})
}

// TestAttack_MergedGrantsNoCrossProduct: an admin grant on one schema for
// every database plus a readonly grant on another schema of one database
// must not merge into admin on both.
func TestAttack_MergedGrantsNoCrossProduct(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		pg.CreateAppDatabase(t, "mergedb")
		mallory := r.client("atk-merge-mallory@evil.example", "evil",
			grantJSON(map[string]authz.DatabaseGrant{"*": {Permissions: []string{"admin"}, Schemas: []string{"app"}}}),
			grantJSON(map[string]authz.DatabaseGrant{"mergedb": {Permissions: []string{"readonly"}, Schemas: []string{"public"}}}))
		conn := r.mustConnect(mallory, "mergedb", nil)
		for _, tc := range []struct {
			sql  string
			want bool
		}{
			{"SELECT count(*) FROM public.items", true},
			{"INSERT INTO public.items (name) VALUES ('x')", false},
			{"DELETE FROM public.items", false},
			{"CREATE TABLE public.mallory (id int)", false},
			{"INSERT INTO app.orders (amount) VALUES (1)", true},
			{"CREATE TABLE app.mallory (id int)", true},
		} {
			err := execSQL(conn, tc.sql)
			if got := err == nil; got != tc.want {
				t.Errorf("%s: got allowed=%v (%v), want %v", tc.sql, got, err, tc.want)
			}
		}
	})
}

// narrowObjects creates in database one object of every kind GRANT
// reaches that the admin can grant on, owned by the admin.
func narrowObjects(t *testing.T, pg *pgtest.Cluster, database string) {
	t.Helper()
	admin := pg.AdminUser
	for _, sql := range []string{
		"CREATE SCHEMA narrow AUTHORIZATION " + admin,
		"CREATE TABLE narrow.t (id int, secret text)",
		"ALTER TABLE narrow.t OWNER TO " + admin,
		"CREATE SEQUENCE narrow.s",
		"ALTER SEQUENCE narrow.s OWNER TO " + admin,
		"CREATE FUNCTION narrow.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"ALTER FUNCTION narrow.f() OWNER TO " + admin,
		"REVOKE ALL ON FUNCTION narrow.f() FROM PUBLIC",
		"CREATE TYPE narrow.mood AS ENUM ('ok')",
		"ALTER TYPE narrow.mood OWNER TO " + admin,
		"REVOKE ALL ON TYPE narrow.mood FROM PUBLIC",
		"SELECT lo_create(424242)",
		"ALTER LARGE OBJECT 424242 OWNER TO " + admin,
		"GRANT TEMPORARY ON DATABASE " + database + " TO " + admin + " WITH GRANT OPTION",
		"REVOKE TEMPORARY ON DATABASE " + database + " FROM PUBLIC",
	} {
		pg.Exec(t, database, sql)
	}
}

// narrowSQL grants one privilege on every kind of object.
var narrowSQL = []string{
	"GRANT SELECT ON narrow.t TO {{.Role}}",
	"GRANT UPDATE (secret) ON narrow.t TO {{.Role}}",
	"GRANT USAGE ON SEQUENCE narrow.s TO {{.Role}}",
	"GRANT EXECUTE ON FUNCTION narrow.f() TO {{.Role}}",
	"GRANT USAGE ON SCHEMA narrow TO {{.Role}}",
	"GRANT USAGE ON TYPE narrow.mood TO {{.Role}}",
	"GRANT CREATE, TEMPORARY ON DATABASE {{.Database}} TO {{.Role}}",
	"GRANT SELECT ON LARGE OBJECT 424242 TO {{.Role}}",
	"ALTER DEFAULT PRIVILEGES IN SCHEMA narrow GRANT SELECT ON TABLES TO {{.Role}}",
}

// privilegesSQL reports, for role $1 in the current database, which of
// narrowSQL's privileges it holds directly.
const privilegesSQL = `SELECT concat_ws(',',
  CASE WHEN has_table_privilege($1, 'narrow.t', 'SELECT') THEN 'table' END,
  CASE WHEN has_column_privilege($1, 'narrow.t', 'secret', 'UPDATE') THEN 'column' END,
  CASE WHEN has_sequence_privilege($1, 'narrow.s', 'USAGE') THEN 'sequence' END,
  CASE WHEN has_function_privilege($1, 'narrow.f()', 'EXECUTE') THEN 'function' END,
  CASE WHEN has_schema_privilege($1, 'narrow', 'USAGE') THEN 'schema' END,
  CASE WHEN has_type_privilege($1, 'narrow.mood', 'USAGE') THEN 'type' END,
  CASE WHEN has_database_privilege($1, current_database(), 'CREATE') THEN 'database-create' END,
  CASE WHEN has_database_privilege($1, current_database(), 'TEMPORARY') THEN 'database-temp' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_largeobject_metadata l, aclexplode(l.lomacl) a
                     WHERE l.oid = 424242 AND a.grantee = $1::regrole) THEN 'large-object' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                     WHERE a.grantee = $1::regrole) THEN 'default-privileges' END)`

// TestAttack_NarrowingRevokesEveryKind: a grant's raw SQL gives a
// privilege on every kind of object; when the grant drops the SQL, the
// next connection has none of them left.
func TestAttack_NarrowingRevokesEveryKind(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, func(o *proxy.Options) { o.Policy.AllowRawSQL = true })
		pg.CreateAppDatabase(t, "narrowdb")
		narrowObjects(t, pg, "narrowdb")
		wide := grantJSON(map[string]authz.DatabaseGrant{"narrowdb": {Permissions: []string{"readonly"}, SQL: narrowSQL}})
		narrow := grantJSON(map[string]authz.DatabaseGrant{"narrowdb": dbGrant("readonly")})
		user := r.client("atk-narrow-user@example.com", "desk", wide)

		conn := r.mustConnect(user, "narrowdb", nil)
		role := roleOf(t, conn)
		conn.Close(context.Background())
		all := "table,column,sequence,function,schema,type,database-create,database-temp,large-object,default-privileges"
		if got := superString(t, pg, "narrowdb", privilegesSQL, role); got != all {
			t.Fatalf("with the wide grant: got privileges %q, want %q", got, all)
		}
		r.grant(user, narrow)
		conn = r.mustConnect(user, "narrowdb", nil)
		if got := superString(t, pg, "narrowdb", privilegesSQL, role); got != "" {
			t.Errorf("after the grant dropped its SQL: got privileges %q left, want none", got)
		}
		if err := execSQL(conn, "SELECT count(*) FROM narrow.t"); sqlstate(err) != "42501" {
			t.Errorf("read the narrowed table: got %v, want 42501", err)
		}
		if err := execSQL(conn, "SELECT count(*) FROM public.items"); err != nil {
			t.Errorf("the remaining readonly grant: %v", err)
		}
	})
}

// oldLockKey is the advisory-lock key earlier versions used for name
// (role names, or "\x00database-grants" for the per-database lock).
func oldLockKey(name string) int64 {
	sum := sha256.Sum256([]byte("waypoint-role-lock\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// TestAttack_LocksCannotStallOthers: a readonly user holds every advisory
// lock key Waypoint ever used (and as many others as it likes), an open
// transaction with locks on what it can see and its own role's catalog row,
// five more sessions idle in transactions, and a "*" grant that would reach
// the admin database. Another identity
// still connects — through the full, cold provisioning of a new role —
// within 2 s.
func TestAttack_LocksCannotStallOthers(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		pg.CreateAppDatabase(t, "lockdb")
		mallory := r.client("atk-lock-mallory@evil.example", "evil", grantJSON(map[string]authz.DatabaseGrant{"*": dbGrant("readonly")}))
		victim := r.client("atk-lock-victim@example.com", "desk", grantJSON(map[string]authz.DatabaseGrant{"lockdb": dbGrant("readwrite")}))

		if _, err := r.connect(mallory, "postgres", nil); sqlstate(err) != "28000" {
			t.Errorf("a \"*\" grant connecting to the admin database: got %v, want FATAL 28000", err)
		}
		hold := r.mustConnect(mallory, "lockdb", nil)
		for range 5 { // its own sessions, idle in transactions
			extra := r.mustConnect(mallory, "lockdb", nil)
			if err := execSQL(extra, "BEGIN; SELECT count(*) FROM public.items"); err != nil {
				t.Fatalf("extra session: %v", err)
			}
		}
		victimRole := plan.RoleName("wp_", peerOf(victim.Login, "desk"), "lockdb", "")
		for _, key := range []int64{oldLockKey("\x00database-grants"), oldLockKey(victimRole), oldLockKey(plan.ClashRoleName("wp_", peerOf(victim.Login, "desk"), "lockdb", ""))} {
			if err := execSQL(hold, "SELECT pg_advisory_lock($1)", key); err != nil {
				t.Fatalf("take advisory lock %d: %v", key, err)
			}
		}
		if err := execSQL(hold, "SELECT pg_advisory_lock(k) FROM generate_series(1, 1000) k"); err != nil {
			t.Fatalf("take 1000 advisory locks: %v", err)
		}
		// An open transaction holding what a readonly user can lock.
		tx, err := hold.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		for _, sql := range []string{
			"LOCK TABLE public.items IN ACCESS SHARE MODE",
			"SELECT pg_advisory_xact_lock(k) FROM generate_series(1001, 2000) k",
			"ALTER ROLE CURRENT_USER SET work_mem = '8MB'",
		} {
			if _, err := tx.Exec(context.Background(), sql); err != nil {
				t.Fatalf("as mallory in a transaction: %s: %v", sql, err)
			}
		}

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, r.config(victim, "lockdb", nil))
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("another identity's first connection while mallory holds her locks: %v after %v (want a session within 2 s)\nproxy log:\n%s", err, elapsed, r.logs.String())
		}
		defer conn.Close(context.Background())
		t.Logf("a new identity connected in %v while a readonly user held every lock it could", elapsed.Round(time.Millisecond))
		if err := execSQL(conn, "INSERT INTO public.items (name) VALUES ('not stalled')"); err != nil {
			t.Errorf("victim's session: %v", err)
		}
	})
}

// TestAttack_SelfSetPasswordExpires: a role sets its own password through
// Waypoint (no privilege needed) and logs in to PostgreSQL directly with
// it. That must stop working once the password's VALID UNTIL (set by
// Waypoint, which the role cannot change) has passed, however long the
// role's Waypoint session stays open and is revalidated. The lifetime is
// 8 s here (room for a loaded machine between setting the password and the
// first direct login); TestAttack_PasswordLifetimeDefault checks the
// default.
func TestAttack_SelfSetPasswordExpires(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRigWith(t, pg, func(o *provision.Options) { o.PasswordLifetime = 8 * time.Second }, nil)
		mallory := r.client("atk-selfpw-mallory@evil.example", "evil", readonlyAppdb)
		conn := r.mustConnect(mallory, "appdb", nil)
		role := roleOf(t, conn)
		const mine = "mallory-knows-this-one"
		if err := execSQL(conn, "ALTER ROLE CURRENT_USER PASSWORD '"+mine+"'"); err != nil {
			t.Fatalf("set own password: %v", err)
		}
		if err := execSQL(conn, "ALTER ROLE CURRENT_USER VALID UNTIL 'infinity'"); sqlstate(err) != "42501" {
			t.Errorf("extend own VALID UNTIL: got %v, want 42501 (PostgreSQL refuses)", err)
		}
		direct := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, pg.ConnString(role, mine, "appdb"))
			if err == nil {
				c.Close(ctx)
			}
			return err
		}
		if err := direct(); err != nil {
			t.Fatalf("direct login with the self-set password right away: %v (want it to work inside the window, or the test proves nothing)", err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			r.srv.Revalidate(context.Background()) // a live session's revalidation must not extend it
			err := direct()
			if err != nil {
				if code := sqlstate(err); code != "28P01" && code != "28000" {
					t.Fatalf("direct login with the self-set password: got %v, want an authentication failure", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the self-set password still works directly after 60 s; want it refused once VALID UNTIL (8 s) passes")
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err := execSQL(conn, "SELECT 1"); err != nil {
			t.Errorf("the Waypoint session itself: %v (want it unaffected)", err)
		}
		// Every role is in the users group, for pg_hba.conf confinement.
		if got := superString(t, pg, "postgres", "SELECT pg_has_role($1, 'wp_users', 'MEMBER')::text", role); got != "true" {
			t.Errorf("role in wp_users: got %s, want true", got)
		}
	})
}

// TestAttack_PasswordLifetimeDefault: with the default settings, a
// password Waypoint sets (and so one a role sets itself) is valid for at
// most 60 s.
func TestAttack_PasswordLifetimeDefault(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	user := r.client("atk-lifetime@example.com", "desk", readonlyAppdb)
	conn := r.mustConnect(user, "appdb", nil)
	role := roleOf(t, conn)
	got := superString(t, pg, "postgres", "SELECT extract(epoch FROM rolvaliduntil - now())::int::text FROM pg_roles WHERE rolname = $1", role)
	var secs int
	fmt.Sscan(got, &secs)
	if secs <= 0 || secs > 60 {
		t.Errorf("VALID UNTIL of a fresh role: %s s from now, want within (0, 60]", got)
	}
}

// TestAttack_IdentityCannotBeForged: a session can SET waypoint.login to
// anything (it is informational), but cannot change its role's owner
// record, the record an audit trigger trusts.
func TestAttack_IdentityCannotBeForged(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		pg.CreateAppDatabase(t, "auditdb")
		for _, sql := range []string{
			"CREATE TABLE public.audit_trail (login text, machine text, role text, claimed text)",
			"ALTER TABLE public.audit_trail OWNER TO " + pg.AdminUser,
			`CREATE FUNCTION public.waypoint_login() RETURNS text LANGUAGE sql STABLE AS
			   $$ SELECT shobj_description(r.oid, 'pg_authid')::json ->> 'subject' FROM pg_roles r WHERE r.rolname = current_user $$`,
			`CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$
			 BEGIN
			   INSERT INTO public.audit_trail SELECT public.waypoint_login(),
			          shobj_description(r.oid, 'pg_authid')::json ->> 'machine', current_user, current_setting('waypoint.login', true)
			     FROM pg_roles r WHERE r.rolname = current_user;
			   RETURN NEW;
			 END $$`,
			"CREATE TRIGGER audit AFTER INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.audit()",
			"GRANT INSERT ON public.audit_trail TO PUBLIC",
		} {
			pg.Exec(t, "auditdb", sql)
		}
		mallory := r.client("atk-forge-mallory@evil.example", "evil", grantJSON(map[string]authz.DatabaseGrant{"auditdb": dbGrant("readwrite")}))
		conn := r.mustConnect(mallory, "auditdb", nil)
		role := roleOf(t, conn)
		if err := execSQL(conn, "SET waypoint.login = 'ceo@example.com'"); err != nil {
			t.Fatalf("SET waypoint.login: %v (any session may; it is informational)", err)
		}
		if err := execSQL(conn, `COMMENT ON ROLE "`+role+`" IS '{"waypoint":1,"kind":"user","subject":"ceo@example.com"}'`); sqlstate(err) != "42501" {
			t.Errorf("rewrite own owner record: got %v, want 42501", err)
		}
		if err := execSQL(conn, "INSERT INTO public.items (name) VALUES ('audited')"); err != nil {
			t.Fatalf("insert: %v", err)
		}
		got := superString(t, pg, "auditdb", "SELECT concat_ws(' ', login, machine, role, claimed) FROM public.audit_trail")
		if want := "atk-forge-mallory@evil.example evil " + role + " ceo@example.com"; got != want {
			t.Errorf("audit row: got %q, want %q (the record's login, not the claimed one)", got, want)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// peerOf is the identity.Peer a tailnettest client of login on machine
// resolves to, for naming its role.
func peerOf(login, machine string) identity.Peer {
	return identity.Peer{LoginName: login, MachineName: machine}
}
