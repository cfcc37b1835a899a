package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testCtx returns a context bounded for liveness, not for timing.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newTestProvisioner connects a Provisioner as the cluster's admin.
func newTestProvisioner(t testing.TB, c *pgtest.Cluster, opts Options) *Provisioner {
	t.Helper()
	opts.AdminConnString = c.ConnString(c.AdminUser, c.AdminPassword, "postgres")
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	p, err := New(testCtx(t), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func peer(login, machine, node string) identity.Peer {
	return identity.Peer{LoginName: login, MachineName: machine, NodeID: node}
}

func effective(db string, preset authz.Preset, schemas ...string) authz.Effective {
	return authz.Effective{Database: db, Preset: preset, Schemas: authz.SchemaGrants(preset, schemas...)}
}

// login connects as the lease's role and releases the lease.
func login(t testing.TB, c *pgtest.Cluster, l *Lease) *pgx.Conn {
	t.Helper()
	defer l.Release()
	conn, err := pgx.Connect(testCtx(t), c.ConnString(l.Role, l.Password, l.Database))
	if err != nil {
		t.Fatalf("login as %s: %v", l.Role, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func ensure(t testing.TB, p *Provisioner, pr identity.Peer, eff authz.Effective) *Lease {
	t.Helper()
	l, err := p.Ensure(testCtx(t), pr, eff)
	if err != nil {
		t.Fatalf("Ensure(%s, %s): %v", pr.LoginName, eff.Database, err)
	}
	return l
}

// canExec reports whether sql succeeds on conn (a permission error is false;
// any other error fails the test).
func canExec(t testing.TB, conn *pgx.Conn, sql string) bool {
	t.Helper()
	_, err := conn.Exec(testCtx(t), sql)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
		return false
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return true
}

func superQueryString(t testing.TB, c *pgtest.Cluster, db, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := c.Super(t, db).QueryRow(testCtx(t), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestIntegration_EnsureUser_CreatesRole(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		p := newTestProvisioner(t, c, Options{})
		l := ensure(t, p, peer("alice@example.com", "laptop", "n1"), effective("appdb", authz.Readwrite, "public", "app"))
		defer l.Release()
		if want := "wp_alice_laptop_appdb"; l.Role != want {
			t.Errorf("role: got %q, want %q", l.Role, want)
		}
		if !c.RoleExists(t, l.Role) {
			t.Fatalf("role %s does not exist", l.Role)
		}
		comment := superQueryString(t, c, "postgres",
			"SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", l.Role)
		rec, ours := plan.ParseRecord(comment)
		if !ours || rec.Subject != "alice@example.com" || rec.Node != "n1" || rec.Database != "appdb" {
			t.Errorf("owner record: got %q", comment)
		}
		members := superQueryString(t, c, "postgres", `SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
			FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1`, l.Role)
		if want := "wp_g_appdb_app_readwrite,wp_g_appdb_public_readwrite,wp_users"; members != want {
			t.Errorf("groups: got %q, want %q", members, want)
		}
		if got := p.Stats(); got.Created != 1 || got.Rotations != 1 {
			t.Errorf("stats: got %+v, want Created 1, Rotations 1", got)
		}
	})
}

func TestIntegration_EnsureUser_CanLogin(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		p := newTestProvisioner(t, c, Options{})
		pr := peer("carol@example.com", "desk", "n2")
		conn := login(t, c, ensure(t, p, pr, effective("appdb", authz.Readonly, "public", "app")))
		var n int
		if err := conn.QueryRow(testCtx(t), "SELECT count(*) FROM public.items").Scan(&n); err != nil || n != 3 {
			t.Errorf("SELECT public.items: got %d, %v; want 3 rows", n, err)
		}
		for sql, want := range map[string]bool{
			"SELECT * FROM app.orders":                     true,
			"INSERT INTO public.items (name) VALUES ('x')": false,
			"SELECT * FROM private.secrets":                false,
			"CREATE TABLE public.mine (id int)":            false,
		} {
			if got := canExec(t, conn, sql); got != want {
				t.Errorf("%s: allowed %v, want %v", sql, got, want)
			}
		}
		// A second Ensure rotates the password: the old one stops working.
		old := conn.Config().Password
		conn2 := login(t, c, ensure(t, p, pr, effective("appdb", authz.Readonly, "public", "app")))
		if conn2.Config().Password == old {
			t.Errorf("password was not rotated")
		}
		if _, err := pgx.Connect(testCtx(t), c.ConnString(conn.Config().User, old, "appdb")); err == nil {
			t.Errorf("login with the previous password succeeded")
		}
	})
}

func TestIntegration_Reconcile(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "recondb")
		p := newTestProvisioner(t, c, Options{})
		pr := peer("dave@example.com", "laptop", "n3")

		rw := login(t, c, ensure(t, p, pr, effective("recondb", authz.Readwrite, "public")))
		if !canExec(t, rw, "INSERT INTO public.items (name) VALUES ('rw')") {
			t.Fatalf("readwrite cannot insert")
		}
		// Downgrade: readwrite → readonly takes effect on the next connection.
		ro := login(t, c, ensure(t, p, pr, effective("recondb", authz.Readonly, "public")))
		if canExec(t, ro, "INSERT INTO public.items (name) VALUES ('ro')") {
			t.Errorf("after downgrade to readonly: INSERT allowed")
		}
		if !canExec(t, ro, "SELECT * FROM public.items") {
			t.Errorf("after downgrade to readonly: SELECT refused")
		}
		// A table created after provisioning is reachable on the next connection.
		c.Exec(t, "recondb", fmt.Sprintf("CREATE TABLE public.later (id int); ALTER TABLE public.later OWNER TO %s", c.AdminUser))
		again := login(t, c, ensure(t, p, pr, effective("recondb", authz.Readonly, "public")))
		if !canExec(t, again, "SELECT * FROM public.later") {
			t.Errorf("table created after provisioning is not readable on the next connection")
		}
		// Schemas removed from the grant lose access; the preset-limited
		// role is separate and skips raw SQL.
		lim := authz.Effective{Database: "recondb", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "app"), PresetLimited: true,
			SQL: []string{"GRANT INSERT ON public.audit_log TO {{.Role}}"}}
		ll := ensure(t, p, pr, lim)
		if want := "wp_dave_laptop_recondb_readonly"; ll.Role != want {
			t.Errorf("preset-limited role: got %q, want %q", ll.Role, want)
		}
		limited := login(t, c, ll)
		if canExec(t, limited, "SELECT * FROM public.items") || !canExec(t, limited, "SELECT * FROM app.orders") {
			t.Errorf("preset-limited role with schema app: wrong access")
		}
		if canExec(t, limited, "INSERT INTO public.audit_log (msg) VALUES ('x')") {
			t.Errorf("preset-limited role ran raw SQL")
		}
	})
}

func TestIntegration_RawSQL(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "rawdb")
		p := newTestProvisioner(t, c, Options{})
		pr := peer("erin@example.com", "laptop", "n4")
		eff := effective("rawdb", authz.Readonly, "public")
		eff.SQL = []string{"GRANT INSERT ON public.audit_log TO {{.Role}}", "GRANT USAGE ON SEQUENCE public.audit_log_id_seq TO {{.Role}}"}
		conn := login(t, c, ensure(t, p, pr, eff))
		if !canExec(t, conn, "INSERT INTO public.audit_log (msg) VALUES ('hi')") {
			t.Errorf("raw SQL grant did not apply")
		}
		// The SQL is removed from the grant: its privilege is revoked.
		eff.SQL = nil
		conn = login(t, c, ensure(t, p, pr, eff))
		if canExec(t, conn, "INSERT INTO public.audit_log (msg) VALUES ('again')") {
			t.Errorf("privilege from removed raw SQL still present")
		}
		// Refused SQL: nothing runs, nothing is created.
		bad := effective("rawdb", authz.Readonly, "public")
		bad.SQL = []string{"GRANT SELECT ON public.items TO {{.Role}}", "GRANT SELECT ON public.items TO {{.Role}}; DROP TABLE public.items"}
		_, err := p.Ensure(testCtx(t), peer("frank@example.com", "laptop", "n5"), bad)
		if KindOf(err) != BadSQL {
			t.Fatalf("stacked statements: got %v, want BadSQL", err)
		}
		if c.RoleExists(t, "wp_frank_laptop_rawdb") {
			t.Errorf("role created although the grant's SQL was refused")
		}
	})
}

func TestIntegration_CannotGrant(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		p := newTestProvisioner(t, c, Options{})
		pr := peer("gina@example.com", "laptop", "n6")
		_, err := p.Ensure(testCtx(t), pr, effective("appdb", authz.Readonly, "public", "private"))
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != CannotGrant || pe.Object != "table private.secrets" {
			t.Fatalf("got %v, want CannotGrant on table private.secrets", err)
		}
		if !strings.Contains(pe.ClientMessage(), "private.secrets") {
			t.Errorf("client message %q does not name the object", pe.ClientMessage())
		}
		if c.RoleExists(t, "wp_gina_laptop_appdb") || c.RoleExists(t, "wp_g_appdb_private_readonly") {
			t.Errorf("roles left behind by a failed Ensure: %v", c.Roles(t, "wp_g"))
		}
		_, err = p.Ensure(testCtx(t), pr, effective("appdb", authz.Readonly, "nosuch"))
		if KindOf(err) != MissingObject {
			t.Errorf("missing schema: got %v, want MissingObject", err)
		}
		_, err = p.Ensure(testCtx(t), pr, effective("nosuchdb", authz.Readonly))
		if KindOf(err) != MissingObject {
			t.Errorf("missing database: got %v, want MissingObject", err)
		}
	})
}

func TestIntegration_Clash(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		p := newTestProvisioner(t, c, Options{})
		eff := effective("appdb", authz.Readonly)
		first := ensure(t, p, peer("alice.smith@example.com", "pc", "n7"), eff)
		login(t, c, first)
		second := ensure(t, p, peer("alice-smith@example.com", "pc", "n8"), eff)
		login(t, c, second)
		if first.Role != "wp_alice_smith_pc_appdb" {
			t.Errorf("first: got %q, want wp_alice_smith_pc_appdb", first.Role)
		}
		if second.Role == first.Role || !strings.HasPrefix(second.Role, "wp_alice_smith_pc_appdb_") {
			t.Errorf("second: got %q, want a hashed name distinct from %q", second.Role, first.Role)
		}
		again := ensure(t, p, peer("alice-smith@example.com", "pc", "n8"), eff)
		login(t, c, again)
		if again.Role != second.Role {
			t.Errorf("clash name not stable: got %q, then %q", second.Role, again.Role)
		}
		// A role Waypoint did not create is never taken over.
		c.Exec(t, "postgres", "CREATE ROLE wp_bob_pc_appdb LOGIN PASSWORD 'keep'")
		_, err := p.Ensure(testCtx(t), peer("bob@example.com", "pc", "n9"), eff)
		if KindOf(err) != Clash {
			t.Errorf("foreign role: got %v, want Clash", err)
		}
		if _, err := pgx.Connect(testCtx(t), c.ConnString("wp_bob_pc_appdb", "keep", "appdb")); err != nil {
			t.Errorf("foreign role was modified: %v", err)
		}
	})
}

func TestIntegration_PasswordNotInServerLog(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{LogStatements: true})
	c.CreateAppDatabase(t, "appdb")
	p := newTestProvisioner(t, c, Options{})
	l := ensure(t, p, peer("hank@example.com", "laptop", "n10"), effective("appdb", authz.Readonly))
	pw := l.Password
	login(t, c, l)
	log := c.ServerLog(t)
	if !strings.Contains(log, "SCRAM-SHA-256$") {
		t.Fatalf("server log lacks the ALTER/CREATE ROLE statement; is log_statement on?")
	}
	if strings.Contains(log, pw) {
		t.Errorf("plaintext password found in the server log")
	}
}

func TestIntegration_MD5(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Auth: pgtest.AuthMD5})
	c.CreateAppDatabase(t, "appdb")
	p := newTestProvisioner(t, c, Options{})
	l := ensure(t, p, peer("ida@example.com", "laptop", "n11"), effective("appdb", authz.Readonly))
	conn := login(t, c, l)
	if !canExec(t, conn, "SELECT * FROM public.items") {
		t.Errorf("md5 login: SELECT refused")
	}
	stored := superQueryString(t, c, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = $1", l.Role)
	if !strings.HasPrefix(stored, "md5") {
		t.Errorf("stored password: got %.8q..., want an md5 hash", stored)
	}
}

// TestIntegration_ConcurrentEnsure runs 50 Ensure+login for one identity
// across two Provisioners (two pools, as two Waypoint instances would).
func TestIntegration_ConcurrentEnsure(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		ps := []*Provisioner{newTestProvisioner(t, c, Options{}), newTestProvisioner(t, c, Options{})}
		pr := peer("judy@example.com", "laptop", "n12")
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := testCtx(t)
				l, err := ps[i%2].Ensure(ctx, pr, effective("appdb", authz.Readonly, "public"))
				if err != nil {
					errs <- fmt.Errorf("ensure %d: %w", i, err)
					return
				}
				conn, err := pgx.Connect(ctx, c.ConnString(l.Role, l.Password, "appdb"))
				l.Release()
				if err != nil {
					errs <- fmt.Errorf("login %d: %w", i, err)
					return
				}
				conn.Close(ctx)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		s0, s1 := ps[0].Stats(), ps[1].Stats()
		t.Logf("instance stats: %+v / %+v", s0, s1)
		if got := s0.Provisioned + s1.Provisioned; got != n {
			t.Errorf("provisioned: got %d, want %d", got, n)
		}
	})
}

// waitNoSessions waits until no backend of roles is left in pg_stat_activity.
func waitNoSessions(t testing.TB, c *pgtest.Cluster, roles ...string) {
	t.Helper()
	conn := c.Super(t, "postgres")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(testCtx(t), "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)", roles).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of %v still open after 10s", n, roles)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expire makes role look unused since 2000: its last use in the lease
// table and its VALID UNTIL.
func expire(t testing.TB, c *pgtest.Cluster, role string) {
	c.Exec(t, "postgres", fmt.Sprintf("ALTER ROLE %s VALID UNTIL '2000-01-01'", plan.QuoteIdent(role)))
	c.Exec(t, "postgres", fmt.Sprintf("UPDATE %s SET last_used = '2000-01-01' WHERE role = %s", leaseTable, plan.QuoteLiteral(role)))
}

// TestIntegration_Cleanup is longer than 60 lines: one scenario, several
// roles in different states, checked after one pass.
func TestIntegration_Cleanup(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "cleandb")
		p := newTestProvisioner(t, c, Options{Prefix: "wpc_"})
		idle := ensure(t, p, peer("idle@example.com", "laptop", "c1"), effective("cleandb", authz.Readonly))
		login(t, c, idle).Close(testCtx(t))

		busy := ensure(t, p, peer("busy@example.com", "laptop", "c2"), effective("cleandb", authz.Readonly))
		busyConn := login(t, c, busy)

		ownerEff := effective("cleandb", authz.Admin, "public")
		ownerEff.SQL = []string{"GRANT INSERT ON public.audit_log TO {{.Role}}"}
		owner := ensure(t, p, peer("owner@example.com", "laptop", "c3"), ownerEff)
		ownerConn := login(t, c, owner)
		if _, err := ownerConn.Exec(testCtx(t), "CREATE TABLE public.owned_by_role (id int); INSERT INTO public.owned_by_role VALUES (1)"); err != nil {
			t.Fatalf("create table as admin-preset role: %v", err)
		}
		ownerConn.Close(testCtx(t))

		fresh := ensure(t, p, peer("fresh@example.com", "laptop", "c4"), effective("cleandb", authz.Readonly))
		login(t, c, fresh)

		c.Exec(t, "postgres", "CREATE ROLE wpc_foreign LOGIN VALID UNTIL '2000-01-01'")
		c.Exec(t, "postgres", "CREATE ROLE unrelated LOGIN VALID UNTIL '2000-01-01'")
		for _, r := range []string{idle.Role, busy.Role, owner.Role} {
			expire(t, c, r)
		}

		// A closed client's backend leaves pg_stat_activity a moment after
		// the client returns; Cleanup rightly counts it as active until then.
		waitNoSessions(t, c, idle.Role, owner.Role)
		res, err := p.Cleanup(testCtx(t))
		if err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if want := []string{idle.Role}; !slices.Equal(res.Dropped, want) {
			t.Errorf("dropped: got %v, want %v", res.Dropped, want)
		}
		if want := []string{owner.Role}; !slices.Equal(res.Deactivated, want) {
			t.Errorf("deactivated: got %v, want %v (it owns a table)", res.Deactivated, want)
		}
		if want := []string{busy.Role}; !slices.Equal(res.SkippedActive, want) {
			t.Errorf("skipped active: got %v, want %v", res.SkippedActive, want)
		}
		if res.Errors != 0 {
			t.Errorf("errors: got %d, want 0", res.Errors)
		}
		for _, r := range []string{busy.Role, fresh.Role, owner.Role, "wpc_foreign", "unrelated", "wpc_g_cleandb_public_readonly"} {
			if !c.RoleExists(t, r) {
				t.Errorf("role %s was dropped, want kept", r)
			}
		}
		if c.RoleExists(t, idle.Role) {
			t.Errorf("idle role %s still exists, want dropped", idle.Role)
		}
		if !canExec(t, busyConn, "SELECT 1") {
			t.Errorf("session of the kept role broke")
		}
		// The table stays the role's, never the admin's, and keeps its rows.
		if got := superQueryString(t, c, "cleandb", "SELECT tableowner::text FROM pg_tables WHERE tablename = 'owned_by_role'"); got != owner.Role {
			t.Errorf("owner of the deactivated role's table: got %q, want %q", got, owner.Role)
		}
		if got := superQueryString(t, c, "cleandb", "SELECT count(*)::text FROM public.owned_by_role"); got != "1" {
			t.Errorf("rows in the deactivated role's table: got %s, want 1", got)
		}
		// Deactivated: no login, no password, no membership, no privilege
		// from the grant (CONNECT, the raw SQL's INSERT), record inactive.
		if got := superQueryString(t, c, "cleandb", `SELECT format('%s %s %s %s %s', r.rolcanlogin, a.rolpassword IS NULL,
			(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid),
			EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) x WHERE d.datname = 'cleandb' AND x.grantee = r.oid),
			has_table_privilege(r.oid, 'public.audit_log', 'INSERT'))
			FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1`, owner.Role); got != "f t 0 f f" {
			t.Errorf("deactivated role: got login, no password, memberships, connect, insert = %s; want f t 0 f f", got)
		}
		comment := superQueryString(t, c, "postgres", "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", owner.Role)
		if rec, ours := plan.ParseRecord(comment); !ours || rec.State != plan.StateInactive || rec.Subject != "owner@example.com" {
			t.Errorf("deactivated role's record: got %s, want the owner's, state inactive", comment)
		}
		if s := p.Stats(); s.RolesDropped != 1 || s.Deactivated != 1 || s.SkippedActive != 1 || s.CleanupRuns != 1 {
			t.Errorf("stats: got %+v", s)
		}
		// The same identity comes back: the role is reactivated and its
		// table is its own again.
		back := ensure(t, p, peer("owner@example.com", "laptop", "c3"), ownerEff)
		backConn := login(t, c, back)
		defer backConn.Close(testCtx(t))
		if back.Role != owner.Role || !canExec(t, backConn, "INSERT INTO public.owned_by_role VALUES (2)") {
			t.Errorf("returning owner: got role %s, want %s with its table writable", back.Role, owner.Role)
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestIntegration_Check(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		p := newTestProvisioner(t, c, Options{})
		findings, err := p.Check(testCtx(t), []string{"appdb"}, []string{"public", "app", "private", "nosuch"})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		var text []string
		for _, f := range findings {
			text = append(text, f.Problem+" => "+f.Fix)
		}
		all := strings.Join(text, "\n")
		for _, want := range []string{"table private.secrets", "schema nosuch does not exist", "schema private"} {
			if !strings.Contains(all, want) {
				t.Errorf("findings lack %q:\n%s", want, all)
			}
		}
		for _, unwanted := range []string{"public.items", "app.orders", "CREATEROLE"} {
			if strings.Contains(all, unwanted) {
				t.Errorf("findings mention %q:\n%s", unwanted, all)
			}
		}
	})
}

// TestIntegration_CleanupFromTwoInstances: two provisioners (two Waypoint
// instances) cleaning up the same expired roles at the same time drop each
// role exactly once and report no errors.
func TestIntegration_CleanupFromTwoInstances(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "twocleandb")
		a := newTestProvisioner(t, c, Options{Prefix: "wp2_"})
		b := newTestProvisioner(t, c, Options{Prefix: "wp2_"})
		var roles []string
		for i := range 8 {
			l := ensure(t, a, peer(fmt.Sprintf("user%d@example.com", i), "box", fmt.Sprintf("n%d", i)), effective("twocleandb", authz.Readonly))
			l.Release()
			roles = append(roles, l.Role)
		}
		for _, r := range roles {
			expire(t, c, r)
		}
		type out struct {
			res CleanupResult
			err error
		}
		results := make(chan out, 2)
		for _, p := range []*Provisioner{a, b} {
			go func() {
				res, err := p.Cleanup(testCtx(t))
				results <- out{res, err}
			}()
		}
		dropped := map[string]int{}
		for range 2 {
			o := <-results
			if o.err != nil || o.res.Errors != 0 {
				t.Errorf("Cleanup: err %v, %d errors; want none", o.err, o.res.Errors)
			}
			for _, r := range o.res.Dropped {
				dropped[r]++
			}
		}
		for _, r := range roles {
			if dropped[r] != 1 {
				t.Errorf("role %s dropped %d times across both instances, want exactly 1", r, dropped[r])
			}
			if c.RoleExists(t, r) {
				t.Errorf("role %s still exists", r)
			}
		}
	})
}

// TestIntegration_LeaseReleaseRetried holds the lease row locked for longer
// than one release may take (unlockTimeout), as a busy or briefly stuck
// admin database would: the first release times out, and the lease must
// still end once the row is free, not stay held until leaseTTL and refuse
// every login of the identity until then.
func TestIntegration_LeaseReleaseRetried(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "appdb")
		var logs testkit.SyncBuffer
		p := newTestProvisioner(t, c, Options{Logger: slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), nil))})
		pr, eff := peer("lena@example.com", "laptop", "n31"), effective("appdb", authz.Readonly, "public")
		l := ensure(t, p, pr, eff)

		blocker := c.Super(t, "postgres")
		ctx := testCtx(t)
		tx, err := blocker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var locked int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+leaseTable+" WHERE role = $1 FOR UPDATE) r", l.Role).Scan(&locked); err != nil || locked != 1 {
			t.Fatalf("lock the lease row of %s: %d rows, %v", l.Role, locked, err)
		}
		l.Release()
		// The release is blocked on the row until its first attempt fails.
		testkit.WaitFor(t, 3*unlockTimeout, "the first release to fail", func() bool {
			return strings.Contains(logs.String(), "could not release role lease; retrying")
		})
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		p.waitUnlocks(ctx)
		if got := superQueryString(t, c, "postgres", "SELECT (held_until = '-infinity')::text FROM "+leaseTable+" WHERE role = $1", l.Role); got != "true" {
			t.Fatalf("lease of %s still held after its release was retried (held_until = '-infinity' is %s)", l.Role, got)
		}
		login(t, c, ensure(t, p, pr, eff))
	})
}
