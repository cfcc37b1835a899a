package proxy_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// instance is a second Waypoint (its own tailnet node, provisioner and
// server) on the rig's tailnet, in front of the same PostgreSQL.
type instance struct {
	srv  *proxy.Server
	addr string
}

// redisRig starts two Waypoint instances sharing one Redis, as two
// processes would: r's own server is replaced by one using Redis.
func redisRig(t *testing.T, pg *pgtest.Cluster, redisAddr string) (*rig, *instance) {
	t.Helper()
	newStore := func() coord.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := coord.NewRedis(ctx, coord.RedisOptions{Addr: redisAddr, LeaseTTL: 3 * time.Second, DialTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatalf("coord.NewRedis: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	r := newRig(t, pg, func(o *proxy.Options) { o.Coord = newStore() })
	node := r.tn.StartNode(t, "waypoint-db-2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prov, err := provision.New(ctx, provision.Options{AdminConnString: pg.ConnString(pg.AdminUser, pg.AdminPassword, "postgres")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	srv, err := proxy.New(proxy.Options{
		Listener: listenerName, Resolver: node, Provisioner: proxy.RoleProvisioner{Provisioner: prov},
		Backend: proxy.Backend{Addr: pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
		Logger:  slog.New(slog.NewTextHandler(r.logs, nil)),
		Coord:   newStore(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := node.Listen("tcp", ":5432")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r, &instance{srv: srv, addr: r.tn.ProxyAddr(node, 5432)}
}

func (r *rig) connectTo(c *tailnettest.Client, addr string) (*pgx.Conn, error) {
	cfg := r.config(c, "appdb", nil)
	cfg.Host, cfg.Port = strings.Split(addr, ":")[0], 5432
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// TestIntegration_Instances_SharedLimitAndRedisDown: two Waypoint instances
// sharing Redis enforce max_conns=2 across both; with Redis stopped new
// connections are refused with a clear message while open sessions go on.
func TestIntegration_Instances_SharedLimitAndRedisDown(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	rs := redistest.Start(t)
	r, b := redisRig(t, pg, rs.Addr())
	g := `{"limits":{"max_conns":2},` + strings.TrimPrefix(readonlyAppdb, "{")
	alice := r.client("alice@example.com", "laptop", g)

	c1, err := r.connectTo(alice, r.addr)
	if err != nil {
		t.Fatalf("first connection (instance A): %v", err)
	}
	defer c1.Close(context.Background())
	c2, err := r.connectTo(alice, b.addr)
	if err != nil {
		t.Fatalf("second connection (instance B): %v", err)
	}
	defer c2.Close(context.Background())
	for _, addr := range []string{r.addr, b.addr} {
		_, err := r.connectTo(alice, addr)
		if pe := pgError(err); pe == nil || pe.Code != "53300" {
			t.Errorf("third connection via %s: got %v, want 53300", addr, err)
		}
	}

	rs.Stop(t)
	bob := r.client("bob@example.com", "desktop", readonlyAppdb)
	_, err = r.connectTo(bob, b.addr)
	pe := pgError(err)
	if pe == nil || pe.Code != "58000" || !strings.Contains(pe.Message, "shared state") {
		t.Errorf("with Redis down: got %v, want 58000 saying the shared state is unreachable", err)
	}
	if roles := pg.Roles(t, "wp_bob"); len(roles) != 0 {
		t.Errorf("roles created while refusing: %v", roles)
	}
	var one int
	if err := c1.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
		t.Errorf("open session broke when Redis went down: %v", err)
	}
}

// TestIntegration_Instances_ConcurrentSameRole: the same identity connecting
// through both instances at once always gets a working session.
func TestIntegration_Instances_ConcurrentSameRole(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	rs := redistest.Start(t)
	r, b := redisRig(t, pg, rs.Addr())
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		addr := r.addr
		if i%2 == 1 {
			addr = b.addr
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.connectTo(alice, addr)
			if err == nil {
				var one int
				err = c.QueryRow(context.Background(), "select 1").Scan(&one)
				c.Close(context.Background())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Errorf("connection failed: %v", err)
		}
	}
	t.Logf("%d/%d concurrent connections for one role across two instances succeeded", n-failed, n)
}

// TestIntegration_Instances_CancelRouted: a CancelRequest that lands on the
// other instance reaches the session's instance through Redis.
func TestIntegration_Instances_CancelRouted(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	rs := redistest.Start(t)
	r, b := redisRig(t, pg, rs.Addr())
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	conn, err := r.connectTo(alice, r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pid, secret := conn.PgConn().PID(), conn.PgConn().SecretKey()
	done := runQuery(conn, "select pg_sleep(30)")
	waitPgSleep(t, pg, pid)
	sendCancelTo(t, r, b.addr, alice, pid, secret)
	select {
	case err := <-done:
		if got := sqlstate(err); got != "57014" {
			t.Fatalf("got %v, want 57014 after a cancel routed through instance B", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the query was not cancelled through the other instance")
	}
}
