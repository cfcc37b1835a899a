package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

var readwriteAppdb = grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readwrite")})
var readonlyAppdb = grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")})

// selfSigned returns a certificate for name and a pool that trusts it.
func selfSigned(t *testing.T, name string) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert := testkit.SelfSigned(t, time.Now().Add(24*time.Hour), name)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return cert, pool
}

// TestIntegration_Proxy_TLS: sslmode=require and sslnegotiation=direct both
// work and the client sees the file certificate; tls_mode=require refuses a
// plaintext client with an ErrorResponse.
func TestIntegration_Proxy_TLS(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		cert, pool := selfSigned(t, "db.example.com")
		sel := &certs.Selector{File: cert}
		r := newRig(t, pg, func(o *proxy.Options) {
			o.TLSMode = pgwire.TLSRequire
			o.TLSConfig = sel.TLSConfig()
		})
		alice := r.client("alice@example.com", "laptop", readonlyAppdb)
		for _, extra := range []string{"sslmode=require", "sslmode=verify-full&sslnegotiation=direct"} {
			t.Run(extra, func(t *testing.T) {
				cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://x@%s/appdb?%s&connect_timeout=20", r.addr, extra))
				if err != nil {
					t.Fatal(err)
				}
				cfg.DialFunc = stableAddrDialer(r.tn.Dialer(alice))
				cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
				cfg.TLSConfig.RootCAs = pool
				cfg.TLSConfig.ServerName = "db.example.com"
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				conn, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatalf("connect: %v\n%s", err, r.logs.String())
				}
				defer conn.Close(ctx)
				tc, ok := conn.PgConn().Conn().(*tls.Conn)
				if !ok {
					t.Fatalf("client connection is %T, want *tls.Conn", conn.PgConn().Conn())
				}
				st := tc.ConnectionState()
				if !bytes.Equal(st.PeerCertificates[0].Raw, cert.Leaf.Raw) {
					t.Errorf("client saw certificate %v, want the file certificate", st.PeerCertificates[0].Subject)
				}
				var one int
				if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
					t.Fatal(err)
				}
			})
		}
		t.Run("plaintext refused", func(t *testing.T) {
			_, err := r.connect(alice, "appdb", nil)
			pe := pgError(err)
			if pe == nil || pe.Code != "28000" || !strings.Contains(pe.Message, "requires TLS") {
				t.Fatalf("got %v, want FATAL 28000 saying TLS is required", err)
			}
		})
	})
}

// TestIntegration_Proxy_CancelFromPgx: cancelling the context of a running
// pg_sleep (the backend is inside it) sends a CancelRequest through
// Waypoint, which forwards it with the backend's real key: the query fails
// with 57014 quickly.
func TestIntegration_Proxy_CancelFromPgx(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readonlyAppdb)
		cfg := r.config(alice, "appdb", nil)
		// Ask pgx to send a CancelRequest when the context ends (its
		// default only sets a deadline on the socket).
		cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
		}
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, "select pg_sleep(30)")
			done <- err
		}()
		waitPgSleep(t, pg, conn.PgConn().PID())
		start := time.Now()
		cancel()
		err = <-done
		elapsed := time.Since(start)
		if got := sqlstate(err); got != "57014" {
			t.Fatalf("got %v (SQLSTATE %q), want 57014 query_canceled", err, got)
		}
		t.Logf("pg_sleep(30) cancelled %v after the context was", elapsed.Round(time.Millisecond))
		if elapsed > 10*time.Second {
			t.Errorf("cancel took %v; the query was not cancelled by the CancelRequest", elapsed)
		}
	})
}

// TestIntegration_Proxy_CancelFromOtherNodeIgnored: a CancelRequest with a
// valid key from a different tailnet node is ignored.
func TestIntegration_Proxy_CancelFromOtherNodeIgnored(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	mallory := r.client("mallory@example.com", "evil", readonlyAppdb)

	cfg := r.config(alice, "appdb", nil)
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pid, secret := conn.PgConn().PID(), conn.PgConn().SecretKey()

	done := runQuery(conn, "select pg_sleep(3)")
	started := waitPgSleep(t, pg, pid)
	sendCancel(t, r, mallory, pid, secret)
	requireNotCancelled(t, pg, pid, started, done)
}

// sendCancel sends a CancelRequest for (pid, secret) to the listener from
// the tailnet node c and waits for Waypoint to close the connection.
func sendCancel(t *testing.T, r *rig, c *tailnettest.Client, pid uint32, secret []byte) {
	t.Helper()
	sendCancelTo(t, r, r.addr, c, pid, secret)
}

// sendCancelTo is sendCancel to the listener at addr.
func sendCancelTo(t *testing.T, r *rig, addr string, c *tailnettest.Client, pid uint32, secret []byte) {
	t.Helper()
	// A liveness bound only: on a loaded machine a dial through the
	// in-process tailnet has taken over 20 s.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := r.tn.Dialer(c)(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cancelOver(t, conn, pid, secret)
}

// cancelOver sends a CancelRequest for (pid, secret) on conn, a new
// connection to a listener, and waits until Waypoint closes it, having
// handled the request; like PostgreSQL it must answer nothing. It closes
// conn.
func cancelOver(t *testing.T, conn net.Conn, pid uint32, secret []byte) {
	t.Helper()
	defer conn.Close()
	b, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, conn, b)
	if data := readUntilClosed(t, conn); len(data) != 0 {
		t.Fatalf("got %q in answer to a CancelRequest, want the connection closed unanswered", data)
	}
}

// TestIntegration_Proxy_ProtocolVersions: a client asking for 3.2 (pgx's
// max_protocol_version) or 3.9999 (PostgreSQL 19 libpq's default) is told
// the server speaks 3.0 and connects.
func TestIntegration_Proxy_ProtocolVersions(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readonlyAppdb)
		t.Run("3.2 via pgx", func(t *testing.T) {
			cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://x@%s/appdb?sslmode=disable&max_protocol_version=3.2", r.addr))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DialFunc = stableAddrDialer(r.tn.Dialer(alice))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("connect with 3.2: %v", err)
			}
			defer conn.Close(ctx)
			var one int
			if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("3.9999 raw", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := r.tn.Dialer(alice)(ctx, "tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			var body []byte
			body = binary.BigEndian.AppendUint32(body, 3<<16|9999)
			for _, kv := range []string{"user", "x", "database", "appdb", ""} {
				body = append(body, kv...)
				body = append(body, 0)
			}
			pkt := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
			if _, err := conn.Write(append(pkt, body...)); err != nil {
				t.Fatal(err)
			}
			fe := pgproto3.NewFrontend(conn, conn)
			var got []string
			for {
				msg, err := fe.Receive()
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, fmt.Sprintf("%T", msg))
				if _, ok := msg.(*pgproto3.ErrorResponse); ok {
					t.Fatalf("error response: %+v", msg)
				}
				if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
					break
				}
			}
			if got[0] != "*pgproto3.NegotiateProtocolVersion" {
				t.Errorf("first message %s, want NegotiateProtocolVersion (all: %v)", got[0], got)
			}
		})
	})
}

// TestIntegration_Proxy_Psql runs the key paths with libpq's psql through a
// local port that tunnels over the tailnet.
func TestIntegration_Proxy_Psql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("psql not installed")
		}
		t.Skip("psql not installed")
	}
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readwriteAppdb)
		bob := r.client("bob@example.com", "desktop", readonlyAppdb)
		aliceAddr, bobAddr := r.forward(alice), r.forward(bob)
		run := func(addr, dsnExtra, sql string) (string, error) {
			host, port, _ := strings.Cut(addr, ":")
			dsn := fmt.Sprintf("host=%s port=%s dbname=appdb user=ignored sslmode=disable connect_timeout=20 %s", host, port, dsnExtra)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-Atc", sql, dsn).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if out, err := run(aliceAddr, "", "insert into items(name) values ('psql') returning name"); err != nil || out != "psql" {
			t.Errorf("alice insert via psql: %q %v", out, err)
		}
		if out, err := run(bobAddr, "", "insert into items(name) values ('psql')"); err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("bob insert via psql: got %q %v, want permission denied", out, err)
		}
		if out, err := run(aliceAddr, "options='-c waypoint_presets=readonly'", "insert into items(name) values ('psql')"); err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("alice with options=-c waypoint_presets=readonly: got %q %v, want permission denied", out, err)
		}
		if out, err := run(aliceAddr, "application_name=psql-e2e", "select application_name from pg_stat_activity where pid = pg_backend_pid()"); err != nil || out != "psql-e2e" {
			t.Errorf("application_name via psql: %q %v", out, err)
		}

		t.Run("cancel", func(t *testing.T) {
			host, port, _ := strings.Cut(aliceAddr, ":")
			dsn := fmt.Sprintf("host=%s port=%s dbname=appdb user=ignored sslmode=disable application_name=psql-cancel", host, port)
			cmd := exec.Command(psql, "-X", "-c", "select pg_sleep(30)", dsn)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			admin := pg.Super(t, "postgres")
			var pid uint32
			waitFor(t, "psql's session on the backend", func() bool {
				return admin.QueryRow(context.Background(), "SELECT pid FROM pg_stat_activity WHERE application_name = 'psql-cancel'").Scan(&pid) == nil
			})
			waitPgSleep(t, pg, pid)
			start := time.Now()
			cmd.Process.Signal(syscall.SIGINT)
			waitErr := make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
			select {
			case <-waitErr:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("psql still running 20s after SIGINT: %s", out.String())
			}
			t.Logf("psql returned %v after SIGINT", time.Since(start).Round(time.Millisecond))
			if !strings.Contains(out.String(), "canceling statement due to user request") {
				t.Errorf("psql output %q, want the query cancelled", out.String())
			}
		})
	})
}
