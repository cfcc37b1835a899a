package pgtest

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestCreateAppDatabase checks, on every version, that the admin owns the
// fixture's objects and can grant on them but not on private.secrets.
func TestCreateAppDatabase(t *testing.T) {
	t.Parallel()
	EachVersion(t, Options{}, func(t *testing.T, c *Cluster) {
		c.CreateAppDatabase(t, "appdb_fixture")
		c.CreateAppDatabase(t, "appdb_fixture") // second call is a no-op

		admin := mustConnectTCP(t, c, c.AdminUser, c.AdminPassword, "appdb_fixture")
		for sql, want := range map[string]string{
			"SELECT count(*)::text FROM public.items":     "3",
			"SELECT count(*)::text FROM app.orders":       "2",
			"SELECT count(*)::text FROM public.audit_log": "0",
			`SELECT string_agg(c.relname || '=' || pg_get_userbyid(c.relowner), ',' ORDER BY c.relname)
			   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			  WHERE n.nspname IN ('public', 'app') AND c.relkind IN ('r', 'S')`: "audit_log=waypoint_admin,audit_log_id_seq=waypoint_admin," +
				"items=waypoint_admin,items_id_seq=waypoint_admin,orders=waypoint_admin,orders_id_seq=waypoint_admin",
			"SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'":                                       "waypoint_admin",
			"SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'private'":                                   "postgres",
			"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()":                             "postgres",
			"SELECT has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION, CREATE WITH GRANT OPTION')::text": "true",
			"SELECT has_schema_privilege('public', 'USAGE WITH GRANT OPTION, CREATE WITH GRANT OPTION')::text":               "true",
			"SELECT has_schema_privilege('private', 'USAGE')::text":                                                          "false",
		} {
			if got := queryString(t, admin, sql); got != want {
				t.Errorf("as admin: %s\ngot %q, want %q", sql, got, want)
			}
		}

		// The admin creates the grantee and grants on the fixture; the
		// cleanup revokes as the admin, because only the grantor's REVOKE
		// (not the superuser's DROP OWNED) removes the admin's grants.
		grantee := "pgtest_grantee_" + strings.ToLower(rand.Text()[:8])
		if _, err := admin.Exec(t.Context(), "CREATE ROLE "+grantee); err != nil {
			t.Fatalf("as admin: create role: %v", err)
		}
		grants := []struct{ privileges, object string }{
			{"SELECT", "public.items"},
			{"USAGE, SELECT", "SEQUENCE public.items_id_seq"},
			{"USAGE", "SCHEMA app"},
			{"INSERT", "app.orders"},
			{"USAGE", "SCHEMA public"},
			{"CONNECT", "DATABASE appdb_fixture"},
		}
		t.Cleanup(func() {
			for _, g := range grants {
				c.Exec(t, "appdb_fixture", "SET ROLE "+c.AdminUser+"; REVOKE "+g.privileges+" ON "+g.object+" FROM "+grantee)
			}
			c.Exec(t, "postgres", "DROP ROLE "+grantee)
		})
		for _, g := range grants {
			sql := "GRANT " + g.privileges + " ON " + g.object + " TO " + grantee
			if _, err := admin.Exec(t.Context(), sql); err != nil {
				t.Errorf("as admin: %s: %v", sql, err)
			}
		}
		_, err := admin.Exec(t.Context(), "GRANT SELECT ON private.secrets TO "+grantee)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42501" {
			t.Errorf("as admin: grant on private.secrets: got %v, want SQLSTATE 42501", err)
		}
	})
}
