package pgwire

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// fakeBackend accepts connections on loopback and runs handle on each one.
func fakeBackend(t *testing.T, handle func(conn net.Conn)) string {
	t.Helper()
	return testkit.ServeLoopback(t, func(conn net.Conn) {
		_ = conn.SetDeadline(time.Now().Add(liveness))
		handle(conn)
	})
}

// backendScript describes how a scripted backend answers a login.
type backendScript struct {
	auth     string // "md5" (also ""), "cleartext" or "trust" (asks for nothing)
	password string // the password it accepts
	failWith *pgproto3.ErrorResponse
	tls      *tls.Config // answer SSLRequest with 'S' when set, else 'N'
	late     bool        // send a ParameterStatus right behind ReadyForQuery
	seen     chan map[string]string
}

// serve plays PostgreSQL's side of a login on conn.
func (s backendScript) serve(conn net.Conn) {
	be := pgproto3.NewBackend(conn, conn)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		return
	}
	if _, ok := msg.(*pgproto3.SSLRequest); ok {
		if s.tls == nil {
			_, _ = conn.Write([]byte{'N'})
			return // like pgconn, the client retries on a new connection
		}
		_, _ = conn.Write([]byte{'S'})
		tc := tls.Server(conn, s.tls)
		be = pgproto3.NewBackend(tc, tc)
		if msg, err = be.ReceiveStartupMessage(); err != nil {
			return
		}
	}
	startup, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		return
	}
	if s.seen != nil {
		s.seen <- startup.Parameters
	}
	if !s.authenticate(be, startup.Parameters["user"]) {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.99"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 99, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if s.late {
		be.Send(&pgproto3.ParameterStatus{Name: "late", Value: "1"})
	}
	if be.Flush() != nil {
		return
	}
	answerQueries(be)
}

// authenticate runs the password exchange and reports success.
func (s backendScript) authenticate(be *pgproto3.Backend, user string) bool {
	var want string
	switch s.auth {
	case "trust":
		return s.failWith == nil
	case "cleartext":
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		_ = be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
		want = s.password
	default:
		salt := [4]byte{9, 8, 7, 6}
		be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
		_ = be.SetAuthType(pgproto3.AuthTypeMD5Password)
		want = "md5" + md5hex(md5hex(s.password+user)+string(salt[:]))
	}
	if be.Flush() != nil {
		return false
	}
	msg, err := be.Receive()
	if err != nil {
		return false
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok || pw.Password != want {
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed for user \"" + user + "\""})
		_ = be.Flush()
		return false
	}
	if s.failWith != nil {
		be.Send(s.failWith)
		_ = be.Flush()
		return false
	}
	return true
}

// answerQueries answers every simple query with an empty result until EOF
// (pgconn's SyncConn pings with one).
func answerQueries(be *pgproto3.Backend) {
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.Query); ok {
			be.Send(&pgproto3.EmptyQueryResponse{})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
		}
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func connectUpstream(t *testing.T, cfg UpstreamConfig) (*Upstream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	up, err := ConnectUpstream(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { up.Conn.Close() })
	}
	return up, err
}

func TestConnectUpstream_ScriptedBackend(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name     string
		script   backendScript
		cfg      UpstreamConfig
		wantKind UpstreamErrorKind // 0 = success
		wantCode string
		wantTLS  bool
	}{
		{name: "cleartext when listed", script: backendScript{auth: "cleartext", password: "s3cret"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable", Auth: []string{AuthPassword}}, Password: "s3cret"}},
		{name: "trust", script: backendScript{auth: "trust"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable"}, Password: "s3cret"}},
		{name: "md5", script: backendScript{auth: "md5", password: "s3cret"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable"}, Password: "s3cret"}},
		{name: "wrong password", script: backendScript{auth: "md5", password: "s3cret"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable"}, Password: "nope"},
			wantKind: AuthFailed, wantCode: "28P01"},
		{name: "database does not exist", script: backendScript{password: "pw", failWith: &pgproto3.ErrorResponse{Severity: "FATAL", Code: "3D000", Message: `database "appdb" does not exist`}},
			cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable"}, Password: "pw"}, wantKind: BackendError, wantCode: "3D000"},
		{name: "too many connections", script: backendScript{password: "pw", failWith: &pgproto3.ErrorResponse{Severity: "FATAL", Code: "53300", Message: "too many connections"}},
			cfg: UpstreamConfig{Security: BackendSecurity{TLS: "disable"}, Password: "pw"}, wantKind: BackendError, wantCode: "53300"},
		{name: "prefer falls back to plaintext", script: backendScript{password: "pw"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "prefer"}, Password: "pw"}},
		{name: "empty TLS mode means prefer", script: backendScript{password: "pw"}, cfg: UpstreamConfig{Password: "pw"}},
		{name: "prefer uses TLS when offered", script: backendScript{password: "pw", tls: cert.server}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "prefer"}, Password: "pw"}, wantTLS: true},
		{name: "require refuses plaintext", script: backendScript{password: "pw"}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "require"}, Password: "pw"}, wantKind: Unreachable},
		{name: "require without CA skips verification", script: backendScript{password: "pw", tls: cert.server}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "require"}, Password: "pw"}, wantTLS: true},
		{name: "require with CA verifies the chain, not the name", script: backendScript{password: "pw", tls: cert.server},
			cfg: UpstreamConfig{Security: BackendSecurity{TLS: "require", RootCAs: cert.pool, ServerName: "not-in-cert"}, Password: "pw"}, wantTLS: true},
		{name: "require with the wrong CA", script: backendScript{password: "pw", tls: cert.server},
			cfg: UpstreamConfig{Security: BackendSecurity{TLS: "require", RootCAs: newTestCert(t).pool}, Password: "pw"}, wantKind: Unreachable},
		{name: "verify-full", script: backendScript{password: "pw", tls: cert.server}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "verify-full", RootCAs: cert.pool}, Password: "pw"}, wantTLS: true},
		{name: "verify-full with the wrong name", script: backendScript{password: "pw", tls: cert.server},
			cfg: UpstreamConfig{Security: BackendSecurity{TLS: "verify-full", RootCAs: cert.pool, ServerName: "other.example"}, Password: "pw"}, wantKind: Unreachable},
		{name: "verify-full with the system pool", script: backendScript{password: "pw", tls: cert.server}, cfg: UpstreamConfig{Security: BackendSecurity{TLS: "verify-full"}, Password: "pw"}, wantKind: Unreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeBackend(t, tt.script.serve)
			cfg := tt.cfg
			cfg.Addr, cfg.User, cfg.Database = addr, "wp_alice", "appdb"
			up, err := connectUpstream(t, cfg)
			if tt.wantKind != 0 {
				checkUpstreamError(t, err, tt.wantKind, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("ConnectUpstream: %v", err)
			}
			if up.Key != (CancelKey{ProcessID: 99, SecretKey: 0x01020304}) {
				t.Errorf("got key %+v, want 99/01020304", up.Key)
			}
			if got := up.ParameterStatus["server_version"]; got != "15.99" {
				t.Errorf("got server_version %q, want 15.99", got)
			}
			_, isTLS := up.Conn.(*tls.Conn)
			if isTLS != tt.wantTLS || (up.TLS != nil) != tt.wantTLS {
				t.Errorf("got TLS conn %v config %v, want %v", isTLS, up.TLS != nil, tt.wantTLS)
			}
		})
	}
}

func checkUpstreamError(t *testing.T, err error, kind UpstreamErrorKind, code string) {
	t.Helper()
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Kind != kind {
		t.Fatalf("got %v, want an UpstreamError of kind %v", err, kind)
	}
	if IsAuthFailed(err) != (kind == AuthFailed) || IsUnreachable(err) != (kind == Unreachable) {
		t.Errorf("predicates disagree with kind %v for %v", kind, err)
	}
	gotCode, msg, ok := BackendErrorInfo(err)
	if ok != (kind == BackendError) || (ok && (gotCode != code || msg == "")) {
		t.Errorf("got BackendErrorInfo %q %q %v, want code %q for kind %v", gotCode, msg, ok, code, kind)
	}
	if code == "" {
		return
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("got %v, want a reachable *pgconn.PgError with code %s", err, code)
	}
}

func TestConnectUpstream_StartupParameters(t *testing.T) {
	seen := make(chan map[string]string, 1)
	addr := fakeBackend(t, backendScript{password: "pw", seen: seen}.serve)
	_, err := connectUpstream(t, UpstreamConfig{
		Addr: addr, Security: BackendSecurity{TLS: "disable"}, User: "wp_alice", Password: "pw", Database: "appdb",
		Params: map[string]string{"application_name": "psql", "options": "-c search_path=app", "user": "mallory", "database": "other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := <-seen
	want := map[string]string{"user": "wp_alice", "database": "appdb", "application_name": "psql", "options": "-c search_path=app"}
	if !equalMaps(got, want) {
		t.Errorf("backend saw startup parameters %v, want %v", got, want)
	}
}

func TestConnectUpstream_UnreadBytesAreNotLost(t *testing.T) {
	// A ParameterStatus right behind ReadyForQuery may land in pgconn's read
	// buffer. It must end up either in Upstream.ParameterStatus (pgconn read
	// it while syncing) or on the hijacked conn, never be dropped.
	addr := fakeBackend(t, backendScript{password: "pw", late: true}.serve)
	up, err := connectUpstream(t, UpstreamConfig{Addr: addr, Security: BackendSecurity{TLS: "disable"}, User: "u", Password: "pw", Database: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if up.ParameterStatus["late"] == "1" {
		return
	}
	_ = up.Conn.SetReadDeadline(time.Now().Add(liveness))
	msg, err := pgproto3.NewFrontend(up.Conn, io.Discard).Receive()
	if err != nil {
		t.Fatal(err)
	}
	if ps, ok := msg.(*pgproto3.ParameterStatus); !ok || ps.Name != "late" {
		t.Errorf("got %s on the hijacked conn, want ParameterStatus late", describe(msg))
	}
}

func TestConnectUpstream_Unreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	_, err = connectUpstream(t, UpstreamConfig{Addr: addr, Security: BackendSecurity{TLS: "disable"}, User: "u", Password: "pw"})
	checkUpstreamError(t, err, Unreachable, "")

	dialErr := errors.New("no route to backend")
	_, err = connectUpstream(t, UpstreamConfig{Addr: "db.internal:5432", User: "u",
		DialFunc: func(context.Context, string, string) (net.Conn, error) { return nil, dialErr }})
	checkUpstreamError(t, err, Unreachable, "")
	if !errors.Is(err, dialErr) {
		t.Errorf("got %v, want it to wrap the dial error", err)
	}
}

func TestConnectUpstream_InvalidConfig(t *testing.T) {
	for _, cfg := range []UpstreamConfig{
		{Addr: "no-port"},
		{Addr: "h:0"},
		{Addr: ":5432"},
		{Addr: "h:5432", Security: BackendSecurity{TLS: "verify-ca"}},
		{Addr: "h:5432", Security: BackendSecurity{Auth: []string{"gss"}}},
		{Addr: "h:5432", Security: BackendSecurity{Auth: []string{}}},
	} {
		if _, err := ConnectUpstream(context.Background(), cfg); err == nil {
			t.Errorf("ConnectUpstream(%+v): got nil error, want one", cfg)
		}
	}
}

func TestCancelBackend_Scripted(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name   string
		tls    *tls.Config // client side; nil = plaintext
		server *tls.Config
	}{
		{name: "plaintext"},
		{name: "TLS", tls: &tls.Config{RootCAs: cert.pool, ServerName: "localhost"}, server: cert.server},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan *pgproto3.CancelRequest, 1)
			addr := fakeBackend(t, func(conn net.Conn) {
				be := pgproto3.NewBackend(conn, conn)
				msg, err := be.ReceiveStartupMessage()
				if _, ok := msg.(*pgproto3.SSLRequest); ok && tt.server != nil {
					_, _ = conn.Write([]byte{'S'})
					tc := tls.Server(conn, tt.server)
					defer tc.Close()
					msg, err = pgproto3.NewBackend(tc, tc).ReceiveStartupMessage()
				}
				if err != nil {
					return
				}
				if cr, ok := msg.(*pgproto3.CancelRequest); ok {
					got <- &pgproto3.CancelRequest{ProcessID: cr.ProcessID, SecretKey: append([]byte(nil), cr.SecretKey...)}
				}
			})
			up := &Upstream{Addr: addr, Key: CancelKey{ProcessID: 7, SecretKey: 0x0a0b0c0d}, TLS: tt.tls}
			ctx, cancel := context.WithTimeout(context.Background(), liveness)
			defer cancel()
			if err := CancelBackend(ctx, up); err != nil {
				t.Fatal(err)
			}
			select {
			case cr := <-got:
				if cr.ProcessID != 7 || hex.EncodeToString(cr.SecretKey) != "0a0b0c0d" {
					t.Errorf("got cancel %d/%x, want 7/0a0b0c0d", cr.ProcessID, cr.SecretKey)
				}
			case <-time.After(liveness):
				t.Fatal("backend received no CancelRequest")
			}
		})
	}
}
