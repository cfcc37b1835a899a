// Package pgwiretest provides scripted fake PostgreSQL servers for tests of
// code that logs in to a backend. AuthProbe shows what a client answers to a
// server, or to anyone in the middle, that asks for a given authentication
// method; Server lets scripted roles in and answers scripted queries, so
// that a proxy can be tested end to end without PostgreSQL.
package pgwiretest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// probeTimeout bounds each connection the probe serves; it is never a
// performance threshold.
const probeTimeout = 10 * time.Second

// Login is one login attempt an AuthProbe saw.
type Login struct {
	// TLS is whether the attempt came over TLS.
	TLS bool
	// Params are its startup parameters (user, database, …).
	Params map[string]string
	// Reply is the client's answer to the authentication request: a
	// *pgproto3.PasswordMessage (cleartext password or md5 hash) or a
	// *pgproto3.SASLInitialResponse; nil when the client hung up without
	// answering.
	Reply pgproto3.FrontendMessage
}

// AuthProbe is a fake PostgreSQL server on a loopback port that asks every
// login for one authentication method, records the client's answer and
// refuses the login (FATAL 28P01). It lets nobody in. It is strict: a
// startup it does not expect fails the test.
type AuthProbe struct {
	tb     testing.TB
	ln     net.Listener
	method string
	tls    *tls.Config // nil: SSLRequest is answered 'N'

	stop   func() // closes the listener and waits for the connections being served
	mu     sync.Mutex
	logins []Login
}

// StartAuthProbe starts an AuthProbe that asks for method: "password"
// (AuthenticationCleartextPassword), "md5" (AuthenticationMD5Password) or
// "scram-sha-256" (AuthenticationSASL offering SCRAM-SHA-256 and, over TLS,
// SCRAM-SHA-256-PLUS first, as PostgreSQL does). With withTLS it accepts
// SSLRequest with a self-signed certificate for 127.0.0.1 (clients must not
// verify it); otherwise it answers 'N'. tb.Cleanup stops it.
func StartAuthProbe(tb testing.TB, method string, withTLS bool) *AuthProbe {
	tb.Helper()
	switch method {
	case "password", "md5", "scram-sha-256":
	default:
		tb.Fatalf("pgwiretest: unknown method %q", method)
	}
	p := &AuthProbe{tb: tb, method: method}
	if withTLS {
		p.tls = selfSigned(tb)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.ln = ln
	p.stop = testkit.Serve(tb, ln, func(conn net.Conn) {
		_ = conn.SetDeadline(time.Now().Add(probeTimeout))
		p.serve(conn)
	})
	tb.Cleanup(p.stop)
	return p
}

// Addr is the probe's "host:port".
func (p *AuthProbe) Addr() string { return p.ln.Addr().String() }

// Logins stops the probe, waits for the connections it is serving and
// returns every login attempt it saw, in order of arrival.
func (p *AuthProbe) Logins() []Login {
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Login(nil), p.logins...)
}

// serve plays the server's side of one connection: TLS negotiation, the
// startup message, the authentication request, the client's answer.
func (p *AuthProbe) serve(conn net.Conn) {
	be, startup, isTLS := p.startup(conn)
	if startup == nil {
		return
	}
	login := Login{TLS: isTLS, Params: startup.Parameters}
	login.Reply = p.ask(be, isTLS)
	p.mu.Lock()
	p.logins = append(p.logins, login)
	p.mu.Unlock()
	if login.Reply != nil {
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		_ = be.Flush()
	}
}

// startup reads SSLRequest (answering it) and the StartupMessage. It returns
// a nil message when the client hung up first, as pgconn does after 'N'.
func (p *AuthProbe) startup(conn net.Conn) (*pgproto3.Backend, *pgproto3.StartupMessage, bool) {
	be := pgproto3.NewBackend(conn, conn)
	isTLS := false
	msg, err := be.ReceiveStartupMessage()
	if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
		if p.tls == nil {
			_, _ = conn.Write([]byte{'N'})
		} else {
			_, _ = conn.Write([]byte{'S'})
			tc := tls.Server(conn, p.tls)
			be, isTLS = pgproto3.NewBackend(tc, tc), true
		}
		msg, err = be.ReceiveStartupMessage()
	}
	if err != nil {
		if !isHangUp(err) {
			p.tb.Errorf("pgwiretest: reading the startup: %v", err)
		}
		return nil, nil, false
	}
	startup, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		p.tb.Errorf("pgwiretest: got %T, want a StartupMessage", msg)
		return nil, nil, false
	}
	return be, startup, isTLS
}

// ask sends the authentication request and returns the client's answer, or
// nil when it hung up without one.
func (p *AuthProbe) ask(be *pgproto3.Backend, isTLS bool) pgproto3.FrontendMessage {
	switch p.method {
	case "password":
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		_ = be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	case "md5":
		be.Send(&pgproto3.AuthenticationMD5Password{Salt: [4]byte{1, 2, 3, 4}})
		_ = be.SetAuthType(pgproto3.AuthTypeMD5Password)
	case "scram-sha-256":
		mechanisms := []string{"SCRAM-SHA-256"}
		if isTLS {
			mechanisms = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}
		}
		be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechanisms})
		_ = be.SetAuthType(pgproto3.AuthTypeSASL)
	}
	if err := be.Flush(); err != nil {
		return nil
	}
	msg, err := be.Receive()
	if err != nil {
		if !isHangUp(err) {
			p.tb.Errorf("pgwiretest: reading the answer to %s: %v", p.method, err)
		}
		return nil
	}
	// pgproto3 reuses its messages, so the answer is copied.
	switch m := msg.(type) {
	case *pgproto3.PasswordMessage:
		return &pgproto3.PasswordMessage{Password: m.Password}
	case *pgproto3.SASLInitialResponse:
		return &pgproto3.SASLInitialResponse{AuthMechanism: m.AuthMechanism, Data: append([]byte(nil), m.Data...)}
	}
	p.tb.Errorf("pgwiretest: got %T in answer to %s, want a password or SASL message", msg, p.method)
	return msg
}

// isHangUp reports whether err is the client closing its connection.
func isHangUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// selfSigned returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1.
func selfSigned(tb testing.TB) *tls.Config {
	tb.Helper()
	cert := testkit.SelfSigned(tb, time.Now().Add(time.Hour), "127.0.0.1")
	return &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
}
