package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// Scripts for the fake CockroachDB (crdbfake_test.go). Each scenario lists
// every statement the provisioner sends, in order.

const (
	aliceRole  = "wp_alice_laptop_appdb"
	aliceGroup = "wp_g_appdb_public_readonly"
)

var (
	aliceEff  = authz.Effective{Database: "appdb", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "public")}
	rolesCols = []column{{"rolname", oidText}, {"record", oidText}, {"has", oidBool}}
	membCols  = []column{{"member", oidText}, {"group", oidText}, {"record", oidText}}
	groupRec  = plan.Record{Waypoint: 1, Kind: plan.RecordGroup, Database: "appdb", Schema: "public", Preset: "readonly"}
	// crdbAliceRecord is the owner record Cleanup finds for alice's role.
	crdbAliceRecord = plan.Record{Waypoint: 1, Kind: plan.RecordUser, Subject: "alice@example.com", Node: "n1", Database: "appdb"}
)

// newStartup is what New sends to a CockroachDB without Waypoint's state.
func newStartup() []step {
	return []step{
		query("SELECT version()", []column{{"version", oidText}}, []any{"CockroachDB CCL v23.2.0 (x86_64-pc-linux-gnu, built 2024/01/01)"}),
		query("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", []column{{"rolcanlogin", oidBool}}),
		exec(`CREATE ROLE "wp_users" NOLOGIN`),
		query("SELECT n.nspowner = ", []column{{"ours", oidBool}, {"private", oidBool}}),
		exec(`CREATE SCHEMA "waypoint"`),
		exec("CREATE TABLE IF NOT EXISTS waypoint.role_locks (role STRING PRIMARY KEY, last_used TIMESTAMPTZ)"),
		exec("CREATE TABLE IF NOT EXISTS waypoint.role_records (role STRING PRIMARY KEY, record STRING NOT NULL)"),
	}
}

// lockAlice is Ensure's lock of alice's two candidate names: lock rows
// upserted, then locked FOR UPDATE in a transaction.
func lockAlice() []step {
	return []step{
		exec("UPSERT INTO waypoint.role_locks (role, last_used) VALUES ($1, now())"),
		exec("UPSERT INTO waypoint.role_locks (role, last_used) VALUES ($1, now())"),
		exec("begin"),
		query("SELECT role FROM waypoint.role_locks WHERE role = ANY($1::STRING[]) ORDER BY role FOR UPDATE", []column{{"role", oidText}}),
	}
}

// lookupAlice is the lookup under the lock: clock, roles, memberships.
func lookupAlice(roles, members [][]any) []step {
	return []step{
		query("SELECT now()", []column{{"now", oidTimestamptz}}, []any{time.Now()}),
		query("SELECT r.rolname::STRING, coalesce(w.record, ''), pg_has_role(", rolesCols, roles...),
		query("SELECT DISTINCT u.rolname::STRING, g.rolname::STRING", membCols, members...),
	}
}

// presetGrants are the readonly grants on public to alice's group.
func presetGrants() []step {
	return []step{
		exec(`GRANT USAGE ON SCHEMA "public" TO "wp_g_appdb_public_readonly"`),
		exec(`GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "wp_g_appdb_public_readonly"`),
		exec(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "wp_g_appdb_public_readonly"`),
	}
}

// newFakeCRDBProvisioner connects a Provisioner to a fake CockroachDB that
// expects New's statements and then script.
func newFakeCRDBProvisioner(t *testing.T, script ...step) (*fakeCRDB, *Provisioner) {
	f := startFakeCRDB(t, slices.Concat(newStartup(), script)...)
	p, err := New(testCtx(t), Options{AdminConnString: "postgres://admin:pw@" + f.ln.Addr().String() + "/defaultdb?sslmode=disable"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	if !p.IsCockroachDB() {
		t.Fatalf("dialect: got PostgreSQL, want CockroachDB")
	}
	return f, p
}

// TestCockroachDB_NoAdvisoryLocks provisions a new role on the fake and
// checks the dialect: lock rows instead of advisory locks or leases, owner
// records in a table instead of role comments, no PostgreSQL-only options.
func TestCockroachDB_NoAdvisoryLocks(t *testing.T) {
	f, p := newFakeCRDBProvisioner(t, slices.Concat(lockAlice(), lookupAlice(nil, nil), []step{
		exec("BEGIN"),
		matching(`^CREATE ROLE "wp_alice_laptop_appdb" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD 'SCRAM-SHA-256\$16:[^']+' VALID UNTIL '[0-9 :.-]+\+00'$`),
		exec(`UPSERT INTO "defaultdb".waypoint.role_records (role, record) VALUES ('wp_alice_laptop_appdb', '{"waypoint":1,"kind":"user","subject":"alice@example.com","node":"n1","machine":"laptop","db":"appdb","grant":"`),
		exec(`CREATE ROLE "wp_g_appdb_public_readonly" NOLOGIN`),
		exec(`UPSERT INTO "defaultdb".waypoint.role_records (role, record) VALUES ('wp_g_appdb_public_readonly', '` + groupRec.String() + `')`),
	}, presetGrants(), []step{
		exec(`GRANT CONNECT ON DATABASE "appdb" TO "wp_alice_laptop_appdb"`),
		exec(`GRANT "wp_g_appdb_public_readonly" TO "wp_alice_laptop_appdb"`),
		exec(`GRANT "wp_users" TO "wp_alice_laptop_appdb"`),
		exec("COMMIT"),
		exec("rollback"), // Release: the lock transaction ends
	})...)
	l, err := p.Ensure(testCtx(t), peer("alice@example.com", "laptop", "n1"), aliceEff)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if l.Role != aliceRole || l.Password == "" || !l.Created {
		t.Errorf("lease: got role %q, password set %v, created %v; want %s, a password, created", l.Role, l.Password != "", l.Created, aliceRole)
	}
	l.Release()
	p.Close() // waits for the unlock
	all := strings.Join(f.statements(), "\n")
	for _, unwanted := range []string{"pg_advisory", "COMMENT ON ROLE", "SET LOCAL", "NOSUPERUSER", "DO $", "public.waypoint", "TO CURRENT_USER"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("statements contain %q:\n%s", unwanted, all)
		}
	}
}

// aliceRecord is the owner record Ensure writes for alice with aliceEff.
func aliceRecord(t *testing.T) plan.Record {
	req, err := plan.NewRequest(plan.DefaultPrefix, peer("alice@example.com", "laptop", "n1"), aliceEff)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := req.Plan(plan.NewLookup(time.Now()), time.Minute, "", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	return pl.Record
}

// TestCockroachDB_UpdatesExistingRole: alice's role, its record, her group
// and her memberships exist. Ensure rotates the password with ALTER ROLE,
// re-grants the preset and CONNECT, and creates, records and joins nothing.
func TestCockroachDB_UpdatesExistingRole(t *testing.T) {
	rec := aliceRecord(t)
	f, p := newFakeCRDBProvisioner(t, slices.Concat(lockAlice(), lookupAlice(
		[][]any{{aliceRole, rec.String(), true}, {aliceGroup, groupRec.String(), true}},
		[][]any{{aliceRole, aliceGroup, groupRec.String()}, {aliceRole, "wp_users", ""}},
	), []step{
		exec("BEGIN"),
		matching(`^ALTER ROLE "wp_alice_laptop_appdb" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$16:[^']+' VALID UNTIL '[0-9 :.-]+\+00'$`),
	}, presetGrants(), []step{
		exec(`GRANT CONNECT ON DATABASE "appdb" TO "wp_alice_laptop_appdb"`),
		exec("COMMIT"),
		exec("rollback"),
	})...)
	l, err := p.Ensure(testCtx(t), peer("alice@example.com", "laptop", "n1"), aliceEff)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if l.Role != aliceRole || l.Created {
		t.Errorf("lease: got role %q, created %v; want %s, not created", l.Role, l.Created, aliceRole)
	}
	l.Release()
	p.Close()
	if all := strings.Join(f.statements(), "\n"); strings.Contains(all, "UPSERT INTO \"defaultdb\"") || strings.Contains(all, "CREATE ROLE \"wp_alice") {
		t.Errorf("update path created or re-recorded a role:\n%s", all)
	}
}

// TestCockroachDB_NameClash: a role of alice's name exists without
// Waypoint's record. Ensure refuses with Clash, changes nothing, and
// releases the lock.
func TestCockroachDB_NameClash(t *testing.T) {
	_, p := newFakeCRDBProvisioner(t, slices.Concat(lockAlice(), lookupAlice(
		[][]any{{aliceRole, "", false}}, nil,
	), []step{
		exec("rollback"),
	})...)
	_, err := p.Ensure(testCtx(t), peer("alice@example.com", "laptop", "n1"), aliceEff)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != Clash || pe.Object != "role "+aliceRole {
		t.Fatalf("Ensure: got %v, want a Clash on role %s", err, aliceRole)
	}
	p.Close()
}

// TestCockroachDB_LockHeld: another instance holds alice's lock rows (the
// server's lock_timeout fires on FOR UPDATE). Ensure retries, each time on
// a fresh connection, until its context ends, then says why.
func TestCockroachDB_LockHeld(t *testing.T) {
	attempt := slices.Clone(lockAlice())
	attempt[len(attempt)-1] = fail("SELECT role FROM waypoint.role_locks WHERE role = ANY($1::STRING[]) ORDER BY role FOR UPDATE",
		sqlstateLockNotAvailable, "canceling statement due to lock timeout on row in role_locks")
	f, p := newFakeCRDBProvisioner(t, slices.Concat(attempt, []step{loop(len(attempt))})...)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	_, err := p.Ensure(ctx, peer("alice@example.com", "laptop", "n1"), aliceEff)
	if KindOf(err) != Backend || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "held by another Waypoint instance") {
		t.Fatalf("Ensure: got %v, want a Backend error saying the lock is held by another instance", err)
	}
	locks := 0
	for _, s := range f.statements() {
		if strings.HasSuffix(s, "FOR UPDATE") {
			locks++
		}
	}
	if locks < 2 {
		t.Errorf("got %d lock attempts, want at least 2 (retried)", locks)
	}
}

// cleanupStart is Cleanup's listing of candidates and its try-lock of
// alice's role.
func cleanupStart() []step {
	return []step{
		query("SELECT r.rolname::STRING, w.record FROM pg_roles r JOIN waypoint.role_records w", []column{{"rolname", oidText}, {"record", oidText}},
			[]any{aliceRole, crdbAliceRecord.String()},
			[]any{"other_alice_laptop_appdb", crdbAliceRecord.String()}, // not our prefix
			[]any{aliceGroup, groupRec.String()}),                       // a group
		exec("INSERT INTO waypoint.role_locks (role) VALUES ($1) ON CONFLICT DO NOTHING"),
		exec("begin"),
	}
}

var recheckCols = []column{{"expired", oidBool}, {"in_use", oidBool}, {"record", oidText}}

// deactivateAlice revokes everything from alice's role: login, memberships,
// and what SHOW GRANTS lists in appdb and in the admin database.
func deactivateAlice() []step {
	grantCols := []column{{"object_type", oidText}, {"database_name", oidText}, {"schema_name", oidText}, {"object_name", oidText}}
	return []step{
		exec(`ALTER ROLE "wp_alice_laptop_appdb" WITH NOLOGIN PASSWORD NULL`),
		query("SELECT g.rolname::text FROM pg_auth_members m", []column{{"rolname", oidText}}, []any{aliceGroup}),
		exec(`REVOKE "wp_g_appdb_public_readonly" FROM "wp_alice_laptop_appdb"`),
		query(crdbGrantsSQL(aliceRole), grantCols, []any{"table", "appdb", "public", "audit_log"}, []any{"database", "appdb", "", ""}),
		exec(`REVOKE ALL ON TABLE "appdb"."public"."audit_log" FROM "wp_alice_laptop_appdb"`),
		exec(`REVOKE ALL ON DATABASE "appdb" FROM "wp_alice_laptop_appdb"`),
		query(crdbGrantsSQL(aliceRole), grantCols), // nothing in the admin database
	}
}

// TestCockroachDB_Cleanup cleans up an idle Waypoint role on the fake with
// CockroachDB statements: lock row FOR UPDATE NOWAIT, SHOW CLUSTER SESSIONS,
// deactivation (NOLOGIN, memberships and every privilege from SHOW GRANTS
// revoked), DROP ROLE and the record row deleted. Objects are never
// reassigned (no REASSIGN OWNED, no DROP OWNED: a user's table keeps its
// rows and is never the admin's). Other prefixes and group roles are
// untouched.
func TestCockroachDB_Cleanup(t *testing.T) {
	_, p := newFakeCRDBProvisioner(t, slices.Concat(cleanupStart(), []step{
		exec("SELECT role FROM waypoint.role_locks WHERE role = $1 FOR UPDATE NOWAIT"),
		query(crdbRecheckSQL, recheckCols, []any{true, false, crdbAliceRecord.String()}),
	}, deactivateAlice(), []step{
		exec(`DROP ROLE "wp_alice_laptop_appdb"`),
		exec("DELETE FROM waypoint.role_records WHERE role = $1"),
		exec("commit"),
	})...)
	res, err := p.Cleanup(testCtx(t))
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := strings.Join(res.Dropped, ","); got != aliceRole || res.Errors != 0 {
		t.Errorf("Cleanup result: got dropped %q, %d errors; want %s, 0", got, res.Errors, aliceRole)
	}
}

// TestCockroachDB_CleanupKeepsOwner: when CockroachDB refuses DROP ROLE
// because the role owns objects, the role stays deactivated with its record
// marked inactive; nothing is reassigned.
func TestCockroachDB_CleanupKeepsOwner(t *testing.T) {
	inactive := crdbAliceRecord
	inactive.State = plan.StateInactive
	_, p := newFakeCRDBProvisioner(t, slices.Concat(cleanupStart(), []step{
		exec("SELECT role FROM waypoint.role_locks WHERE role = $1 FOR UPDATE NOWAIT"),
		query(crdbRecheckSQL, recheckCols, []any{true, false, crdbAliceRecord.String()}),
	}, deactivateAlice(), []step{
		fail(`DROP ROLE "wp_alice_laptop_appdb"`, sqlstateDependentObjects, "role cannot be dropped because some objects depend on it"),
		exec("UPSERT INTO waypoint.role_records (role, record) VALUES ($1, $2)"),
		exec("commit"),
	})...)
	res, err := p.Cleanup(testCtx(t))
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := strings.Join(res.Deactivated, ","); got != aliceRole || len(res.Dropped) != 0 || res.Errors != 0 {
		t.Errorf("Cleanup result: got deactivated %q, dropped %q, %d errors; want %s, none, 0", got, res.Dropped, res.Errors, aliceRole)
	}
}

// TestCockroachDB_CleanupRoleInUse: a role with a session somewhere in the
// cluster, or whose lock row an Ensure holds, is skipped untouched.
func TestCockroachDB_CleanupRoleInUse(t *testing.T) {
	tests := []struct {
		name   string
		script []step
	}{
		{"open session", []step{
			exec("SELECT role FROM waypoint.role_locks WHERE role = $1 FOR UPDATE NOWAIT"),
			query(crdbRecheckSQL, recheckCols, []any{true, true, crdbAliceRecord.String()}),
			exec("commit"),
		}},
		{"lock held by an Ensure", []step{
			fail("SELECT role FROM waypoint.role_locks WHERE role = $1 FOR UPDATE NOWAIT", sqlstateLockNotAvailable, "could not obtain lock on row in role_locks"),
			exec("rollback"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p := newFakeCRDBProvisioner(t, slices.Concat(cleanupStart(), tt.script)...)
			res, err := p.Cleanup(testCtx(t))
			if err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if got := strings.Join(res.SkippedActive, ","); got != aliceRole || len(res.Dropped)+len(res.Deactivated)+res.Errors != 0 {
				t.Errorf("Cleanup result: got %+v; want only %s skipped as active", res, aliceRole)
			}
		})
	}
}

// TestCockroachDB_TouchAndTerminate: Touch records use in the lock table and
// never extends VALID UNTIL; Terminate is refused (no process IDs there)
// without a statement.
func TestCockroachDB_TouchAndTerminate(t *testing.T) {
	_, p := newFakeCRDBProvisioner(t, exec(crdbTouchSQL))
	if err := p.Touch(testCtx(t), []string{aliceRole, "postgres"}); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if err := p.Terminate(testCtx(t), 42); err == nil {
		t.Errorf("Terminate on CockroachDB: got nil error, want unsupported")
	}
}
