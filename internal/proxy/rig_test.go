package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const listenerName = "pg-main"

// rig is one Waypoint listener on an in-process tailnet in front of a real
// PostgreSQL: the whole production path, with test clients as tailnet nodes.
type rig struct {
	t    *testing.T
	tn   *tailnettest.Tailnet
	node *tailnet.Node
	pg   *pgtest.Cluster
	srv  *proxy.Server
	prov *provision.Provisioner
	addr string // the listener's tailnet address
	logs *testkit.SyncBuffer
}

// newRig starts a tailnet, a proxy node and a Waypoint listener for pg. mod,
// if set, adjusts the proxy options before the server is built.
func newRig(t *testing.T, pg *pgtest.Cluster, mod func(*proxy.Options)) *rig {
	t.Helper()
	return newRigWith(t, pg, nil, mod)
}

// newRigWith is newRig with provMod, if set, adjusting the provisioner's
// options. The admin database is "postgres", and the policy says so (as
// serve's does), so that "*" grants never reach it.
func newRigWith(t *testing.T, pg *pgtest.Cluster, provMod func(*provision.Options), mod func(*proxy.Options)) *rig {
	t.Helper()
	pg.CreateAppDatabase(t, "appdb")
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint-db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provOpts := provision.Options{
		AdminConnString: pg.ConnString(pg.AdminUser, pg.AdminPassword, "postgres"),
	}
	if provMod != nil {
		provMod(&provOpts)
	}
	prov, err := provision.New(ctx, provOpts)
	if err != nil {
		t.Fatalf("provision.New: %v", err)
	}
	t.Cleanup(prov.Close)
	logs := &testkit.SyncBuffer{}
	opts := proxy.Options{
		Listener:    listenerName,
		Resolver:    node,
		Provisioner: proxy.RoleProvisioner{Provisioner: prov},
		Backend:     proxy.Backend{Addr: pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		Policy:      authz.Policy{AdminDatabase: "postgres"},
	}
	if mod != nil {
		mod(&opts)
	}
	ln, err := node.Listen("tcp", ":5432")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := startServer(t, opts, ln)
	return &rig{t: t, tn: tn, node: node, pg: pg, srv: srv, prov: prov,
		addr: tn.ProxyAddr(node, 5432), logs: logs}
}

// startServer builds a Server from opts and serves ln with it until the
// test's cleanup closes it.
func startServer(t *testing.T, opts proxy.Options, ln net.Listener) *proxy.Server {
	t.Helper()
	srv, err := proxy.New(opts)
	if err != nil {
		ln.Close()
		t.Fatalf("proxy.New: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// client starts a tailnet client node for login on machine with the given
// grant objects (none: no grant at all).
func (r *rig) client(login, machine string, grants ...string) *tailnettest.Client {
	r.t.Helper()
	c := r.tn.NewClient(r.t, login, machine)
	r.grant(c, grants...)
	return c
}

func (r *rig) grant(c *tailnettest.Client, grants ...string) {
	r.t.Helper()
	var vals []json.RawMessage
	for _, g := range grants {
		if !json.Valid([]byte(g)) {
			r.t.Fatalf("invalid grant JSON: %s", g)
		}
		vals = append(vals, json.RawMessage(g))
	}
	r.tn.SetGrant(c, tailnet.DefaultCapability, vals...)
}

// config is a pgx configuration for database that dials through c. The user
// name and password are deliberately bogus: Waypoint ignores them.
func (r *rig) config(c *tailnettest.Client, database string, params map[string]string) *pgx.ConnConfig {
	r.t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://ignored:ignored@%s/%s?sslmode=disable&connect_timeout=20", r.addr, database))
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.DialFunc = stableAddrDialer(r.tn.Dialer(c))
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	return cfg
}

// connect opens a pgx session through Waypoint as c.
func (r *rig) connect(c *tailnettest.Client, database string, params map[string]string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, r.config(c, database, params))
}

func (r *rig) mustConnect(c *tailnettest.Client, database string, params map[string]string) *pgx.Conn {
	r.t.Helper()
	conn, err := r.connect(c, database, params)
	if err != nil {
		r.t.Fatalf("connect as %s to %s: %v\nproxy log:\n%s", c.Login, database, err, r.logs.String())
	}
	r.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// forward exposes the listener on a 127.0.0.1 port that tunnels through c,
// with the same code as `waypoint tunnel`, so that libpq clients (psql) can
// reach it. Stopped at cleanup.
func (r *rig) forward(c *tailnettest.Client) string {
	r.t.Helper()
	return tailnettest.Forward(r.t, tunnel.Options{Target: r.addr, Dial: r.tn.Dialer(c), DialTimeout: 20 * time.Second})
}

// stableAddrDialer wraps dial so that the returned connections keep
// reporting their addresses after Close: tsnet's connections return a nil
// RemoteAddr once closed, and pgx dereferences it when it sends a cancel
// request while closing.
func stableAddrDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &addrConn{Conn: c, local: c.LocalAddr(), remote: c.RemoteAddr()}, nil
	}
}

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// sqlstate returns the SQLSTATE of err, or "" if it carries none.
func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// grantJSON builds a grant object for the rig's listener.
func grantJSON(databases map[string]authz.DatabaseGrant) string {
	g := authz.Grant{Backends: map[string]authz.Backend{
		listenerName: {PG: &authz.PGBackend{Databases: databases}},
	}}
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func dbGrant(perms ...string) authz.DatabaseGrant { return authz.DatabaseGrant{Permissions: perms} }
