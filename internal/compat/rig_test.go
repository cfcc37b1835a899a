package compat

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
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
	// pgVersion is the PostgreSQL major version both runs use: Debian's
	// 15, which ships the contrib extensions (hstore, ltree) pgx's tests
	// need.
	pgVersion = 15
	// listenerName is Waypoint's listener, the key grants use.
	listenerName = "pg-compat"
	// directDB and waypointDB are the two runs' databases, set up
	// identically (setupDatabase), so that neither run sees what the other
	// left behind.
	directDB   = "pgx_direct"
	waypointDB = "pgx_waypoint"
	// waypointPort is Waypoint's listener port on its tailnet node.
	waypointPort = 5432
	// typedUser is the user name the Waypoint run's connection string
	// carries. Waypoint ignores it (the identity is the tailnet node's);
	// pgx's TestConnect notices.
	typedUser = "pgx"
	// rigTimeout bounds each setup step.
	rigTimeout = 2 * time.Minute
)

// rig is everything both runs need: one PostgreSQL cluster with the two
// databases, and Waypoint in front of it on an in-process tailnet, reached
// through a tunnel node on a 127.0.0.1 port (the code of `waypoint
// tunnel`), because pgx's tests are a separate process that can only be
// given a connection string.
type rig struct {
	t    *testing.T
	pg   *pgtest.Cluster
	prov *provision.Provisioner
	log  *testkit.LogTail

	// directURL logs in to directDB as directRole, a role Waypoint's
	// provisioning created for the same grant; waypointURL reaches
	// waypointDB through Waypoint, whose role for the tunnel's identity
	// is waypointRole.
	directURL, waypointURL   string
	directRole, waypointRole string
}

// newRig starts everything; t's cleanup stops it.
func newRig(t *testing.T) *rig {
	t.Helper()
	// The log keeps the lines above INFO of Waypoint and of the tunnel, and
	// Waypoint's INFO lines about connections that did not end normally,
	// so that a report with unexpected or flaky failures can show them.
	r := &rig{t: t, log: &testkit.LogTail{Keep: unusual}}
	r.pg = pgtest.Start(t, pgtest.Options{Version: pgVersion})
	r.setupCluster()
	for _, db := range []string{directDB, waypointDB} {
		r.setupDatabase(db)
	}
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint-compat")
	r.startWaypoint(node)
	client := tn.NewClient(t, "pgx@example.com", "pgx-suite")
	tn.SetGrant(client, tailnet.DefaultCapability, grantFor(waypointDB))
	local := r.startTunnel(client, tn.ProxyAddr(node, waypointPort))
	r.waypointURL = fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", typedUser, local, waypointDB)
	r.waypointRole = r.currentUser(r.waypointURL)
	r.createDirectRole()
	return r
}

// grantFor is the tailnet grant of both runs: the admin preset on schema
// public of db (pgx's tests create tables, temporary tables, types,
// domains and functions there).
func grantFor(db string) json.RawMessage {
	g := authz.Grant{Backends: map[string]authz.Backend{
		listenerName: {PG: &authz.PGBackend{Databases: map[string]authz.DatabaseGrant{
			db: {Permissions: []string{string(authz.Admin)}, Schemas: []string{"public"}},
		}}},
	}}
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return b
}

// setupCluster creates what pgx's testsetup/postgresql_setup.sql creates
// cluster-wide and the tests rely on: the role with special characters
// that pgtype's aclitem test names (it only has to exist; NOLOGIN here).
// pgx's other setup roles (pgx_md5, pgx_ssl, …) serve the optional
// PGX_TEST_*_CONN_STRING tests, which stay skipped.
func (r *rig) setupCluster() {
	r.pg.Exec(r.t, "postgres", "CREATE ROLE "+pgx.Identifier{` tricky, ' } " \ test user `}.Sanitize()+" NOLOGIN")
}

// setupDatabase creates db as the superuser with what pgx's
// testsetup/postgresql_setup.sql creates in its test database (extensions
// hstore and ltree, domain uint64), as the superuser, because creating them
// is not something a granted role can do; and gives Waypoint's admin what
// it needs to grant the admin preset on public (as docs/deploying.md's
// steps do).
func (r *rig) setupDatabase(db string) {
	r.pg.Exec(r.t, "postgres", "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	admin := pgx.Identifier{r.pg.AdminUser}.Sanitize()
	r.pg.Exec(r.t, db, strings.NewReplacer("{db}", pgx.Identifier{db}.Sanitize(), "{admin}", admin).Replace(`
GRANT CONNECT ON DATABASE {db} TO {admin} WITH GRANT OPTION;
GRANT USAGE, CREATE ON SCHEMA public TO {admin} WITH GRANT OPTION;
CREATE EXTENSION hstore;
CREATE EXTENSION ltree;
CREATE DOMAIN uint64 AS numeric(20,0);
`))
}

// startWaypoint starts the provisioner and a Waypoint listener on node,
// with production defaults (TLS off towards the client, which is the
// tunnel on loopback; backend TLS off, as the cluster has none).
func (r *rig) startWaypoint(node *tailnet.Node) {
	t := r.t
	ctx, cancel := context.WithTimeout(context.Background(), rigTimeout)
	defer cancel()
	prov, err := provision.New(ctx, provision.Options{
		AdminConnString: r.pg.ConnString(r.pg.AdminUser, r.pg.AdminPassword, "postgres"),
	})
	if err != nil {
		t.Fatalf("provisioner: %v", err)
	}
	t.Cleanup(prov.Close)
	r.prov = prov
	srv, err := proxy.New(proxy.Options{
		Listener:    listenerName,
		Resolver:    node,
		Provisioner: proxy.RoleProvisioner{Provisioner: prov},
		Backend:     proxy.Backend{Addr: r.pg.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
		Policy:      policy,
		Logger:      slog.New(slog.NewTextHandler(r.log, nil)),
	})
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	ln, err := node.Listen("tcp", fmt.Sprintf(":%d", waypointPort))
	if err != nil {
		t.Fatalf("listen on the tailnet: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// policy is the listener policy: the admin database is Waypoint's own, as
// in a real configuration.
var policy = authz.Policy{AdminDatabase: "postgres"}

// startTunnel serves a 127.0.0.1 port that forwards to target through
// client's tailnet node, as `waypoint tunnel` does, and returns its
// address.
func (r *rig) startTunnel(client *tailnettest.Client, target string) string {
	return tailnettest.Forward(r.t, tunnel.Options{Target: target, Dial: client.Dial, Logger: slog.New(slog.NewTextHandler(r.log, nil))})
}

// createDirectRole makes the direct run's role the way Waypoint makes its
// own: provision.Ensure for an identity holding the same grant (on
// directDB), the code path every Waypoint connection takes. Only the
// password differs: Waypoint's passwords are random and valid for 45 s,
// enough for the one login each is made for, while the direct run logs in
// thousands of times over minutes, so the harness then sets a password of
// its own with no expiry (as the superuser). equivalentRoles then checks
// that the two roles have the same attributes, memberships and privileges.
func (r *rig) createDirectRole() {
	t := r.t
	peer := identity.Peer{
		LoginName:   "pgx-direct@example.com",
		MachineName: "pgx-direct",
		NodeID:      "pgx-direct-node",
		Caps:        []json.RawMessage{grantFor(directDB)},
	}
	eff, err := authz.Decide(peer, authz.Request{Listener: listenerName, Database: directDB}, policy)
	if err != nil {
		t.Fatalf("decide for the direct role: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rigTimeout)
	defer cancel()
	lease, err := r.prov.Ensure(ctx, peer, eff)
	if err != nil {
		t.Fatalf("provision the direct role: %v", err)
	}
	lease.Release()
	r.directRole = lease.Role
	password := rand.Text()
	r.pg.Exec(t, "postgres", fmt.Sprintf("SET log_statement = 'none'; ALTER ROLE %s PASSWORD '%s' VALID UNTIL 'infinity'",
		pgx.Identifier{r.directRole}.Sanitize(), password))
	u := url.URL{Scheme: "postgres", User: url.UserPassword(r.directRole, password), Host: r.pg.Addr(), Path: "/" + directDB, RawQuery: "sslmode=disable"}
	r.directURL = u.String()
	if got := r.currentUser(r.directURL); got != r.directRole {
		t.Fatalf("direct login: current_user %q, want %q", got, r.directRole)
	}
}

// currentUser connects to url and returns current_user.
func (r *rig) currentUser(url string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rigTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		r.t.Fatalf("connect to %s: %v", redact(url), err)
	}
	defer conn.Close(context.Background())
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		r.t.Fatalf("SELECT current_user via %s: %v", redact(url), err)
	}
	return user
}

// serverVersion is the server's version string, e.g. "15.14 (Debian …)".
func (r *rig) serverVersion() string {
	r.t.Helper()
	conn := r.pg.Super(r.t, "postgres")
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), rigTimeout)
	defer cancel()
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		r.t.Fatalf("server version: %v", err)
	}
	return v
}

// redact hides a URL's password for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// profileSQL describes a role in the current database as lines that
// should be equal for two roles made for the same grant on two identically
// set up databases: its attributes, the roles it is a member of (the
// database's name replaced by "{db}") and its privileges on the database
// and on schema public.
const profileSQL = `
SELECT format('attributes: super=%s inherit=%s createrole=%s createdb=%s login=%s replication=%s bypassrls=%s connlimit=%s',
              rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit)
  FROM pg_roles WHERE rolname = $1
UNION ALL
SELECT 'member of: ' || coalesce(string_agg(replace(g.rolname, current_database(), '{db}'), ', ' ORDER BY replace(g.rolname, current_database(), '{db}')), '(none)')
  FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
 WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)
UNION ALL
SELECT format('database: connect=%s create=%s temp=%s',
              has_database_privilege($1, current_database(), 'CONNECT'),
              has_database_privilege($1, current_database(), 'CREATE'),
              has_database_privilege($1, current_database(), 'TEMP'))
UNION ALL
SELECT format('schema public: usage=%s create=%s',
              has_schema_privilege($1, 'public', 'USAGE'),
              has_schema_privilege($1, 'public', 'CREATE'))`

// roleProfile returns profileSQL's lines for role in db.
func (r *rig) roleProfile(db, role string) []string {
	r.t.Helper()
	conn := r.pg.Super(r.t, db)
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), rigTimeout)
	defer cancel()
	rows, err := conn.Query(ctx, profileSQL, role)
	if err != nil {
		r.t.Fatalf("profile of %s: %v", role, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		r.t.Fatalf("profile of %s: %v", role, err)
	}
	return lines
}

// unusual reports whether an INFO line is about a Waypoint connection that
// did not end normally (outcome other than ok or cancel: a client that
// went away during startup is INFO, not WARN).
func unusual(line string) bool {
	return strings.Contains(line, "msg=connection") && !strings.Contains(line, "outcome=ok") && !strings.Contains(line, "outcome=cancel")
}
