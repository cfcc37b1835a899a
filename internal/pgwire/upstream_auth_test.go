package pgwire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
)

func TestRequireAuthParam(t *testing.T) {
	tests := []struct {
		name    string
		methods []string
		want    string // "" = an error
	}{
		{"nil is the default", nil, "scram-sha-256,md5,none"},
		{"scram only", []string{AuthSCRAM}, "scram-sha-256,none"},
		{"cleartext listed", []string{AuthPassword, AuthSCRAM}, "password,scram-sha-256,none"},
		{"duplicates dropped", []string{AuthMD5, AuthMD5}, "md5,none"},
		{"empty", []string{}, ""},
		{"unsupported method", []string{"gss"}, ""},
		{"none is not a method", []string{"none"}, ""},
		{"not normalised", []string{"MD5"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RequireAuthParam(tt.methods)
			if tt.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			// pgconn must accept the value as it is.
			if _, err := pgconn.ParseConfig("host=127.0.0.1 require_auth=" + got); err != nil {
				t.Errorf("pgconn refuses require_auth=%s: %v", got, err)
			}
		})
	}
}

// TestConnectUpstream_BackendAuth logs in to a fake server that asks for one
// authentication method and records the answer: a method not in
// RequireAuth (by default: cleartext) gets no answer at all and the login
// fails with an *AuthMethodError; a listed method is answered, and over TLS
// SCRAM is channel-bound.
func TestConnectUpstream_BackendAuth(t *testing.T) {
	const password = "s3cret-role-password"
	tests := []struct {
		name        string
		method      string // what the fake asks for
		probeTLS    bool
		tls         string
		requireAuth []string
		refused     bool   // the login must fail with an *AuthMethodError, nothing sent
		wantReply   string // else: the reply the fake must see, as replyString renders it
	}{
		{name: "cleartext refused by default", method: "password", tls: "disable", refused: true},
		{name: "cleartext refused by default, prefer without TLS", method: "password", tls: "prefer", refused: true},
		{name: "cleartext refused by default, over TLS", method: "password", probeTLS: true, tls: "require", refused: true},
		{name: "md5 refused when only scram is listed", method: "md5", tls: "disable", requireAuth: []string{AuthSCRAM}, refused: true},
		{name: "scram refused when only md5 is listed", method: "scram-sha-256", tls: "disable", requireAuth: []string{AuthMD5}, refused: true},
		{name: "cleartext sent when listed", method: "password", tls: "disable", requireAuth: []string{AuthPassword}, wantReply: "password " + password},
		{name: "md5 answered by default", method: "md5", tls: "disable", wantReply: "password md5" + md5hex(md5hex(password+"wp_alice")+"\x01\x02\x03\x04")},
		{name: "scram answered by default", method: "scram-sha-256", tls: "disable", wantReply: "sasl SCRAM-SHA-256 n,,"},
		{name: "channel binding with prefer over TLS", method: "scram-sha-256", probeTLS: true, tls: "prefer", wantReply: "sasl SCRAM-SHA-256-PLUS p=tls-server-end-point,,"},
		{name: "channel binding with require", method: "scram-sha-256", probeTLS: true, tls: "require", wantReply: "sasl SCRAM-SHA-256-PLUS p=tls-server-end-point,,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := pgwiretest.StartAuthProbe(t, tt.method, tt.probeTLS)
			_, err := connectUpstream(t, UpstreamConfig{
				Addr: probe.Addr(), Security: BackendSecurity{TLS: tt.tls, Auth: tt.requireAuth}, User: "wp_alice", Password: password, Database: "appdb",
			})
			logins := probe.Logins()
			if len(logins) == 0 {
				t.Fatalf("the fake saw no login; err %v", err)
			}
			if err == nil {
				t.Fatal("login to the fake succeeded; it lets nobody in")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error contains the password: %v", err)
			}
			if tt.refused {
				checkRefused(t, err, tt.method)
				for i, l := range logins {
					if l.Reply != nil {
						t.Errorf("login %d (TLS %v): the fake received %s, want nothing", i, l.TLS, replyString(l.Reply))
					}
				}
				return
			}
			checkUpstreamError(t, err, AuthFailed, "28P01") // the fake's refusal
			if got := replyString(logins[0].Reply); got != tt.wantReply {
				t.Errorf("the fake received %q, want %q", got, tt.wantReply)
			}
			if logins[0].TLS != tt.probeTLS {
				t.Errorf("got login over TLS %v, want %v", logins[0].TLS, tt.probeTLS)
			}
		})
	}
}

// checkRefused asserts that err is a login abandoned because the backend
// asked for method, classified AuthFailed, with a message for the operator.
func checkRefused(t *testing.T, err error, method string) {
	t.Helper()
	checkUpstreamError(t, err, AuthFailed, "")
	ae, ok := errors.AsType[*AuthMethodError](err)
	if !ok || ae.Method != method {
		t.Fatalf("got %v, want an *AuthMethodError for method %q", err, method)
	}
	if msg := err.Error(); !strings.Contains(msg, "backend_auth") || !strings.Contains(msg, "sent it nothing") {
		t.Errorf("message %q does not say that backend_auth refused and nothing was sent", msg)
	}
}

// replyString renders a client's answer for comparison: the password
// message's text, or the SASL mechanism and the GS2 header of its first
// message (which says whether channel binding is used).
func replyString(msg pgproto3.FrontendMessage) string {
	switch m := msg.(type) {
	case nil:
		return "nothing"
	case *pgproto3.PasswordMessage:
		return "password " + m.Password
	case *pgproto3.SASLInitialResponse:
		header, _, _ := strings.Cut(string(m.Data), "n=")
		return "sasl " + m.AuthMechanism + " " + header
	}
	return fmt.Sprintf("%T", msg)
}

func TestAuthMethodRefused(t *testing.T) {
	const refusal = `authentication method requirement "scram-sha-256,md5,none" failed: server requested password authentication`
	leaf := errors.New(refusal)
	tests := []struct {
		name       string
		err        error
		wantMethod string // "" = not a refusal
	}{
		{"nil", nil, ""},
		{"pgconn's refusal", fmt.Errorf("failed to connect: %w", fmt.Errorf("require_auth check failed: %w", leaf)), "password"},
		{"among the attempts of prefer", errors.Join(errors.New("server refused TLS connection"), fmt.Errorf("x: %w", leaf)), "password"},
		{"already classified", &UpstreamError{Kind: AuthFailed, Err: &AuthMethodError{Method: "md5", Err: leaf}}, "md5"},
		{"GSSAPI", errors.New(`authentication method requirement "md5,none" failed: server requested gss authentication`), "gss"},
		{"server's own words", fmt.Errorf("login: %w", &pgconn.PgError{Severity: "FATAL", Code: "28000", Message: refusal}), ""},
		{"refusal text inside a longer message", errors.New("oops: " + refusal), ""},
		{"other failure", errors.New("connection refused"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae, ok := AuthMethodRefused(tt.err)
			if ok != (tt.wantMethod != "") || (ok && ae.Method != tt.wantMethod) {
				t.Fatalf("got %+v, %v; want method %q", ae, ok, tt.wantMethod)
			}
			if _, classified := tt.err.(*UpstreamError); ok && !classified && ae.Err != tt.err {
				t.Errorf("got an *AuthMethodError wrapping %v, want it to wrap the error it was found in", ae.Err)
			}
		})
	}
}

func TestAuthMethodError_Advice(t *testing.T) {
	tests := []struct {
		method string
		want   []string
	}{
		{AuthPassword, []string{"cleartext password authentication", `add "password" to backend_auth only if`, "verify-full"}},
		{AuthMD5, []string{"md5 password authentication", "scram-sha-256", `add "md5" to backend_auth`}},
		{AuthSCRAM, []string{"SCRAM-SHA-256 authentication", `add "scram-sha-256" to backend_auth`}},
		{"gss", []string{"GSSAPI authentication", "scram-sha-256, md5 or password only"}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			msg := (&AuthMethodError{Method: tt.method}).Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}
