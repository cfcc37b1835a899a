package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// hostileRig is a Waypoint listener with TLS offered (tls_mode=optional, a
// file certificate) and a 1 s handshake deadline, with one well-behaved
// client and one hostile client. The hostile client holds a broad grant
// (readwrite on every database), so that whatever stops it is the
// protocol handling, not the policy.
type hostileRig struct {
	*rig
	normal, mallory *tailnettest.Client
	prefix          string // the start of every role name of mallory
}

// newHostileRig starts the rig; name is the hostile login's local part,
// distinct per test because the Shared cluster keeps roles between tests.
func newHostileRig(t *testing.T, name string) *hostileRig {
	t.Helper()
	pg := pgtest.Shared(t, pgtest.Options{})
	cert, _ := selfSigned(t, "db.example.com")
	sel := &certs.Selector{File: cert}
	r := newRig(t, pg, func(o *proxy.Options) {
		o.HandshakeTimeout = time.Second
		o.TLSMode = pgwire.TLSOptional
		o.TLSConfig = sel.TLSConfig()
	})
	return &hostileRig{
		rig:     r,
		normal:  r.client("normal@example.com", "desk", readonlyAppdb),
		mallory: r.client(name+"@evil.example", "evil", grantJSON(map[string]authz.DatabaseGrant{"*": dbGrant("readwrite")})),
		prefix:  "wp_" + name + "_evil_",
	}
}

// after is how every hostile case ends: Waypoint serves nothing for the
// hostile client any more, a normal client still works, and no role was
// created for the hostile one.
func (h *hostileRig) after(t *testing.T) {
	t.Helper()
	h.waitIdle(t)
	h.assertServes(t, h.normal)
	h.assertNoRoles(t, h.prefix)
}

// startupBytes encodes a protocol 3.0 StartupMessage.
func startupBytes(t *testing.T, params map[string]string) []byte {
	t.Helper()
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sslRequestBytes(t *testing.T) []byte {
	t.Helper()
	b, err := (&pgproto3.SSLRequest{}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(b); err != nil {
		t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// TestHostile_ProtocolAbuse sends one malformed or abusive startup per
// subtest, each from the same hostile tailnet node. Each must end with the
// connection closed by Waypoint (after at most FATAL ErrorResponses), a
// normal client still served, and no role created for the hostile node.
func TestHostile_ProtocolAbuse(t *testing.T) {
	h := newHostileRig(t, "abuser")
	rnd := rand.New(rand.NewPCG(8, 8))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		return b
	}
	cases := []struct {
		name string
		run  func(t *testing.T, conn net.Conn)
	}{
		{"random garbage", func(t *testing.T, conn net.Conn) {
			b := garbage(64 << 10)
			b[0] = 'G' // a first byte other than a TLS record: the length path
			mustWrite(t, conn, b)
			errorResponses(t, readUntilClosed(t, conn), 0)
		}},
		{"random garbage as direct TLS", func(t *testing.T, conn net.Conn) {
			b := garbage(4 << 10)
			b[0] = 0x16
			mustWrite(t, conn, b)
			readUntilClosed(t, conn) // a TLS client gets no plaintext error
		}},
		{"100 MB length prefix", func(t *testing.T, conn net.Conn) {
			b := binary.BigEndian.AppendUint32(nil, 100<<20)
			b = binary.BigEndian.AppendUint32(b, pgproto3.ProtocolVersion30)
			mustWrite(t, conn, append(b, garbage(1024)...))
			errs := errorResponses(t, readUntilClosed(t, conn), 0)
			if len(errs) != 1 || errs[0].Code != "08P01" {
				t.Errorf("got %+v, want one 08P01 error", errs)
			}
		}},
		{"10000 startup parameters", func(t *testing.T, conn net.Conn) {
			params := map[string]string{"user": "x", "database": "appdb"}
			for i := range 10000 {
				params[fmt.Sprintf("p%d", i)] = "v"
			}
			// The server may close before reading it all: ignore write errors.
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = conn.Write(startupBytes(t, params))
			errorResponses(t, readUntilClosed(t, conn), 0)
		}},
		{"sends nothing", func(t *testing.T, conn net.Conn) {
			if data := readUntilClosed(t, conn); len(data) != 0 {
				t.Errorf("got %q for a silent client, want the connection just closed", data)
			}
		}},
		{"stops mid-packet", func(t *testing.T, conn net.Conn) {
			b := startupBytes(t, map[string]string{"user": "x", "database": "appdb"})
			mustWrite(t, conn, b[:len(b)/2])
			readUntilClosed(t, conn)
		}},
		{"stops mid-header", func(t *testing.T, conn net.Conn) {
			mustWrite(t, conn, []byte{0, 0})
			readUntilClosed(t, conn)
		}},
		{"TLS garbage after SSLRequest", func(t *testing.T, conn net.Conn) {
			mustWrite(t, conn, sslRequestBytes(t))
			mustWrite(t, conn, append([]byte{0x16, 3, 1, 0, 200}, garbage(200)...))
			data := readUntilClosed(t, conn)
			if len(data) == 0 || data[0] != 'S' {
				t.Errorf("got %q, want 'S' first (TLS is offered)", data)
			}
		}},
		{"plaintext startup after SSLRequest", func(t *testing.T, conn net.Conn) {
			mustWrite(t, conn, sslRequestBytes(t))
			mustWrite(t, conn, startupBytes(t, map[string]string{"user": "x", "database": "appdb"}))
			readUntilClosed(t, conn)
		}},
		{"SSLRequest loop", func(t *testing.T, conn net.Conn) {
			// 1000 SSLRequests at once: the first is answered 'S'; the rest
			// is not a TLS ClientHello.
			mustWrite(t, conn, []byte(strings.Repeat(string(sslRequestBytes(t)), 1000)))
			data := readUntilClosed(t, conn)
			if len(data) == 0 || data[0] != 'S' {
				t.Errorf("got %q, want 'S' first", data)
			}
		}},
		{"SSLRequest inside TLS", func(t *testing.T, conn net.Conn) {
			mustWrite(t, conn, sslRequestBytes(t))
			var answer [1]byte
			_ = conn.SetReadDeadline(time.Now().Add(closeWithin))
			if _, err := conn.Read(answer[:]); err != nil || answer[0] != 'S' {
				t.Fatalf("SSLRequest answer %q, %v; want 'S'", answer[:], err)
			}
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: "db.example.com"})
			_ = tc.SetDeadline(time.Now().Add(closeWithin))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS handshake: %v", err)
			}
			for range 100 {
				if _, err := tc.Write(sslRequestBytes(t)); err != nil {
					break
				}
			}
			errs := errorResponses(t, readUntilClosed(t, tc), 0)
			if len(errs) != 1 || errs[0].Code != "08P01" {
				t.Errorf("got %+v, want one 08P01 error", errs)
			}
		}},
		{"GSSENCRequest loop", func(t *testing.T, conn net.Conn) {
			gss, err := (&pgproto3.GSSEncRequest{}).Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, conn, []byte(strings.Repeat(string(gss), 1000)))
			data := readUntilClosed(t, conn)
			if len(data) == 0 || data[0] != 'N' {
				t.Fatalf("got %q, want 'N' first", data)
			}
			errs := errorResponses(t, data, 1)
			if len(errs) != 1 || errs[0].Code != "08P01" {
				t.Errorf("got %+v, want one 08P01 error", errs)
			}
		}},
		{"unknown protocol version", func(t *testing.T, conn net.Conn) {
			body := binary.BigEndian.AppendUint32(nil, 7<<16)
			body = append(body, "user\x00x\x00\x00"...)
			b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
			mustWrite(t, conn, append(b, body...))
			errs := errorResponses(t, readUntilClosed(t, conn), 0)
			if len(errs) != 1 {
				t.Errorf("got %+v, want one error", errs)
			}
		}},
		{"startup without terminator", func(t *testing.T, conn net.Conn) {
			body := binary.BigEndian.AppendUint32(nil, pgproto3.ProtocolVersion30)
			body = append(body, "user\x00x\x00database\x00appdb"...)
			b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
			mustWrite(t, conn, append(b, body...))
			errorResponses(t, readUntilClosed(t, conn), 0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := h.dialRaw(t, h.mallory)
			tc.run(t, conn)
			conn.Close()
			h.after(t)
		})
	}
}

// TestHostile_CancelRequests: a CancelRequest with another identity's key, or
// with a random key, cancels nothing; the victim's query sleeps on.
func TestHostile_CancelRequests(t *testing.T) {
	h := newHostileRig(t, "canceller")
	victim := h.mustConnect(h.normal, "appdb", nil)
	pid, secret := victim.PgConn().PID(), victim.PgConn().SecretKey()
	rnd := rand.New(rand.NewPCG(1, 2))
	keys := []struct {
		name   string
		pid    uint32
		secret []byte
	}{
		{"victim's key", pid, secret},
		{"random key", rnd.Uint32(), binary.BigEndian.AppendUint32(nil, rnd.Uint32())},
		{"victim's pid, wrong secret", pid, binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(secret)^1)},
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			done := runQuery(victim, longSleepSQL)
			started := waitPgSleep(t, h.pg, pid)
			for range 3 {
				sendCancel(t, h.rig, h.mallory, k.pid, k.secret)
			}
			requireNotCancelled(t, h.pg, pid, started, done)
			h.assertServes(t, h.normal)
			h.assertNoRoles(t, h.prefix)
		})
	}
}

// validRole is what every provisioned role name must look like.
var validRole = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// TestHostile_Names: login names, machine names and database names full of
// quotes, semicolons, backslashes, Unicode and 300 characters are served
// with a valid role or refused with a proper ErrorResponse; nothing is
// injected.
func TestHostile_Names(t *testing.T) {
	h := newHostileRig(t, "namer")
	pg := h.pg
	rolesBefore := len(pg.Roles(t, ""))

	t.Run("login and machine", func(t *testing.T) {
		long := hostileName(300)
		for _, n := range []struct{ login, machine string }{
			{long + "@evil.example", long},
			{`o'brien";drop role postgres;--\@evil.example`, `m'a";c\h`},
			{"ÉMILE💥@evil.example", "Büro-Rechner"},
		} {
			c := h.tn.NewClient(t, n.login, n.machine)
			h.grant(c, readonlyAppdb)
			conn := h.mustConnect(c, "appdb", nil)
			var user string
			if err := conn.QueryRow(context.Background(), "select current_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if !validRole.MatchString(user) || !strings.HasPrefix(user, "wp_") {
				t.Errorf("login %q machine %q: role %q, want [a-z0-9_]{1,63} starting wp_", n.login, n.machine, user)
			}
			conn.Close(context.Background())
		}
		if !pg.RoleExists(t, "postgres") {
			t.Fatal("the superuser role is gone")
		}
	})

	t.Run("database", func(t *testing.T) {
		weird := `db'x";drop role postgres;--\ é💥`
		pg.CreateAppDatabase(t, weird)
		conn, err := h.connectDB(h.mallory, weird)
		if err != nil {
			t.Fatalf("connect to %q: %v", weird, err)
		}
		var db, user string
		if err := conn.QueryRow(context.Background(), "select current_database(), current_user").Scan(&db, &user); err != nil {
			t.Fatal(err)
		}
		if db != weird || !validRole.MatchString(user) {
			t.Errorf("served database %q as %q; want %q with a valid role name", db, user, weird)
		}
		conn.Close(context.Background())
		for _, name := range []string{hostileName(300), hostileName(40), "appdb\\", "appdb'"} {
			conn, err := h.connectDB(h.mallory, name)
			if err == nil {
				conn.Close(context.Background())
			}
			pe := pgError(err)
			if pe == nil || pe.Severity != "FATAL" {
				t.Fatalf("database %q: got %v, want a FATAL ErrorResponse", name, err)
			}
			t.Logf("database %.20q…: %s %s", name, pe.Code, pe.Message)
			if strings.Contains(pe.Message, "syntax") {
				t.Errorf("database %q: %q looks like an injected SQL error", name, pe.Message)
			}
		}
		// Only the real database got roles.
		for _, role := range pg.Roles(t, h.prefix) {
			if !strings.HasPrefix(role, h.prefix+"db_x") {
				t.Errorf("role %q was created for a database that does not exist", role)
			}
		}
		if !pg.RoleExists(t, "postgres") {
			t.Fatal("the superuser role is gone")
		}
	})

	t.Run("database name longer than 63 bytes", func(t *testing.T) {
		// PostgreSQL truncates a startup packet's database name to 63 bytes.
		// Without a length check, a "*" grant could mint a new role for
		// every suffix of a 63-byte database name.
		name63 := strings.Repeat("d", 63)
		pg.CreateAppDatabase(t, name63)
		before := len(pg.Roles(t, h.prefix))
		for _, suffix := range []string{"x", "yy", "zzz"} {
			conn, err := h.connectDB(h.mallory, name63+suffix)
			if err == nil {
				conn.Close(context.Background())
			}
			if pe := pgError(err); pe == nil || pe.Severity != "FATAL" {
				t.Fatalf("database %q: got %v, want a FATAL ErrorResponse", name63+suffix, err)
			}
		}
		if after := len(pg.Roles(t, h.prefix)); after != before {
			t.Errorf("roles for mallory: %d before, %d after asking for three over-long database names; want no new role", before, after)
		}
	})
	h.waitIdle(t)
	h.assertServes(t, h.normal)
	t.Logf("roles: %d before, %d after", rolesBefore, len(pg.Roles(t, "")))
}

// TestHostile_AbandonedConnections opens 500 connections at once and
// abandons them in four ways (closed at once, silent, half a startup
// packet, half a packet then closed). Waypoint closes them all, a normal
// client still works, and the goroutine count returns to its baseline.
func TestHostile_AbandonedConnections(t *testing.T) {
	h := newHostileRig(t, "abandoner")
	h.assertServes(t, h.normal) // warm up pools and tsnet paths
	h.waitIdle(t)
	baseG, baseFD := goroutines(), openFDs()
	const n = 500
	startup := startupBytes(t, map[string]string{"user": "x", "database": "appdb"})
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		failed int
	)
	dial := h.tn.Dialer(h.mallory)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := dial(ctx, "tcp", h.addr)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			switch i % 4 {
			case 0:
				conn.Close()
				return
			case 2, 3:
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = conn.Write(startup[:len(startup)/2])
				if i%4 == 3 {
					conn.Close()
					return
				}
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}()
	}
	wg.Wait()
	peak := h.srv.ActiveSessions()
	t.Logf("%d connections opened (%d dials failed), %d left open, %d sessions active; goroutines %d at baseline, %d now",
		n-failed, failed, len(conns), peak, baseG, goroutines())
	if failed > n/10 {
		t.Errorf("%d of %d dials failed", failed, n)
	}
	h.waitIdle(t) // the silent ones are closed at the handshake deadline
	for _, c := range conns {
		c.Close()
	}
	h.assertServes(t, h.normal)
	h.assertNoRoles(t, h.prefix)
	// tsnet keeps a few goroutines per recently closed TCP connection for a
	// while; a leak in Waypoint would keep ≥ 1 per connection (500+).
	g, ok := settles(baseG+n/10, goroutines)
	fd := openFDs()
	t.Logf("after: goroutines %d (baseline %d), fds %d (baseline %d)", g, baseG, fd, baseFD)
	if !ok {
		t.Errorf("goroutines: %d, baseline %d: did not return to baseline within %v", g, baseG, settleWithin)
	}
}

// recordingProvisioner remembers every password its Provisioner handed out.
type recordingProvisioner struct {
	proxy.Provisioner
	mu        sync.Mutex
	passwords []string
}

func (p *recordingProvisioner) Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (proxy.Credentials, error) {
	cred, err := p.Provisioner.Ensure(ctx, peer, eff)
	if err == nil {
		p.mu.Lock()
		p.passwords = append(p.passwords, cred.Password)
		p.mu.Unlock()
	}
	return cred, err
}

// TestHostile_PasswordsNeverLeak: the provisioned roles' passwords appear
// neither in Waypoint's log nor in the backend's statement log (which sees
// only verifiers), nor in what clients are told, over successful sessions,
// preset-limited sessions and refusals.
func TestHostile_PasswordsNeverLeak(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{LogStatements: true})
	rec := &recordingProvisioner{}
	r := newRig(t, pg, func(o *proxy.Options) {
		rec.Provisioner = o.Provisioner
		o.Provisioner = rec
	})
	alice := r.client("alice@example.com", "laptop", readwriteAppdb)
	var told []string
	for _, params := range []map[string]string{nil, {"waypoint_presets": "readonly"}, nil} {
		conn := r.mustConnect(alice, "appdb", params)
		_, err := conn.Exec(context.Background(), "insert into items(name) values ('x')")
		if err != nil {
			told = append(told, err.Error())
		}
		conn.Close(context.Background())
	}
	for _, db := range []string{"nosuchdb", "billing"} {
		if _, err := r.connectDB(alice, db); err != nil {
			told = append(told, err.Error())
		}
	}
	r.waitIdle(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.passwords) < 3 {
		t.Fatalf("recorded %d passwords, want at least 3", len(rec.passwords))
	}
	places := map[string]string{
		"Waypoint's log":    r.logs.String(),
		"the server log":    pg.ServerLog(t),
		"client error text": strings.Join(told, "\n"),
	}
	for _, pw := range rec.passwords {
		for where, text := range places {
			if strings.Contains(text, pw) {
				t.Errorf("a role password appears in %s", where)
			}
		}
	}
	t.Logf("%d passwords checked against %d bytes of logs", len(rec.passwords), len(places["Waypoint's log"])+len(places["the server log"]))
}

// TestHostile_AdminPresetCannotHijackProvisioning: a caller with the admin
// preset may create functions in its schemas. It plants overloads of
// functions Waypoint's admin connection calls unqualified in that database
// (CVE-2018-1058 style: an exact-match overload in public beats pg_catalog's
// when pg_catalog's needs an implicit cast). Waypoint's admin must never run
// them: they would run with CREATEROLE.
func TestHostile_AdminPresetCannotHijackProvisioning(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	pg.CreateAppDatabase(t, "trapdb")
	mallory := r.client("mallory@evil.example", "evil", grantJSON(map[string]authz.DatabaseGrant{"trapdb": dbGrant("admin")}))
	conn := r.mustConnect(mallory, "trapdb", nil)
	ctx := context.Background()
	const trap = `
CREATE TABLE public.trap (who text);
GRANT INSERT ON public.trap TO PUBLIC;
CREATE FUNCTION public.hashint8extended(bigint, integer) RETURNS bigint
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.trap VALUES (current_user); RETURN 0; END $$;
CREATE FUNCTION public.starts_with(name, text) RETURNS boolean
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.trap VALUES (current_user); RETURN false; END $$;
CREATE FUNCTION public.has_table_privilege(name, oid, varchar) RETURNS boolean
  LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.trap VALUES (current_user); RETURN true; END $$;`
	if _, err := conn.Exec(ctx, trap); err != nil {
		t.Fatalf("plant the trap: %v", err)
	}
	conn.Close(ctx)
	for range 3 { // warm and cold paths, and a table created in between
		c := r.mustConnect(mallory, "trapdb", nil)
		if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS public.t2 (x int)"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	super := pg.Super(t, "trapdb")
	var who []string
	if err := super.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT who), '{}') FROM public.trap").Scan(&who); err != nil {
		t.Fatal(err)
	}
	for _, w := range who {
		if w != "" && !strings.HasPrefix(w, "wp_mallory") {
			t.Errorf("the caller's function ran as %q during provisioning", w)
		}
	}
}
