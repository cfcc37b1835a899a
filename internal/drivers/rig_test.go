package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

// database is the app database every driver works in (pgtest's fixture:
// public.items, owned by the admin).
const database = "appdb"

// The two Waypoint listeners of the rig, on the same tailnet node.
const (
	plainListener = "pg-plain" // tls_mode off: SSLRequest is answered 'N'
	tlsListener   = "pg-tls"   // tls_mode optional, a self-signed certificate
	plainPort     = 5432
	tlsPort       = 5433
)

// rig is Waypoint on an in-process tailnet in front of a real PostgreSQL,
// with both listeners exposed on 127.0.0.1 through `waypoint tunnel`'s code,
// so that drivers in other languages can reach them. The tunnel's node is
// the caller Waypoint sees: driver@example.com on machine "driver-matrix",
// granted readwrite on appdb through both listeners.
type rig struct {
	// PlainAddr and TLSAddr are the local "127.0.0.1:port" of each listener.
	PlainAddr, TLSAddr string
	// Logs is Waypoint's log: one line per connection.
	Logs *testkit.SyncBuffer
}

// newRig starts everything; t's cleanup stops it.
func newRig(t *testing.T, pg *pgtest.Cluster) *rig {
	t.Helper()
	pg.CreateAppDatabase(t, database)
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint-db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prov, err := provision.New(ctx, provision.Options{
		AdminConnString: pg.ConnString(pg.AdminUser, pg.AdminPassword, "postgres"),
	})
	if err != nil {
		t.Fatalf("provision.New: %v", err)
	}
	t.Cleanup(prov.Close)
	logs := &testkit.SyncBuffer{}
	base := proxy.Options{
		Resolver:    node,
		Provisioner: proxy.RoleProvisioner{Provisioner: prov},
		Backend:     proxy.Backend{Addr: pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
		Policy:      authz.Policy{AdminDatabase: "postgres"},
		// The matrix tests what drivers can do, not Waypoint's deadlines
		// (internal/proxy does): under the race detector on a busy 2-core
		// machine a JVM's first TLS handshake was seen to exceed the
		// default 10 s.
		HandshakeTimeout: time.Minute,
		SetupTimeout:     time.Minute,
	}
	plain, withTLS := base, base
	plain.Listener, plain.TLSMode = plainListener, pgwire.TLSOff
	// Drivers connect with sslmode prefer or require, which do not verify
	// the certificate.
	sel := &certs.Selector{File: testkit.SelfSigned(t, time.Now().Add(24*time.Hour), "waypoint-db")}
	withTLS.Listener, withTLS.TLSMode, withTLS.TLSConfig = tlsListener, pgwire.TLSOptional, sel.TLSConfig()
	serve(t, node, plainPort, plain, logs)
	serve(t, node, tlsPort, withTLS, logs)

	client := tn.NewClient(t, "driver@example.com", "driver-matrix")
	tn.SetGrant(client, tailnet.DefaultCapability, json.RawMessage(readwriteGrant()))
	return &rig{
		PlainAddr: forward(t, tn.Dialer(client), tn.ProxyAddr(node, plainPort)),
		TLSAddr:   forward(t, tn.Dialer(client), tn.ProxyAddr(node, tlsPort)),
		Logs:      logs,
	}
}

// serve runs a Waypoint listener on node's port until t's cleanup, logging
// to logs.
func serve(t *testing.T, node *tailnet.Node, port int, opts proxy.Options, logs *testkit.SyncBuffer) {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil)).With("listener", opts.Listener)
	srv, err := proxy.New(opts)
	if err != nil {
		t.Fatalf("proxy.New(%s): %v", opts.Listener, err)
	}
	ln, err := node.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("listen %s: %v", opts.Listener, err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// forward exposes target on a new 127.0.0.1 port through dial, with the
// code of `waypoint tunnel`. It stops at t's cleanup.
func forward(t *testing.T, dial tunnel.DialFunc, target string) string {
	t.Helper()
	return tailnettest.Forward(t, tunnel.Options{Target: target, Dial: dial, DialTimeout: 20 * time.Second})
}

// readwriteGrant is the tunnel node's grant: readwrite on appdb through
// both listeners.
func readwriteGrant() string {
	db := map[string]authz.DatabaseGrant{database: {Permissions: []string{"readwrite"}}}
	g := authz.Grant{Backends: map[string]authz.Backend{
		plainListener: {PG: &authz.PGBackend{Databases: db}},
		tlsListener:   {PG: &authz.PGBackend{Databases: db}},
	}}
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return string(b)
}
