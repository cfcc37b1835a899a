package provision

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// validUntil reads role's VALID UNTIL as the superuser.
func validUntil(t testing.TB, c *pgtest.Cluster, role string) time.Time {
	t.Helper()
	var until time.Time
	if err := c.Super(t, "postgres").QueryRow(testCtx(t), "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", role).Scan(&until); err != nil {
		t.Fatalf("read VALID UNTIL of %s: %v", role, err)
	}
	return until
}

// TestIntegration_Reconcile_LiveSession: a live session whose role is
// reconciled readwrite→readonly gets 42501 on its next INSERT, and the
// password is not rotated (a second login with it still works).
func TestIntegration_Reconcile_LiveSession(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "livedb")
		p := newTestProvisioner(t, c, Options{})
		pr := peer("erin@example.com", "laptop", "l1")
		l := ensure(t, p, pr, effective("livedb", authz.Readwrite, "public"))
		role, password := l.Role, l.Password
		live := login(t, c, l)
		if !canExec(t, live, "INSERT INTO public.items (name) VALUES ('before')") {
			t.Fatalf("readwrite session cannot insert")
		}
		if err := p.Reconcile(testCtx(t), pr, effective("livedb", authz.Readonly, "public")); err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		if canExec(t, live, "INSERT INTO public.items (name) VALUES ('after')") {
			t.Errorf("INSERT on the live session after reconcile to readonly: allowed, want 42501")
		}
		if !canExec(t, live, "SELECT * FROM public.items") {
			t.Errorf("SELECT on the live session after reconcile to readonly: refused")
		}
		again, err := pgx.Connect(testCtx(t), c.ConnString(role, password, "livedb"))
		if err != nil {
			t.Fatalf("login with the password from before Reconcile: %v (Reconcile must not rotate)", err)
		}
		again.Close(testCtx(t))
		if got := p.Stats().Reconciles; got != 1 {
			t.Errorf("Stats.Reconciles: got %d, want 1", got)
		}
		// A role that does not exist: nothing to do, no error, nothing created.
		ghost := peer("ghost@example.com", "laptop", "l2")
		if err := p.Reconcile(testCtx(t), ghost, effective("livedb", authz.Readonly, "public")); err != nil {
			t.Errorf("Reconcile of a role that does not exist: %v", err)
		}
		if c.RoleExists(t, "wp_ghost_laptop_livedb") {
			t.Errorf("Reconcile created a role")
		}
	})
}

// TestIntegration_Terminate: the admin (not a superuser) ends a Waypoint
// role's backend, refuses other backends, and ignores a vanished one.
func TestIntegration_Terminate(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "termdb")
		p := newTestProvisioner(t, c, Options{})
		conn := login(t, c, ensure(t, p, peer("frank@example.com", "laptop", "t1"), effective("termdb", authz.Readonly, "public")))
		pid := conn.PgConn().PID()
		if err := p.Terminate(testCtx(t), pid); err != nil {
			t.Fatalf("Terminate(%d): %v", pid, err)
		}
		if _, err := conn.Exec(testCtx(t), "SELECT 1"); err == nil {
			t.Errorf("query on the terminated session: got nil error")
		}
		if err := p.Terminate(testCtx(t), pid); err != nil {
			t.Errorf("Terminate of a backend that is gone: got %v, want nil", err)
		}
		super := c.Super(t, "postgres")
		if err := p.Terminate(testCtx(t), super.PgConn().PID()); err == nil || !strings.Contains(err.Error(), "not a Waypoint session") {
			t.Errorf("Terminate of the superuser's backend: got %v, want a refusal", err)
		}
		if err := super.Ping(testCtx(t)); err != nil {
			t.Errorf("superuser session after the refused Terminate: %v", err)
		}
		if got := p.Stats().Terminated; got != 1 {
			t.Errorf("Stats.Terminated: got %d, want 1", got)
		}
	})
}

// TestIntegration_Touch records use for Waypoint roles only, and never
// extends VALID UNTIL (which would keep a password the role set itself
// working).
func TestIntegration_Touch(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "touchdb")
		p := newTestProvisioner(t, c, Options{Prefix: "wpt_", TTL: time.Hour})
		a := ensure(t, p, peer("gina@example.com", "laptop", "u1"), effective("touchdb", authz.Readonly))
		b := ensure(t, p, peer("hank@example.com", "laptop", "u2"), effective("touchdb", authz.Readonly))
		a.Release()
		b.Release()
		c.Exec(t, "postgres", "CREATE ROLE wpt_by_hand LOGIN VALID UNTIL '2000-01-01'")
		t.Cleanup(func() { c.Exec(t, "postgres", "DROP ROLE IF EXISTS wpt_by_hand") })
		for _, r := range []string{a.Role, b.Role} {
			expire(t, c, r)
		}
		p.waitUnlocks(testCtx(t))
		if err := p.Touch(testCtx(t), []string{a.Role, b.Role, a.Role, "wpt_by_hand", "wpt_no_such_role", "postgres"}); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		for _, r := range []string{a.Role, b.Role} {
			used := superQueryString(t, c, "postgres", "SELECT (last_used > now() - interval '1 minute')::text FROM "+leaseTable+" WHERE role = $1", r)
			if used != "true" {
				t.Errorf("last use of %s after Touch: want within the last minute", r)
			}
			if got := validUntil(t, c, r); got.Year() != 2000 {
				t.Errorf("VALID UNTIL of %s after Touch: got %v, want unchanged (2000)", r, got)
			}
		}
		if got := validUntil(t, c, "wpt_by_hand"); got.Year() != 2000 {
			t.Errorf("VALID UNTIL of a role without owner record: got %v, want untouched (2000)", got)
		}
		if err := p.Touch(testCtx(t), nil); err != nil {
			t.Errorf("Touch(nil): %v", err)
		}
	})
}

// TestIntegration_WarmEnsure: a repeated Ensure takes the warm path (one
// statement, no reconcile), yet a table created meanwhile is usable on the
// next connection and a grant changed by another instance is noticed.
func TestIntegration_WarmEnsure(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, c *pgtest.Cluster) {
		c.CreateAppDatabase(t, "warmdb")
		p := newTestProvisioner(t, c, Options{})
		other := newTestProvisioner(t, c, Options{}) // a second instance
		pr := peer("ivy@example.com", "laptop", "w1")
		rw := effective("warmdb", authz.Readwrite, "public")

		login(t, c, ensure(t, p, pr, rw)).Close(testCtx(t))
		before := validUntil(t, c, "wp_ivy_laptop_warmdb")
		conn := login(t, c, ensure(t, p, pr, rw))
		if got := p.Stats().Warm; got != 1 {
			t.Fatalf("Stats.Warm after a repeated Ensure: got %d, want 1", got)
		}
		if !validUntil(t, c, "wp_ivy_laptop_warmdb").After(before) {
			t.Errorf("warm Ensure did not push VALID UNTIL forward")
		}
		if !canExec(t, conn, "INSERT INTO public.items (name) VALUES ('warm')") {
			t.Errorf("warm login cannot insert")
		}

		c.Exec(t, "warmdb", fmt.Sprintf("CREATE TABLE public.warm_later (id int); ALTER TABLE public.warm_later OWNER TO %s", c.AdminUser))
		conn = login(t, c, ensure(t, p, pr, rw))
		if !canExec(t, conn, "INSERT INTO public.warm_later VALUES (1)") {
			t.Errorf("table created after provisioning: not usable on the next connection")
		}
		if got := p.Stats().Warm; got != 1 {
			t.Errorf("Stats.Warm after a new table: got %d, want still 1 (reconciled)", got)
		}

		// Another instance reconciles the role to readonly; this instance,
		// still asked for readwrite, must notice and restore readwrite.
		login(t, c, ensure(t, other, pr, effective("warmdb", authz.Readonly, "public"))).Close(testCtx(t))
		conn = login(t, c, ensure(t, p, pr, rw))
		if !canExec(t, conn, "INSERT INTO public.items (name) VALUES ('back')") {
			t.Errorf("after another instance's readonly reconcile, readwrite Ensure: INSERT refused")
		}
		if got := p.Stats().Warm; got != 1 {
			t.Errorf("Stats.Warm after another instance changed the grant: got %d, want still 1", got)
		}
		// And the next one is warm again.
		login(t, c, ensure(t, p, pr, rw)).Close(testCtx(t))
		if got := p.Stats().Warm; got != 2 {
			t.Errorf("Stats.Warm: got %d, want 2", got)
		}
	})
}
