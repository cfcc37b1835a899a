package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// spareRig is a rig with spare backends on.
func spareRig(t *testing.T, pg *pgtest.Cluster, max int) *rig {
	return newRig(t, pg, func(o *proxy.Options) {
		o.Spares = proxy.Spares{PerRole: 1, Max: max, IdleTimeout: time.Minute}
	})
}

// waitSpares waits until the server holds n idle spares.
func waitSpares(t *testing.T, r *rig, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d idle spare backend(s)", n), func() bool {
		idle, _, _ := r.srv.SpareStats()
		return idle == n
	})
}

// reportedParams are the ParameterStatus names PostgreSQL 15 and 18 report
// at startup (those a version lacks read "").
var reportedParams = []string{
	"application_name", "client_encoding", "DateStyle", "default_transaction_read_only", "in_hot_standby",
	"integer_datetimes", "IntervalStyle", "is_superuser", "scram_iterations", "search_path", "server_encoding",
	"server_version", "session_authorization", "standard_conforming_strings", "TimeZone",
}

// clientParams are startup parameters a client might send, including some
// inside options.
var clientParams = map[string]string{
	"application_name": "report-job",
	"DateStyle":        "SQL, DMY",
	"options":          "-c work_mem=8MB -c IntervalStyle=iso_8601",
	"TimeZone":         "Europe/Paris",
}

// statusOf returns conn's ParameterStatus values for reportedParams.
func statusOf(conn *pgx.Conn) map[string]string {
	out := map[string]string{}
	for _, k := range reportedParams {
		out[k] = conn.PgConn().ParameterStatus(k)
	}
	return out
}

// TestSpares_HandOff: the second connection of an identity gets a spare
// backend, with its own parameters applied; what it sees (ParameterStatus,
// settings) equals what a normal login with the same parameters sees, and
// nothing of the first session is visible in it.
func TestSpares_HandOff(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		plain := newRig(t, pg, nil)
		r := spareRig(t, pg, 8)
		const login = "spare-user@example.com"
		user := r.client(login, "desk", readonlyAppdb)
		plainUser := plain.client(login, "desk", readonlyAppdb)

		first := r.mustConnect(user, "appdb", nil)
		for _, sql := range []string{"SET work_mem = '1MB'", "CREATE TEMP TABLE leak (id int)", "PREPARE leaky AS SELECT 1", "LISTEN leaky"} {
			if err := execSQL(first, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		waitSpares(t, r, 1)
		if n := superString(t, pg, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'waypoint spare'"); n != "1" {
			t.Errorf("idle spares in pg_stat_activity (application_name 'waypoint spare'): got %s, want 1", n)
		}
		first.Close(context.Background())

		second := r.mustConnect(user, "appdb", clientParams)
		if _, hits, _ := r.srv.SpareStats(); hits != 1 {
			t.Fatalf("spare hits after the second connection: got %d, want 1", hits)
		}
		reference := plain.mustConnect(plainUser, "appdb", clientParams)
		got, want := statusOf(second), statusOf(reference)
		for _, k := range reportedParams {
			if got[k] != want[k] {
				t.Errorf("ParameterStatus %s: spare %q, normal login %q", k, got[k], want[k])
			}
		}
		var workMem, intervalStyle, app, leak string
		var prepared, listening int
		err := second.QueryRow(context.Background(), `SELECT current_setting('work_mem'), current_setting('IntervalStyle'),
			current_setting('application_name'), coalesce(to_regclass('pg_temp.leak')::text, ''),
			(SELECT count(*) FROM pg_prepared_statements WHERE name = 'leaky'), (SELECT count(*) FROM pg_listening_channels())`).
			Scan(&workMem, &intervalStyle, &app, &leak, &prepared, &listening)
		if err != nil {
			t.Fatal(err)
		}
		if workMem != "8MB" || intervalStyle != "iso_8601" || app != "report-job" {
			t.Errorf("settings on the spare: work_mem %s, IntervalStyle %s, application_name %s; want 8MB, iso_8601, report-job", workMem, intervalStyle, app)
		}
		if leak != "" || prepared != 0 || listening != 0 {
			t.Errorf("state of the previous session visible: temp table %q, %d prepared, %d channels", leak, prepared, listening)
		}
		if roleOf(t, second) != roleOf(t, reference) {
			t.Errorf("spare role %s, normal role %s: want the same", roleOf(t, second), roleOf(t, reference))
		}
	})
}

// TestSpares_NotForOthers: a spare is only handed to the same identity,
// database and grant; a grant change (revalidation) closes every spare;
// startup options a spare cannot reproduce take the normal path.
func TestSpares_NotForOthers(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := spareRig(t, pg, 8)
		alice := r.client("spare-alice@example.com", "desk", readonlyAppdb)
		bob := r.client("spare-bob@example.com", "desk", readonlyAppdb)
		r.mustConnect(alice, "appdb", nil).Close(context.Background())
		waitSpares(t, r, 1)

		bobConn := r.mustConnect(bob, "appdb", nil) // another identity: a miss
		if _, hits, _ := r.srv.SpareStats(); hits != 0 {
			t.Errorf("another identity got alice's spare (hits %d)", hits)
		}
		if roleOf(t, bobConn) == "" {
			t.Fatal("bob has no role")
		}
		waitSpares(t, r, 2)
		// Options only a real start can apply: normal path.
		conn := r.mustConnect(alice, "appdb", map[string]string{"options": "-c work_mem=2MB -e"})
		if _, hits, _ := r.srv.SpareStats(); hits != 0 {
			t.Errorf("a connection with non -c options got a spare (hits %d)", hits)
		}
		conn.Close(context.Background())
		// A grant change: revalidation closes the spares, and the next
		// connection with the new grant does not get an old one.
		r.grant(alice, grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readwrite")}))
		r.srv.Revalidate(context.Background())
		if idle, _, _ := r.srv.SpareStats(); idle != 0 {
			t.Errorf("idle spares after revalidation: got %d, want 0", idle)
		}
		waitFor(t, "spare sessions to end on the backend", func() bool {
			return superString(t, pg, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'waypoint spare'") == "0"
		})
		rw := r.mustConnect(alice, "appdb", nil)
		if err := execSQL(rw, "INSERT INTO public.items (name) VALUES ('spare-rw')"); err != nil {
			t.Errorf("after the upgrade to readwrite: %v", err)
		}
	})
}

// TestSpares_Bounded: many identities connecting at once never hold more
// spares than Max, on the proxy or on the backend.
func TestSpares_Bounded(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	const max, identities = 3, 8
	r := spareRig(t, pg, max)
	var wg sync.WaitGroup
	errs := make(chan error, identities)
	for i := range identities {
		c := r.client(fmt.Sprintf("spare-storm%02d@example.com", i), "box", readonlyAppdb)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := r.connect(c, "appdb", nil)
			if err != nil {
				errs <- err
				return
			}
			conn.Close(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("storm connection: %v", err)
	}
	waitFor(t, "the background spares to finish opening", func() bool { return r.srv.SparesOpening() == 0 })
	if idle, _, _ := r.srv.SpareStats(); idle > max {
		t.Errorf("idle spares: got %d, want at most %d", idle, max)
	}
	waitFor(t, "at most Max spare sessions on the backend", func() bool {
		var n int
		fmt.Sscan(superString(t, pg, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'waypoint spare'"), &n)
		return n <= max
	})
}

// TestSpares_Cleanup: a spare never keeps its role from cleanup. A spare
// lives at most IdleTimeout after it was opened, and opening it marks the
// role used; configuration requires spare_idle_timeout < user_ttl, so by the
// time a role has been unused for user_ttl its spare is gone. Here the spare
// expires, then the role is made idle, and cleanup drops it (it owns
// nothing) instead of skipping it as in use.
func TestSpares_Cleanup(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, func(o *proxy.Options) {
			o.Spares = proxy.Spares{PerRole: 1, Max: 4, IdleTimeout: time.Second}
		})
		user := r.client("spare-cleanup@example.com", "desk", readonlyAppdb)
		conn := r.mustConnect(user, "appdb", nil)
		role := roleOf(t, conn)
		conn.Close(context.Background())
		waitSpares(t, r, 1) // opened after the connection, then idle for 1 s
		waitSpares(t, r, 0)
		makeIdle(t, r, role) // also waits until the role has no session left
		res, err := r.prov.Cleanup(context.Background())
		if err != nil || res.Errors != 0 {
			t.Fatalf("Cleanup: %v, %d errors", err, res.Errors)
		}
		if !contains(res.Dropped, role) || contains(res.SkippedActive, role) {
			t.Errorf("Cleanup: dropped %v, skipped as active %v; want %s dropped", res.Dropped, res.SkippedActive, role)
		}
	})
}

// TestSpares_BoundUnderStormOf100: 100 identities connect at once through a
// real provisioner and PostgreSQL (their identities come from a fake
// tailnet that knows each by its loopback address, so that 100 callers do
// not need 100 tailnet nodes); with a bound of 8, never more than 8 spares
// are idle on the proxy or open on the backend, and every connection
// succeeds. (With the bound lifted, 100 spares are left idle.)
func TestSpares_BoundUnderStormOf100(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		const identities, max = 100, 8
		pg.CreateAppDatabase(t, "appdb")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		prov, err := provision.New(ctx, provision.Options{AdminConnString: pg.ConnString(pg.AdminUser, pg.AdminPassword, "postgres")})
		if err != nil {
			t.Fatalf("provision.New: %v", err)
		}
		t.Cleanup(prov.Close)
		tn := &fakeTailnet{peers: map[string]identity.Peer{}}
		ips := make([]string, identities)
		for i := range identities {
			ips[i] = fmt.Sprintf("127.0.1.%d", i+1)
			tn.set(ips[i], unitPeer(fmt.Sprintf("storm100-%03d@example.com", i), "box", readonlyAppdb))
		}
		logs := &testkit.SyncBuffer{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := startServer(t, proxy.Options{
			Listener: listenerName, Resolver: tn, Provisioner: proxy.RoleProvisioner{Provisioner: prov},
			Backend: proxy.Backend{Addr: pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Policy: authz.Policy{AdminDatabase: "postgres"},
			Spares: proxy.Spares{PerRole: 1, Max: max, IdleTimeout: time.Minute},
		}, ln)
		var wg sync.WaitGroup
		for _, ip := range ips {
			wg.Go(func() {
				cfg, err := pgconn.ParseConfig(fmt.Sprintf("postgres://ignored@%s/appdb?sslmode=disable", ln.Addr()))
				if err != nil {
					t.Error(err)
					return
				}
				cfg.DialFunc = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
				cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
				defer ccancel()
				conn, err := pgconn.ConnectConfig(cctx, cfg)
				if err != nil {
					t.Errorf("connect from %s: %v", ip, err)
					return
				}
				if _, err := conn.Exec(cctx, "SELECT 1").ReadAll(); err != nil {
					t.Errorf("SELECT 1 from %s: %v", ip, err)
				}
				conn.Close(cctx)
			})
		}
		wg.Wait()
		waitFor(t, "the background spares to finish opening", func() bool { return srv.SparesOpening() == 0 })
		if idle, _, _ := srv.SpareStats(); idle > max {
			t.Errorf("idle spares: got %d, want at most %d", idle, max)
		}
		waitFor(t, "at most Max spare sessions on the backend", func() bool {
			var n int
			fmt.Sscan(superString(t, pg, "postgres", "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'waypoint spare'"), &n)
			return n <= max
		})
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
}
