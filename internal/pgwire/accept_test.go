package pgwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// connectPgconn connects a real pgconn client to addr with the extra URL
// query, recording the raw backend bytes it reads during login into rec.
func connectPgconn(t *testing.T, addr, query string, rec *bytes.Buffer) (*pgconn.PgConn, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("postgres://alice:ignored@localhost:%s/appdb?application_name=psql&%s", port, query))
	if err != nil {
		t.Fatal(err)
	}
	if rec != nil {
		cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
			return pgproto3.NewFrontend(io.TeeReader(r, rec), w)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func TestAccept_PgconnClients(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name     string
		opts     FrontOptions
		query    string
		wantTLS  bool
		wantSNI  string
		wantNPV  bool
		attempts int // connections pgconn opens; the last one succeeds
	}{
		{name: "plaintext", opts: FrontOptions{}, query: "sslmode=disable", attempts: 1},
		{name: "sslmode=require", opts: FrontOptions{TLSMode: TLSOptional, TLSConfig: cert.server},
			query: "sslmode=require", wantTLS: true, wantSNI: "localhost", attempts: 1},
		{name: "sslmode=verify-full on a require listener", opts: FrontOptions{TLSMode: TLSRequire, TLSConfig: cert.server},
			query: "sslmode=verify-full&sslrootcert=" + cert.rootFile, wantTLS: true, wantSNI: "localhost", attempts: 1},
		{name: "sslnegotiation=direct", opts: FrontOptions{TLSMode: TLSOptional, TLSConfig: cert.server},
			query: "sslmode=require&sslnegotiation=direct", wantTLS: true, wantSNI: "localhost", attempts: 1},
		{name: "sslmode=prefer against TLS off", opts: FrontOptions{TLSMode: TLSOff, TLSConfig: cert.server},
			query: "sslmode=prefer", attempts: 2},
		{name: "max_protocol_version=3.2", opts: FrontOptions{},
			query: "sslmode=disable&max_protocol_version=3.2", wantNPV: true, attempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, tt.opts, true)
			var rec bytes.Buffer
			conn, err := connectPgconn(t, addr, tt.query, &rec)
			if err != nil {
				t.Fatalf("pgconn connect: %v", err)
			}
			res := successfulResult(t, results, tt.attempts)
			checkClientSide(t, conn, cert, tt.wantTLS)
			if got := receivedNPV(t, rec.Bytes()); got != tt.wantNPV {
				t.Errorf("got NegotiateProtocolVersion sent %v, want %v", got, tt.wantNPV)
			}
			c := res.client
			if c.TLS != tt.wantTLS || c.ServerName != tt.wantSNI {
				t.Errorf("got TLS %v SNI %q, want %v %q", c.TLS, c.ServerName, tt.wantTLS, tt.wantSNI)
			}
			for k, want := range map[string]string{"user": "alice", "database": "appdb", "application_name": "psql"} {
				if got := c.Params[k]; got != want {
					t.Errorf("got param %s=%q, want %q", k, got, want)
				}
			}
		})
	}
}

// successfulResult collects n connection outcomes and returns the one
// where Accept succeeded.
func successfulResult(t *testing.T, results <-chan acceptResult, n int) acceptResult {
	t.Helper()
	var errs []error
	for range n {
		r := nextResult(t, results)
		if r.err == nil {
			return r
		}
		errs = append(errs, r.err)
	}
	t.Fatalf("Accept failed on every connection: %v", errs)
	return acceptResult{}
}

// receivedNPV decodes recorded backend bytes and reports whether they hold a
// NegotiateProtocolVersion.
func receivedNPV(t *testing.T, raw []byte) bool {
	t.Helper()
	fe := pgproto3.NewFrontend(bytes.NewReader(raw), io.Discard)
	for {
		msg, err := fe.Receive()
		if err != nil {
			return false
		}
		if _, ok := msg.(*pgproto3.NegotiateProtocolVersion); ok {
			return true
		}
	}
}

// checkClientSide checks what the pgconn client saw: our cancel key, the
// replayed ParameterStatus and, with TLS, our certificate.
func checkClientSide(t *testing.T, conn *pgconn.PgConn, cert *testCert, wantTLS bool) {
	t.Helper()
	if got := conn.PID(); got != testKey.ProcessID {
		t.Errorf("got PID %d, want %d", got, testKey.ProcessID)
	}
	if got, want := conn.SecretKey(), testKey.secretBytes(); !bytes.Equal(got, want) {
		t.Errorf("got secret key %x, want %x", got, want)
	}
	if got := conn.ParameterStatus("server_version"); got != "15.0-fake" {
		t.Errorf("got server_version %q, want %q", got, "15.0-fake")
	}
	tc, isTLS := conn.Conn().(*tls.Conn)
	if isTLS != wantTLS {
		t.Fatalf("got client TLS %v, want %v", isTLS, wantTLS)
	}
	if isTLS {
		peer := tc.ConnectionState().PeerCertificates
		if len(peer) == 0 || !peer[0].Equal(cert.leaf) {
			t.Errorf("client did not see the listener's certificate")
		}
		if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("got TLS version %x, want at least 1.2", v)
		}
	}
}

func TestAccept_TLSRequireRefusesPlaintext(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name     string
		opts     FrontOptions
		query    string
		attempts int
	}{
		{name: "sslmode=disable", opts: FrontOptions{TLSMode: TLSRequire, TLSConfig: cert.server}, query: "sslmode=disable", attempts: 1},
		{name: "require without a certificate", opts: FrontOptions{TLSMode: TLSRequire}, query: "sslmode=prefer", attempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, tt.opts, true)
			_, err := connectPgconn(t, addr, tt.query, nil)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("got client error %v, want an ErrorResponse", err)
			}
			if pgErr.Code != codeInvalidAuthSpec || !strings.Contains(pgErr.Message, "requires TLS: connect with sslmode=require") {
				t.Errorf("got %s %q, want %s and a message telling to use sslmode=require", pgErr.Code, pgErr.Message, codeInvalidAuthSpec)
			}
			// sslmode=prefer opens a second connection after the 'N'.
			for range tt.attempts {
				res := nextResult(t, results)
				if !errors.Is(res.err, ErrTLSRequired) {
					continue
				}
				var pe *ProtocolError
				if !errors.As(res.err, &pe) || !pe.Sent {
					t.Errorf("got %v, want a *ProtocolError with Sent set", res.err)
				}
				return
			}
			t.Errorf("no Accept returned ErrTLSRequired")
		})
	}
}

// sendStartup writes a StartupMessage with the given version and parameters.
func sendStartup(t *testing.T, w io.Writer, version uint32, params map[string]string) {
	t.Helper()
	buf, err := (&pgproto3.StartupMessage{ProtocolVersion: version, Parameters: params}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func TestAccept_StartupParameters(t *testing.T) {
	tests := []struct {
		name       string
		params     map[string]string
		wantParams map[string]string
	}{
		{
			name:       "all parameters",
			params:     map[string]string{"user": "ignored", "database": "appdb", "application_name": "app", "options": "-c waypoint.presets=readonly", "client_encoding": "UTF8"},
			wantParams: map[string]string{"user": "ignored", "database": "appdb", "application_name": "app", "options": "-c waypoint.presets=readonly", "client_encoding": "UTF8"},
		},
		{
			name:       "database defaults to user",
			params:     map[string]string{"user": "alice"},
			wantParams: map[string]string{"user": "alice", "database": "alice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, FrontOptions{}, true)
			conn := dialRaw(t, addr)
			sendStartup(t, conn, pgproto3.ProtocolVersion30, tt.params)
			res := nextResult(t, results)
			if res.err != nil {
				t.Fatalf("Accept: %v", res.err)
			}
			if !equalMaps(res.client.Params, tt.wantParams) {
				t.Errorf("got params %v, want %v", res.client.Params, tt.wantParams)
			}
			fe := pgproto3.NewFrontend(conn, conn)
			want := []string{"AuthenticationOk", "ParameterStatus DateStyle=ISO, MDY", "ParameterStatus client_encoding=UTF8",
				"ParameterStatus server_version=15.0-fake", "BackendKeyData 4242/deadbeef", "ReadyForQuery I"}
			for i, w := range want {
				msg, err := fe.Receive()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if got := describe(msg); got != w {
					t.Errorf("message %d: got %q, want %q", i, got, w)
				}
			}
		})
	}
}

// describe summarizes a backend message for comparisons.
func describe(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.AuthenticationOk:
		return "AuthenticationOk"
	case *pgproto3.ParameterStatus:
		return fmt.Sprintf("ParameterStatus %s=%s", m.Name, m.Value)
	case *pgproto3.BackendKeyData:
		return fmt.Sprintf("BackendKeyData %d/%x", m.ProcessID, m.SecretKey)
	case *pgproto3.ReadyForQuery:
		return fmt.Sprintf("ReadyForQuery %c", m.TxStatus)
	case *pgproto3.NegotiateProtocolVersion:
		return fmt.Sprintf("NegotiateProtocolVersion %d %v", m.NewestMinorProtocol, m.UnrecognizedOptions)
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("ErrorResponse %s %s %s", m.Severity, m.Code, m.Message)
	}
	return fmt.Sprintf("%T", msg)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAccept_NegotiateProtocolVersion(t *testing.T) {
	tests := []struct {
		name       string
		version    uint32
		params     map[string]string
		wantNPV    string // "" = none expected
		wantParams int
	}{
		{name: "3.0 plain", version: 3 << 16, params: map[string]string{"user": "u"}, wantParams: 2},
		{name: "3.2", version: 3<<16 | 2, params: map[string]string{"user": "u"}, wantNPV: "NegotiateProtocolVersion 0 []", wantParams: 2},
		{name: "3.9999 (PostgreSQL 19 libpq)", version: 3<<16 | 9999, params: map[string]string{"user": "u"}, wantNPV: "NegotiateProtocolVersion 0 []", wantParams: 2},
		{name: "3.0 with _pq_ option", version: 3 << 16, params: map[string]string{"user": "u", "_pq_.foo": "1"},
			wantNPV: "NegotiateProtocolVersion 0 [_pq_.foo]", wantParams: 2},
		{name: "3.2 with two _pq_ options", version: 3<<16 | 2, params: map[string]string{"user": "u", "_pq_.b": "1", "_pq_.a": "2"},
			wantNPV: "NegotiateProtocolVersion 0 [_pq_.a _pq_.b]", wantParams: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, FrontOptions{}, true)
			conn := dialRaw(t, addr)
			sendStartup(t, conn, tt.version, tt.params)
			res := nextResult(t, results)
			if res.err != nil {
				t.Fatalf("Accept: %v", res.err)
			}
			if len(res.client.Params) != tt.wantParams {
				t.Errorf("got params %v, want %d (no _pq_ options)", res.client.Params, tt.wantParams)
			}
			msg, err := pgproto3.NewFrontend(conn, conn).Receive()
			if err != nil {
				t.Fatal(err)
			}
			got := describe(msg)
			want := tt.wantNPV
			if want == "" {
				want = "AuthenticationOk"
			}
			if got != want {
				t.Errorf("first message: got %q, want %q", got, want)
			}
		})
	}
}
