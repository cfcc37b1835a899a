package pgwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// recordingConn records what is read from it, to see which authentication
// request the real server sent.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// authRequest returns the type of the first message the server sent.
func (c *recordingConn) authRequest(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	raw := append([]byte(nil), c.buf.Bytes()...)
	c.mu.Unlock()
	msg, err := pgproto3.NewFrontend(bytes.NewReader(raw), nil).Receive()
	if err != nil {
		t.Fatalf("decode first server message: %v", err)
	}
	return fmt.Sprintf("%T", msg)
}

// createLoginRole creates a LOGIN role with password on c and returns its name.
func createLoginRole(t *testing.T, c *pgtest.Cluster, password string) string {
	t.Helper()
	role := strings.ToLower(strings.NewReplacer("/", "_", "=", "_", ".", "_", "-", "_").Replace("pgwire_" + t.Name()))
	c.Exec(t, "postgres", fmt.Sprintf("DROP ROLE IF EXISTS %s", role))
	c.Exec(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password))
	t.Cleanup(func() { c.Exec(t, "postgres", fmt.Sprintf("DROP ROLE IF EXISTS %s", role)) })
	return role
}

// queryOne runs sql on a hijacked backend conn with the simple protocol and
// returns the first column of the first row.
func queryOne(t *testing.T, conn net.Conn, sql string) string {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(liveness))
	defer conn.SetDeadline(time.Time{})
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var value string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("query %q: %v", sql, err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			value = string(m.Values[0])
		case *pgproto3.ErrorResponse:
			t.Fatalf("query %q: %s %s", sql, m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return value
		}
	}
}

// testUpstreamAuth logs in to a real PostgreSQL that requires auth as a fresh
// role, allowing the methods requireAuth (nil: the default), checks which
// authentication request the server made, and runs a SELECT over the
// hijacked connection.
func testUpstreamAuth(t *testing.T, auth pgtest.Auth, requireAuth []string, wantRequest string) {
	pgtest.EachVersion(t, pgtest.Options{Auth: auth}, func(t *testing.T, c *pgtest.Cluster) {
		const password = "pa$$ 'wörd\\"
		role := createLoginRole(t, c, strings.ReplaceAll(password, "'", "''"))
		var rec *recordingConn
		up, err := connectUpstream(t, UpstreamConfig{
			Addr: c.Addr(), Security: BackendSecurity{TLS: "prefer", Auth: requireAuth}, User: role, Password: password, Database: "postgres",
			Params: map[string]string{"application_name": "waypoint-test"},
			DialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				rec = &recordingConn{Conn: conn}
				return rec, nil
			},
		})
		if err != nil {
			t.Fatalf("ConnectUpstream: %v", err)
		}
		if got := rec.authRequest(t); got != wantRequest {
			t.Errorf("got server request %s, want %s", got, wantRequest)
		}
		if got := queryOne(t, up.Conn, "SELECT current_user || ' ' || current_setting('application_name')"); got != role+" waypoint-test" {
			t.Errorf("got %q, want %q", got, role+" waypoint-test")
		}
		if up.Key.ProcessID == 0 || up.ParameterStatus["server_version"] == "" {
			t.Errorf("got key %+v and server_version %q, want both set", up.Key, up.ParameterStatus["server_version"])
		}
	})
}

func TestConnectUpstream_SCRAM(t *testing.T) {
	testUpstreamAuth(t, pgtest.AuthSCRAM, nil, "*pgproto3.AuthenticationSASL")
}

func TestConnectUpstream_MD5(t *testing.T) {
	testUpstreamAuth(t, pgtest.AuthMD5, nil, "*pgproto3.AuthenticationMD5Password")
}

func TestConnectUpstream_CleartextWhenAllowed(t *testing.T) {
	testUpstreamAuth(t, pgtest.AuthPassword, []string{AuthSCRAM, AuthPassword}, "*pgproto3.AuthenticationCleartextPassword")
}

// TestConnectUpstream_CleartextRefusedByDefault logs in, with the default
// methods, to a real PostgreSQL whose pg_hba.conf asks for the password in
// cleartext: the login fails as an *AuthMethodError for "password". (That
// nothing is sent is shown with a recording fake in
// TestConnectUpstream_BackendAuth.)
func TestConnectUpstream_CleartextRefusedByDefault(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{Auth: pgtest.AuthPassword}, func(t *testing.T, c *pgtest.Cluster) {
		role := createLoginRole(t, c, "right")
		_, err := connectUpstream(t, UpstreamConfig{Addr: c.Addr(), Security: BackendSecurity{TLS: "prefer"}, User: role, Password: "right", Database: "postgres"})
		checkUpstreamError(t, err, AuthFailed, "")
		ae, ok := errors.AsType[*AuthMethodError](err)
		if !ok || ae.Method != AuthPassword {
			t.Fatalf("got %v, want an *AuthMethodError for method password", err)
		}
	})
}

func TestConnectUpstream_PostgresRefusals(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Options{})
	role := createLoginRole(t, c, "right")
	tests := []struct {
		name     string
		cfg      UpstreamConfig
		wantKind UpstreamErrorKind
		wantCode string
	}{
		{name: "wrong password", cfg: UpstreamConfig{User: role, Password: "wrong", Database: "postgres"}, wantKind: AuthFailed, wantCode: "28P01"},
		{name: "unknown role", cfg: UpstreamConfig{User: "no_such_role", Password: "x", Database: "postgres"}, wantKind: AuthFailed, wantCode: "28P01"},
		{name: "database does not exist", cfg: UpstreamConfig{User: role, Password: "right", Database: "no_such_db"}, wantKind: BackendError, wantCode: "3D000"},
		{name: "require against a server without TLS", cfg: UpstreamConfig{User: role, Password: "right", Database: "postgres", Security: BackendSecurity{TLS: "require"}}, wantKind: Unreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = c.Addr()
			if cfg.Security.TLS == "" {
				cfg.Security.TLS = "disable"
			}
			_, err := connectUpstream(t, cfg)
			checkUpstreamError(t, err, tt.wantKind, tt.wantCode)
		})
	}
}

func TestCancelBackend_CancelsRunningQuery(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Options{})
	role := createLoginRole(t, c, "pw")
	up, err := connectUpstream(t, UpstreamConfig{Addr: c.Addr(), Security: BackendSecurity{TLS: "disable"}, User: role, Password: "pw", Database: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	_ = up.Conn.SetDeadline(time.Now().Add(liveness))
	fe := pgproto3.NewFrontend(up.Conn, up.Conn)
	fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(30)"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() { got <- readUntilError(fe) }()

	// A cancel that arrives before the query starts does nothing, so repeat
	// it until the reader sees the query fail.
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := CancelBackend(ctx, up); err != nil {
			t.Fatalf("CancelBackend: %v", err)
		}
		select {
		case code := <-got:
			if code != "57014" {
				t.Fatalf("got %q, want SQLSTATE 57014 (query_canceled)", code)
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("query was not cancelled")
		}
	}
}

// readUntilError returns the SQLSTATE of the first ErrorResponse, or a
// description of what ended the read.
func readUntilError(fe *pgproto3.Frontend) string {
	for {
		msg, err := fe.Receive()
		if err != nil {
			return "read error: " + err.Error()
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return m.Code
		case *pgproto3.ReadyForQuery:
			return "query finished without error"
		}
	}
}
