package proxy_test

// The TestUnit_ tests drive a whole Server through its seams, with neither
// PostgreSQL nor a tailnet: a fake tailnet (fakeTailnet) identifies callers
// by their loopback address, a fake provisioner (fakeProvisioner) hands out
// credentials and records what revalidation asks of it, and a scripted
// backend (pgwiretest.Server) checks every login's password and answers
// only the queries the test expects. They run alone in seconds:
//
//	go test -count=1 -run Unit ./internal/proxy/

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// unitTimeout bounds each client operation of the unit tests: a liveness
// bound, never a performance threshold.
const unitTimeout = 10 * time.Second

// Callers of the unit tests, each on a loopback address of its own (Linux
// routes all of 127.0.0.0/8 to the loopback interface).
const (
	aliceIP       = "127.0.0.2"
	bobIP         = "127.0.0.3"
	aliceDesktop  = "127.0.0.4" // alice again, from another machine
	strangerIP    = "127.0.0.5" // unknown to the tailnet
	unitDatabase  = "appdb"
	unitPGSleep   = "select pg_sleep(30)"
	unitWhoAmI    = "select current_user"
	setConfigHead = "SELECT pg_catalog.set_config("
)

// fakeTailnet is an identity.Resolver that knows callers by IP address.
type fakeTailnet struct {
	mu    sync.Mutex
	peers map[string]identity.Peer
}

func (f *fakeTailnet) WhoIs(_ context.Context, remoteAddr string) (identity.Peer, error) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return identity.Peer{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.peers[host]
	if !ok {
		return identity.Peer{}, fmt.Errorf("fake tailnet: whois %s: peer not found", host)
	}
	return p, nil
}

// set makes ip the address of peer.
func (f *fakeTailnet) set(ip string, peer identity.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers[ip] = peer
}

// unitPeer is a user's node with the given grant objects (none: no grant).
func unitPeer(login, machine string, grants ...string) identity.Peer {
	p := identity.Peer{LoginName: login, MachineName: machine, NodeID: "n-" + login + "-" + machine}
	for _, g := range grants {
		p.Caps = append(p.Caps, json.RawMessage(g))
	}
	return p
}

// fakeProvisioner is a Provisioner and LiveProvisioner that names each
// caller's role wp_<login without domain>, sets a fresh password on every
// Ensure (telling the backend), and records every call.
type fakeProvisioner struct {
	backend *pgwiretest.Server

	mu         sync.Mutex
	ensured    []string // roles, one per Ensure
	released   int
	terminated []uint32
	touched    []string
	reconciled []authz.Effective
}

func (p *fakeProvisioner) roleFor(peer identity.Peer) string {
	user, _, _ := strings.Cut(peer.LoginName, "@")
	return "wp_" + user
}

func (p *fakeProvisioner) Ensure(_ context.Context, peer identity.Peer, _ authz.Effective) (proxy.Credentials, error) {
	role := p.roleFor(peer)
	p.mu.Lock()
	p.ensured = append(p.ensured, role)
	password := fmt.Sprintf("pw-%s-%d", role, len(p.ensured))
	p.mu.Unlock()
	p.backend.AllowLogin(role, password)
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.mu.Lock()
			p.released++
			p.mu.Unlock()
		})
	}
	return proxy.Credentials{Role: role, Password: password, Release: release}, nil
}

func (p *fakeProvisioner) Reconcile(_ context.Context, _ identity.Peer, eff authz.Effective) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reconciled = append(p.reconciled, eff)
	return nil
}

// Terminate records pid and ends its backend session as
// pg_terminate_backend would, FATAL 57P01 first.
func (p *fakeProvisioner) Terminate(_ context.Context, pid uint32) error {
	p.mu.Lock()
	p.terminated = append(p.terminated, pid)
	p.mu.Unlock()
	p.backend.Terminate(pid)
	return nil
}

func (p *fakeProvisioner) Touch(_ context.Context, roles []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.touched = append(p.touched, roles...)
	return nil
}

// calls returns the roles Ensure was asked for and how many credentials
// were released.
func (p *fakeProvisioner) calls() (ensured []string, released int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ensured), p.released
}

func (p *fakeProvisioner) terminatedPIDs() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.terminated)
}

func (p *fakeProvisioner) touchedRoles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.touched)
}

var _ proxy.LiveProvisioner = (*fakeProvisioner)(nil)

// unitScript is the scripted backend's answer to every query the unit tests
// send: who the session is, a query that runs until cancelled, and the
// set_config a spare hand-off sends.
func unitScript(sess *pgwiretest.Session, q string) (pgwiretest.Result, bool) {
	switch {
	case q == unitWhoAmI:
		return pgwiretest.Result{Columns: []string{"current_user"}, Rows: [][]string{{sess.User()}}}, true
	case q == unitPGSleep:
		return pgwiretest.Result{UntilCancelled: true}, true
	case strings.HasPrefix(q, setConfigHead):
		return pgwiretest.Result{Columns: []string{"set_config"}, Rows: [][]string{{"ok"}}}, true
	}
	return pgwiretest.Result{}, false
}

// unitRig is a Server on loopback in front of the scripted backend, with
// the fake tailnet and provisioner.
type unitRig struct {
	t       *testing.T
	tn      *fakeTailnet
	prov    *fakeProvisioner
	backend *pgwiretest.Server
	srv     *proxy.Server
	addr    string
	logs    *testkit.SyncBuffer
}

// newUnitRig starts the rig; alice (readwrite on appdb, on her laptop and
// her desktop) and bob (the same grant) are on the fake tailnet. mod, if
// set, adjusts the options before the server is built.
func newUnitRig(t *testing.T, mod func(*proxy.Options)) *unitRig {
	t.Helper()
	backend := pgwiretest.StartServer(t, unitScript)
	r := &unitRig{
		t:       t,
		tn:      &fakeTailnet{peers: map[string]identity.Peer{}},
		prov:    &fakeProvisioner{backend: backend},
		backend: backend,
		logs:    &testkit.SyncBuffer{},
	}
	r.tn.set(aliceIP, unitPeer("alice@example.com", "laptop", readwriteAppdb))
	r.tn.set(aliceDesktop, unitPeer("alice@example.com", "desktop", readwriteAppdb))
	r.tn.set(bobIP, unitPeer("bob@example.com", "laptop", readwriteAppdb))
	opts := proxy.Options{
		Listener:    listenerName,
		Resolver:    r.tn,
		Provisioner: r.prov,
		Backend:     proxy.Backend{Addr: backend.Addr(), Security: pgwire.BackendSecurity{TLS: pgwire.BackendTLSDisable}},
		Logger:      slog.New(slog.NewTextHandler(r.logs, nil)),
		Policy:      authz.Policy{AdminDatabase: "postgres"},
	}
	if mod != nil {
		mod(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv, r.addr = startServer(t, opts, ln), ln.Addr().String()
	return r
}

// connect opens a session to database from ip with extra startup
// parameters; it is closed at cleanup.
func (r *unitRig) connect(ip, database string, params map[string]string) (*pgconn.PgConn, error) {
	r.t.Helper()
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("postgres://ignored@%s/%s?sslmode=disable", r.addr, database))
	if err != nil {
		r.t.Fatal(err)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	cfg.DialFunc = dialer.DialContext
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		r.t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func (r *unitRig) mustConnect(ip string, params map[string]string) *pgconn.PgConn {
	r.t.Helper()
	conn, err := r.connect(ip, unitDatabase, params)
	if err != nil {
		r.t.Fatalf("connect from %s: %v\nproxy log:\n%s", ip, err, r.logs.String())
	}
	return conn
}

// whoAmI runs unitWhoAmI on conn and returns the role it reports.
func whoAmI(t *testing.T, conn *pgconn.PgConn) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	res, err := conn.Exec(ctx, unitWhoAmI).ReadAll()
	if err != nil {
		return "", err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		t.Fatalf("%s: got %+v, want one row of one value", unitWhoAmI, res)
	}
	return string(res[0].Rows[0][0]), nil
}

// sessionWithPID returns the backend session with process ID pid, or nil.
func (r *unitRig) sessionWithPID(pid uint32) *pgwiretest.Session {
	for _, s := range r.backend.Sessions() {
		if s.PID == pid {
			return s
		}
	}
	return nil
}

// TestUnit_RefusedCallerIsToldAndNothingProvisioned: a caller the tailnet
// does not know, or whose grant does not allow the connection, gets one
// FATAL ErrorResponse with the SQLSTATE, message and hint errors.go
// decides, and nothing is provisioned or logged in upstream for it.
func TestUnit_RefusedCallerIsToldAndNothingProvisioned(t *testing.T) {
	tests := []struct {
		name     string
		ip       string
		database string
		params   map[string]string
		code     string
		msg      string // the message contains this
		hint     string // the hint contains this
	}{
		{"unknown node", strangerIP, unitDatabase, nil,
			"28000", "Waypoint could not identify your tailnet node", "logged in as a user or carries ACL tags"},
		{"no grant", bobIP, unitDatabase, nil,
			"28000", "has no Waypoint grant", "Ask your tailnet administrator for a grant."},
		{"database not granted", aliceIP, "billing", nil,
			"28000", `has no grant for database "billing"`, "Ask your tailnet administrator for a grant."},
		{"invalid preset request", aliceIP, unitDatabase, map[string]string{"waypoint_presets": "root"},
			"28000", "invalid waypoint_presets request", "Fix waypoint_presets in this connection's settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUnitRig(t, nil)
			r.tn.set(bobIP, unitPeer("bob@example.com", "laptop")) // no grant
			_, err := r.connect(tt.ip, tt.database, tt.params)
			pe := pgError(err)
			if pe == nil {
				t.Fatalf("got %v, want an ErrorResponse", err)
			}
			if pe.Severity != "FATAL" || pe.Code != tt.code || !strings.Contains(pe.Message, tt.msg) ||
				!strings.Contains(pe.Hint, tt.hint) || !strings.Contains(pe.Hint, "Waypoint connection id") {
				t.Errorf("got %s %s %q (hint %q), want FATAL %s containing %q (hint containing %q and the connection id)",
					pe.Severity, pe.Code, pe.Message, pe.Hint, tt.code, tt.msg, tt.hint)
			}
			if strings.Contains(pe.Message+pe.Hint, "whois") || strings.Contains(pe.Message+pe.Hint, tt.ip) {
				t.Errorf("client is told %q (hint %q): internal detail", pe.Message, pe.Hint)
			}
			if ensured, _ := r.prov.calls(); len(ensured) != 0 {
				t.Errorf("Ensure was called for %v, want no call for a refused caller", ensured)
			}
			if s := r.backend.Sessions(); len(s) != 0 || len(r.backend.Refused()) != 0 {
				t.Errorf("backend saw %d logins (%d refused), want none", len(s), len(r.backend.Refused()))
			}
		})
	}
}

// TestUnit_HappyPathRelays: an allowed caller is logged in upstream as the
// role the provisioner named, with the password it set (the backend checks
// it), the caller's identity in the backend's parameters, and the backend's
// real process ID in its BackendKeyData; queries are relayed both ways; the
// credentials are released after the login; closing the client ends the
// backend session.
func TestUnit_HappyPathRelays(t *testing.T) {
	r := newUnitRig(t, nil)
	conn := r.mustConnect(aliceIP, nil)
	role, err := whoAmI(t, conn)
	if err != nil || role != "wp_alice" {
		t.Fatalf("%s: got %q, %v; want wp_alice", unitWhoAmI, role, err)
	}
	sessions := r.backend.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("backend saw %d sessions, want 1", len(sessions))
	}
	be := sessions[0]
	want := map[string]string{
		"user": "wp_alice", "database": unitDatabase, "waypoint.login": "alice@example.com",
		"waypoint.machine": "laptop", "application_name": "waypoint alice@example.com",
	}
	for k, v := range want {
		if got := be.Params[k]; got != v {
			t.Errorf("backend startup parameter %s: got %q, want %q", k, got, v)
		}
	}
	if conn.PID() != be.PID {
		t.Errorf("client's process ID: got %d, want the backend's %d", conn.PID(), be.PID)
	}
	if ensured, released := r.prov.calls(); !slices.Equal(ensured, []string{"wp_alice"}) || released != 1 {
		t.Errorf("provisioner: Ensure for %v, %d released; want [wp_alice], 1", ensured, released)
	}
	conn.Close(context.Background())
	waitFor(t, "the backend session to end", be.Ended)
	waitFor(t, "the proxy session to end", func() bool { return r.srv.ActiveSessions() == 0 })
}

// TestUnit_RevalidationClosesRevokedSession: a pass after alice's grant
// was removed closes her session (FATAL 57P01 saying why) and terminates
// her backend session; bob, whose grant stands, keeps his and has his role
// recorded as in use.
func TestUnit_RevalidationClosesRevokedSession(t *testing.T) {
	r := newUnitRig(t, nil)
	alice := r.mustConnect(aliceIP, nil)
	bob := r.mustConnect(bobIP, nil)
	alicePID := alice.PID()

	r.tn.set(aliceIP, unitPeer("alice@example.com", "laptop")) // grant removed
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	if closed := r.srv.Revalidate(ctx); closed != 1 {
		t.Errorf("Revalidate closed %d sessions, want 1", closed)
	}
	_, err := whoAmI(t, alice)
	pe := pgError(err)
	if pe == nil || pe.Severity != "FATAL" || pe.Code != "57P01" || !strings.Contains(pe.Message, "your access was revoked") {
		t.Errorf("alice's next query: got %v, want FATAL 57P01 saying her access was revoked", err)
	}
	if got := r.prov.terminatedPIDs(); !slices.Equal(got, []uint32{alicePID}) {
		t.Errorf("terminated backends %v, want alice's [%d]", got, alicePID)
	}
	waitFor(t, "alice's backend session to end", r.sessionWithPID(alicePID).Ended)

	if role, err := whoAmI(t, bob); err != nil || role != "wp_bob" {
		t.Errorf("bob after the pass: got %q, %v; want his session still relaying as wp_bob", role, err)
	}
	if got := r.prov.touchedRoles(); !slices.Equal(got, []string{"wp_bob"}) {
		t.Errorf("roles recorded as in use: %v, want [wp_bob]", got)
	}
}

// TestUnit_TerminatedClientsGetOperatorReason: an operator terminates
// every session of alice; each backend answers pg_terminate_backend with
// its own FATAL 57P01 ("administrator command") the moment it is asked, yet
// every client is told why by Waypoint ("terminated by a Waypoint
// operator"), because the backend is terminated only once the session's
// relay has stopped.
func TestUnit_TerminatedClientsGetOperatorReason(t *testing.T) {
	r := newUnitRig(t, nil)
	const n = 12
	conns := make([]*pgconn.PgConn, n)
	for i := range conns {
		conns[i] = r.mustConnect(aliceIP, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	ended := r.srv.TerminateSubject(ctx, "alice@example.com", proxy.Operator{Login: "ops@example.com", Via: "local"})
	if len(ended) != n {
		t.Fatalf("TerminateSubject ended %d sessions, want %d", len(ended), n)
	}
	if got := r.prov.terminatedPIDs(); len(got) != n {
		t.Errorf("terminated %d backends, want %d", len(got), n)
	}
	for i, c := range conns {
		_, err := whoAmI(t, c)
		if pe := pgError(err); pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "terminated by a Waypoint operator") {
			t.Errorf("session %d after the terminate: got %v, want FATAL 57P01 from Waypoint saying an operator ended it", i, err)
		}
	}
}

// TestUnit_RevalidationReconcilesChangedGrant: a pass after bob's grant
// went from readwrite to readonly reconciles his live role to readonly and
// keeps his session; nothing is terminated.
func TestUnit_RevalidationReconcilesChangedGrant(t *testing.T) {
	r := newUnitRig(t, nil)
	bob := r.mustConnect(bobIP, nil)
	r.tn.set(bobIP, unitPeer("bob@example.com", "laptop", readonlyAppdb))
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	if closed := r.srv.Revalidate(ctx); closed != 0 {
		t.Errorf("Revalidate closed %d sessions, want 0", closed)
	}
	r.prov.mu.Lock()
	reconciled := slices.Clone(r.prov.reconciled)
	r.prov.mu.Unlock()
	if len(reconciled) != 1 || reconciled[0].Preset != authz.Readonly || reconciled[0].Database != unitDatabase {
		t.Errorf("Reconcile calls %+v, want one to readonly on %s", reconciled, unitDatabase)
	}
	if role, err := whoAmI(t, bob); err != nil || role != "wp_bob" {
		t.Errorf("bob after the pass: got %q, %v; want his session still relaying", role, err)
	}
	if got := r.prov.terminatedPIDs(); len(got) != 0 {
		t.Errorf("terminated backends %v, want none", got)
	}
}

// TestUnit_SpareGoesOnlyToSameIdentity: with spares on, the backend session
// opened in the background after alice's login is handed to alice's next
// connection from the same machine, and to nobody else: not to bob, not to
// alice on another machine, who are provisioned and logged in normally.
func TestUnit_SpareGoesOnlyToSameIdentity(t *testing.T) {
	r := newUnitRig(t, func(o *proxy.Options) { o.Spares = proxy.Spares{PerRole: 1} })
	idle := func(n int) func() bool {
		return func() bool { i, _, _ := r.srv.SpareStats(); return i == n }
	}
	r.mustConnect(aliceIP, nil)
	waitFor(t, "alice's spare", idle(1))
	aliceSpare := r.backend.Sessions()[1]
	if aliceSpare.User() != "wp_alice" || aliceSpare.Params["application_name"] != "waypoint spare" {
		t.Fatalf("second backend session: user %q, application_name %q; want alice's spare", aliceSpare.User(), aliceSpare.Params["application_name"])
	}

	for _, c := range []struct{ who, ip, role string }{{"bob", bobIP, "wp_bob"}, {"alice on her desktop", aliceDesktop, "wp_alice"}} {
		conn := r.mustConnect(c.ip, nil)
		if conn.PID() == aliceSpare.PID {
			t.Fatalf("%s was handed alice's laptop spare", c.who)
		}
		if role, err := whoAmI(t, conn); err != nil || role != c.role {
			t.Errorf("%s: got %q, %v; want %s", c.who, role, err, c.role)
		}
	}
	if _, hits, _ := r.srv.SpareStats(); hits != 0 {
		t.Fatalf("spare hits %d before alice reconnected, want 0", hits)
	}

	waitFor(t, "bob's and alice's desktop spares", idle(3)) // so that their refills are done
	ensuredBefore, _ := r.prov.calls()
	conn := r.mustConnect(aliceIP, map[string]string{"application_name": "psql"})
	if conn.PID() != aliceSpare.PID {
		t.Errorf("alice's second connection runs on backend %d, want her spare %d", conn.PID(), aliceSpare.PID)
	}
	if role, err := whoAmI(t, conn); err != nil || role != "wp_alice" {
		t.Errorf("alice on her spare: got %q, %v; want wp_alice", role, err)
	}
	if _, hits, _ := r.srv.SpareStats(); hits != 1 {
		t.Errorf("spare hits %d, want 1", hits)
	}
	// The hand-off itself provisions nothing; only the refill behind it may.
	if ensured, _ := r.prov.calls(); len(ensured) > len(ensuredBefore)+1 {
		t.Errorf("Ensure calls went from %d to %d for a spare hand-off, want at most the one refill", len(ensuredBefore), len(ensured))
	}
}

// TestUnit_CancelOnlyFromSameNode: a CancelRequest with alice's key from
// another node is dropped (the backend never sees a cancel), while alice's
// own cancels her running query. Both are deterministic: the proxy closes
// the cancel connection only after it handled the request.
func TestUnit_CancelOnlyFromSameNode(t *testing.T) {
	r := newUnitRig(t, nil)
	alice := r.mustConnect(aliceIP, nil)
	be := r.sessionWithPID(alice.PID())
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := alice.Exec(ctx, unitPGSleep).ReadAll(); done <- err }()

	r.sendCancel(t, bobIP, alice.PID(), alice.SecretKey())
	if n := r.backend.CancelRequests(); n != 0 || be.Cancelled() {
		t.Fatalf("after bob's cancel with alice's key the backend got %d cancel requests, want 0", n)
	}
	select {
	case err := <-done:
		t.Fatalf("alice's query ended after bob's cancel: %v", err)
	default:
	}

	r.sendCancel(t, aliceIP, alice.PID(), alice.SecretKey())
	select {
	case err := <-done:
		if sqlstate(err) != "57014" {
			t.Errorf("alice's query after her cancel: got %v, want 57014", err)
		}
	case <-time.After(unitTimeout):
		t.Fatal("alice's query still running after her own cancel")
	}
}

// sendCancel sends a CancelRequest for (pid, secret) from ip and waits
// until the proxy has closed the connection, i.e. handled the request.
func (r *unitRig) sendCancel(t *testing.T, ip string, pid uint32, secret []byte) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: unitTimeout}
	c, err := dialer.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	cancelOver(t, c, pid, secret)
}
