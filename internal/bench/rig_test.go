package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

const (
	// listenerName is Waypoint's listener, the key grants use.
	listenerName = "pg-bench"
	// benchDB is the database every figure is measured against.
	benchDB = "benchdb"
	// directUser is the password role clients log in as through the L4
	// baseline; it holds the same privileges as Waypoint's readonly preset
	// and PostgreSQL's default SCRAM cost (4096 iterations): what a user
	// connecting directly pays.
	directUser = "bench_direct"
	// matchedUser is the same, with a verifier of Waypoint's own SCRAM
	// cost (provision.DefaultSCRAMIterations): the like-for-like baseline
	// that isolates the proxy's overhead.
	matchedUser = "bench_matched"
	// pgPort is the port both proxies listen on in the tailnet.
	pgPort = 5432
	// spareAddrPort is a second Waypoint listener on Waypoint's node, the
	// same in every way but with spare backends on (one per role).
	sparePort = 5433
	// warmupPort is a port on Waypoint's node that accepts and closes, used
	// to set up a client's tailnet path before its first measured connect.
	warmupPort = 7
	// connectTimeout bounds one measured connection (and each storm member).
	connectTimeout = 30 * time.Second
)

// harness is the whole real path in one process: an in-process tailnet
// (control + DERP), a throwaway PostgreSQL 15, a Waypoint listener on its
// own tailnet node, and the baseline — a plain L4 forwarder on a second
// tailnet node that pipes bytes to PostgreSQL with no auth.
type harness struct {
	t   *testing.T
	cfg config

	pg   *pgtest.Cluster
	tn   *tailnettest.Tailnet
	prov *provision.Provisioner
	srv  *proxy.Server
	// spareSrv is Waypoint with spare backends, on sparePort of wpNode.
	spareSrv *proxy.Server
	l4       *l4Forwarder

	wpNode, l4Node *tailnet.Node
	wpAddr, l4Addr string // tailnet "ip:port" of each proxy
	spareAddr      string // tailnet "ip:port" of spareSrv
	directPassword string
	logs           *testkit.LogTail // Waypoint's lines above INFO

	grant  string         // the readonly grant on benchDB, as JSON
	stages *stageRecorder // Waypoint's setup stages, for the stage table
	next   int            // identities created so far, for unique names
}

// newHarness builds everything; all of it is torn down by t's cleanup.
func newHarness(t *testing.T, cfg config) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, logs: &testkit.LogTail{Max: 200}, directPassword: rand.Text(), stages: newStageRecorder()}
	// Room for the memory phase's sessions through both paths at once,
	// next to Waypoint's admin connections.
	h.pg = pgtest.Start(t, pgtest.Options{Settings: map[string]string{
		"max_connections": fmt.Sprint(2*cfg.idleSessions + 100),
	}})
	h.pg.CreateAppDatabase(t, benchDB)
	h.tn = tailnettest.New(t)
	h.wpNode = h.tn.StartNode(t, "waypoint-bench")
	h.l4Node = h.tn.StartNode(t, "l4-baseline")
	h.wpAddr = h.tn.ProxyAddr(h.wpNode, pgPort)
	h.spareAddr = h.tn.ProxyAddr(h.wpNode, sparePort)
	h.l4Addr = h.tn.ProxyAddr(h.l4Node, pgPort)
	h.startWaypoint()
	h.startBaseline()
	h.startWarmupPort()
	h.grant = readonlyGrant()
	return h
}

// readonlyGrant is the grant every benchmark identity holds.
func readonlyGrant() string {
	g := authz.Grant{Backends: map[string]authz.Backend{
		listenerName: {PG: &authz.PGBackend{Databases: map[string]authz.DatabaseGrant{
			benchDB: {Permissions: []string{"readonly"}},
		}}},
	}}
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// startWaypoint starts the provisioner and the proxy on Waypoint's node with
// production defaults. Everything Waypoint starts runs under the pprof label
// side=waypoint, so CPU profiles can separate it from the tailnet and the
// clients.
func (h *harness) startWaypoint() {
	t := h.t
	ln, err := h.wpNode.Listen("tcp", fmt.Sprintf(":%d", pgPort))
	if err != nil {
		t.Fatalf("waypoint listen: %v", err)
	}
	pprof.Do(context.Background(), pprof.Labels("side", "waypoint"), func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		h.prov, err = provision.New(ctx, provision.Options{
			AdminConnString: h.pg.ConnString(h.pg.AdminUser, h.pg.AdminPassword, "postgres"),
			Logger:          slog.New(slog.NewTextHandler(h.logs, nil)), // lease warnings show in failures' "waypoint log"
		})
		if err != nil {
			return
		}
		opts := proxy.Options{
			Listener:    listenerName,
			Resolver:    h.wpNode,
			Provisioner: proxy.RoleProvisioner{Provisioner: h.prov},
			Backend:     proxy.Backend{Addr: h.pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
			// Production writes one line per connection; the cost of
			// formatting it is part of the figures.
			Logger:  slog.New(slog.NewTextHandler(h.logs, nil)),
			OnStage: h.stages.observe,
		}
		if h.srv, err = proxy.New(opts); err != nil {
			return
		}
		opts.OnStage = nil
		opts.Spares = proxy.Spares{PerRole: 1}
		if h.spareSrv, err = proxy.New(opts); err != nil {
			return
		}
		go h.srv.Serve(ln)
		var spareLn net.Listener
		if spareLn, err = h.wpNode.Listen("tcp", fmt.Sprintf(":%d", sparePort)); err != nil {
			return
		}
		go h.spareSrv.Serve(spareLn)
	})
	if err != nil {
		ln.Close()
		t.Fatalf("start waypoint: %v", err)
	}
	t.Cleanup(h.prov.Close)
	t.Cleanup(func() { h.srv.Close(); h.spareSrv.Close() })
}

// startBaseline creates the baseline's password role and starts the L4
// forwarder on its own node, under the pprof label side=l4.
func (h *harness) startBaseline() {
	t := h.t
	verifier, err := provision.SCRAMVerifier(h.directPassword, provision.DefaultSCRAMIterations)
	if err != nil {
		t.Fatal(err)
	}
	h.pg.Exec(t, "postgres", fmt.Sprintf("SET log_statement = 'none'; CREATE ROLE %s LOGIN PASSWORD '%s'", directUser, h.directPassword))
	h.pg.Exec(t, "postgres", fmt.Sprintf("SET log_statement = 'none'; CREATE ROLE %s LOGIN PASSWORD '%s'", matchedUser, verifier))
	for _, u := range []string{directUser, matchedUser} {
		h.pg.Exec(t, benchDB, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s; GRANT USAGE ON SCHEMA public TO %[2]s", benchDB, u))
	}
	ln, err := h.l4Node.Listen("tcp", fmt.Sprintf(":%d", pgPort))
	if err != nil {
		t.Fatalf("baseline listen: %v", err)
	}
	h.l4 = &l4Forwarder{backend: h.pg.Addr()}
	pprof.Do(context.Background(), pprof.Labels("side", "l4"), func(context.Context) {
		go h.l4.serve(ln)
	})
	t.Cleanup(func() { ln.Close() })
}

// startWarmupPort makes Waypoint's node accept and close connections on
// warmupPort, so a new identity's tailnet path (disco, WireGuard handshake)
// can be set up before its first measured connection.
func (h *harness) startWarmupPort() {
	ln, err := h.wpNode.Listen("tcp", fmt.Sprintf(":%d", warmupPort))
	if err != nil {
		h.t.Fatalf("warmup listen: %v", err)
	}
	h.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// identity creates a client node holding the readonly grant whose tailnet
// paths to both proxies are already up. kind names it ("warm", "cold").
func (h *harness) identity(kind string) *tailnettest.Client {
	h.t.Helper()
	h.next++
	c := h.tn.NewClient(h.t, fmt.Sprintf("%s%03d@bench.example.com", kind, h.next), fmt.Sprintf("%s-%03d", kind, h.next))
	h.tn.SetGrant(c, tailnet.DefaultCapability, json.RawMessage(h.grant))
	for _, addr := range []string{h.tn.ProxyAddr(h.wpNode, warmupPort), h.l4Addr} {
		if err := warmPath(c, addr); err != nil {
			h.t.Fatalf("warm tailnet path of %s to %s: %v", c.Machine, addr, err)
		}
	}
	return c
}

// identities creates n identities of kind.
func (h *harness) identities(kind string, n int) []*tailnettest.Client {
	began := time.Now()
	out := make([]*tailnettest.Client, n)
	for i := range out {
		out[i] = h.identity(kind)
	}
	h.t.Logf("%d %q identities up in %v", n, kind, time.Since(began).Round(time.Millisecond))
	return out
}

// pair is the two client nodes of one phase: l4 dials the baseline, wp
// dials Waypoint (as an identity whose role exists once the phase's first
// connection is made). Separate nodes per phase keep each node's TCP
// endpoints (live and TIME_WAIT) well under maxConnsPerClient.
type pair struct {
	h      *harness
	l4, wp *tailnettest.Client
}

// maxConnsPerClient is how many connections one client node may make in a
// phase. Closing a tsnet node (tailscale.com v1.102.5) first stops the
// goroutine that drains its 512-packet outbound queue, then aborts every TCP
// endpoint it still has — TIME_WAIT ones included, which last a minute —
// queueing one RST each: with more packets than the queue holds, Close
// never returns. So phases keep each node well below that, and retire
// closes a node only once its connections have settled (no FIN still
// queued).
const maxConnsPerClient = 400

func (h *harness) newPair() *pair {
	return &pair{h: h, l4: h.identity("l4"), wp: h.identity("warm")}
}

// retire takes the pair off the tailnet.
func (p *pair) retire() { p.h.retire([]*tailnettest.Client{p.l4, p.wp}) }

// retire takes identities off the tailnet once a phase is done with them,
// so that idle nodes do not slow down the next identities' setup. It first
// waits until every connection has ended (see maxConnsPerClient).
func (h *harness) retire(clients []*tailnettest.Client) {
	h.waitQuiet()
	time.Sleep(200 * time.Millisecond) // the last ACKs leave the clients' queues
	for _, c := range clients {
		c.Close()
	}
}

// warmPath dials addr through c and closes the connection at once.
func warmPath(c *tailnettest.Client, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// waypointConfig is a pgx configuration that reaches benchDB through
// Waypoint as c. User and password are ignored by Waypoint.
// spareConfig is waypointConfig through the listener with spare backends.
func (h *harness) spareConfig(c *tailnettest.Client) *pgx.ConnConfig {
	return h.pgxConfig(c, fmt.Sprintf("postgres://ignored@%s/%s?sslmode=disable", h.spareAddr, benchDB))
}

func (h *harness) waypointConfig(c *tailnettest.Client) *pgx.ConnConfig {
	return h.pgxConfig(c, fmt.Sprintf("postgres://ignored@%s/%s?sslmode=disable", h.wpAddr, benchDB))
}

// baselineConfig is a pgx configuration that reaches benchDB through the L4
// baseline from c, logging in with the direct role's password.
func (h *harness) baselineConfig(c *tailnettest.Client) *pgx.ConnConfig {
	return h.pgxConfig(c, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", matchedUser, h.directPassword, h.l4Addr, benchDB))
}

// defaultCostConfig is baselineConfig as the role with PostgreSQL's default
// SCRAM cost: what connecting directly costs a user.
func (h *harness) defaultCostConfig(c *tailnettest.Client) *pgx.ConnConfig {
	return h.pgxConfig(c, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", directUser, h.directPassword, h.l4Addr, benchDB))
}

func (h *harness) pgxConfig(c *tailnettest.Client, url string) *pgx.ConnConfig {
	h.t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.DialFunc = c.Dial
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.ConnectTimeout = connectTimeout
	return cfg
}

// waitQuiet waits until neither proxy serves a session and PostgreSQL has no
// client backend of a benchmark role left, so that one phase's connections
// do not count against the next one's.
func (h *harness) waitQuiet() {
	h.t.Helper()
	h.spareSrv.Revalidate(context.Background()) // closes its idle spares; it has no sessions to check
	deadline := time.Now().Add(time.Minute)
	super := h.pg.Super(h.t, "postgres")
	defer super.Close(context.Background())
	for {
		var backends int
		err := super.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND usename <> ALL ($1)`,
			[]string{h.pg.SuperUser, h.pg.AdminUser}).Scan(&backends)
		if err != nil {
			h.t.Fatalf("count backends: %v", err)
		}
		if backends == 0 && h.srv.ActiveSessions()+h.spareSrv.ActiveSessions() == 0 && h.l4.active.Load() == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("still busy after a minute: %d backends, %d Waypoint sessions, %d L4 sessions; the backends:\n%s",
				backends, h.srv.ActiveSessions(), h.l4.active.Load(), h.describeBackends(super))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describeBackends lists the client backends waitQuiet waits for, one line
// each, for the message of a phase that never went quiet.
func (h *harness) describeBackends(super *pgx.Conn) string {
	rows, err := super.Query(context.Background(), `SELECT format('pid %s %s@%s from %s, %s since %s (started %s): %s',
			pid, usename, datname, coalesce(client_addr::text, 'socket'), state, state_change, backend_start, left(query, 200))
		FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> ALL ($1)`,
		[]string{h.pg.SuperUser, h.pg.AdminUser})
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, "\n")
}

// forward exposes addr on a 127.0.0.1 port tunnelled through c with the
// code of `waypoint tunnel`, for libpq tools (psql, pgbench). It is stopped
// at cleanup. The forwarder runs under the pprof label side=client.
func (h *harness) forward(c *tailnettest.Client, addr string) (host, port string) {
	h.t.Helper()
	var local string
	pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) {
		local = tailnettest.Forward(h.t, tunnel.Options{Target: addr, Dial: c.Dial, DialTimeout: connectTimeout})
	})
	host, port, _ = net.SplitHostPort(local)
	return host, port
}

// l4Forwarder is the baseline: it accepts tailnet connections and pipes the
// bytes to the backend, with no authentication and no protocol awareness.
type l4Forwarder struct {
	backend string
	active  atomic.Int64 // sessions being piped
}

func (f *l4Forwarder) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		f.active.Add(1)
		go func() {
			defer f.active.Add(-1)
			defer conn.Close()
			var d net.Dialer
			ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
			up, err := d.DialContext(ctx, "tcp", f.backend)
			cancel()
			if err != nil {
				return
			}
			defer up.Close()
			pipe(conn, up)
		}()
	}
}

// pipe copies both ways until both directions end, half-closing each
// destination on EOF (closing it when it cannot half-close).
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// lookTool returns the path of a PostgreSQL client tool, or "" if it is not
// installed.
func lookTool(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// spareOnce measures one connection through the spare listener, first
// waiting (unmeasured, at most a second) until the spare opened after the
// previous connection is idle: a client connecting again within
// milliseconds would otherwise race its own spare.
func (h *harness) spareOnce(cfg *pgx.ConnConfig) measure {
	return func() (time.Duration, error) {
		deadline := time.Now().Add(time.Second)
		for idle, _, _ := h.spareSrv.SpareStats(); idle == 0 && time.Now().Before(deadline); idle, _, _ = h.spareSrv.SpareStats() {
			time.Sleep(200 * time.Microsecond)
		}
		return connectOnce(cfg)
	}
}

// heldLeases lists the role leases held now (waypoint.roles rows whose
// held_until is in the future), for a failure report.
func (h *harness) heldLeases() string {
	conn := h.pg.Super(h.t, "postgres")
	defer conn.Close(context.Background())
	var out string
	err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(format('%s holder=%s held_until=%s (in %s) last_used=%s',
		role, holder, held_until, held_until - now(), last_used), '; '), 'none')
		FROM waypoint.roles WHERE held_until > now()`).Scan(&out)
	if err != nil {
		return err.Error()
	}
	return out
}
