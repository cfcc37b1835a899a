package pgwire

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Backend authentication methods Waypoint can answer, with libpq's
// require_auth names (BackendSecurity.Auth, RequireAuthParam).
const (
	// AuthSCRAM is SCRAM-SHA-256: no password crosses the wire, and with TLS
	// pgconn binds the exchange to the channel (SCRAM-SHA-256-PLUS) whenever
	// the server offers it.
	AuthSCRAM = "scram-sha-256"
	// AuthMD5 sends md5(md5(password+user)+salt): whoever learns the stored
	// md5 hash can log in with it.
	AuthMD5 = "md5"
	// AuthPassword sends the password in cleartext to whoever asks.
	AuthPassword = "password"
)

// DefaultRequireAuth returns what a nil BackendSecurity.Auth means:
// scram-sha-256 and md5, never cleartext. It is a new slice on every call.
func DefaultRequireAuth() []string { return []string{AuthSCRAM, AuthMD5} }

// RequireAuthParam returns the value of libpq's require_auth parameter that
// lets a login answer exactly methods (nil means DefaultRequireAuth):
// BackendSecurity.Apply sets it as pgconn.Config.RequireAuth of the admin
// pool and of every role login. pgconn then refuses, before it sends
// anything, a backend that asks for another method; the error is recognised
// by AuthMethodRefused.
//
// The value also allows "none": a backend that lets Waypoint in without
// asking for a password (trust) is accepted, since nothing secret is sent
// to it. Proving that the backend is the real one is TLS's job
// (verify-full), not the authentication method's.
//
// Duplicates are dropped; a method other than AuthSCRAM, AuthMD5 and
// AuthPassword is an error.
func RequireAuthParam(methods []string) (string, error) {
	if methods == nil {
		methods = DefaultRequireAuth()
	}
	if len(methods) == 0 {
		return "", errors.New("pgwire: no backend authentication method allowed")
	}
	var out []string
	for _, m := range methods {
		switch m {
		case AuthSCRAM, AuthMD5, AuthPassword:
		default:
			return "", fmt.Errorf("pgwire: unknown backend authentication method %q (want %s, %s or %s)", m, AuthSCRAM, AuthMD5, AuthPassword)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return strings.Join(append(out, "none"), ","), nil
}

// AuthMethodError is a backend login that was abandoned, without answering,
// because the backend (or anyone between Waypoint and it) asked for an
// authentication method the login does not allow. Its message is for the
// operator and speaks of the configuration key backend_auth.
type AuthMethodError struct {
	// Method is what the backend asked for, as a require_auth name:
	// "password" (cleartext), "md5", "scram-sha-256", "gss", "sspi" or
	// "oauth".
	Method string
	// Err is the login's error, as pgconn or pgxpool returned it.
	Err error
}

func (e *AuthMethodError) Error() string { return e.Reason() + "; " + e.Advice() }

func (e *AuthMethodError) Unwrap() error { return e.Err }

// Reason says what happened, e.g. "the backend asked for cleartext password
// authentication, which backend_auth does not allow, so Waypoint sent it
// nothing".
func (e *AuthMethodError) Reason() string {
	return fmt.Sprintf("the backend asked for %s, which backend_auth does not allow, so Waypoint sent it nothing", methodName(e.Method))
}

// Advice says what the operator can change.
func (e *AuthMethodError) Advice() string {
	switch e.Method {
	case AuthPassword:
		return `configure scram-sha-256 in the server's pg_hba.conf; add "password" to backend_auth only if the server cannot do better and backend_tls = "verify-full" proves it is the real one, since a cleartext password goes to whoever asks for it`
	case AuthMD5:
		return `configure scram-sha-256 in the server's pg_hba.conf (with password_encryption = scram-sha-256), or add "md5" to backend_auth`
	case AuthSCRAM:
		return `add "scram-sha-256" to backend_auth`
	}
	return "Waypoint logs in with scram-sha-256, md5 or password only: configure scram-sha-256 in the server's pg_hba.conf"
}

// methodName names a require_auth method for people.
func methodName(m string) string {
	switch m {
	case AuthPassword:
		return "cleartext password authentication"
	case AuthMD5:
		return "md5 password authentication"
	case AuthSCRAM:
		return "SCRAM-SHA-256 authentication"
	case "gss":
		return "GSSAPI authentication"
	case "sspi":
		return "SSPI authentication"
	case "oauth":
		return "OAuth authentication"
	}
	return fmt.Sprintf("%q authentication", m)
}

// requireAuthRefusal matches the error pgconn (v5.12) returns when
// require_auth refuses the method the server asked for, before anything is
// sent. TestAuthMethodRefused_* keep it in step with pgconn.
var requireAuthRefusal = regexp.MustCompile(`^authentication method requirement ".*" failed: server requested (\S+) authentication$`)

// AuthMethodRefused reports whether err, from pgconn or from a pgx pool
// (the admin login), holds a login that require_auth abandoned because the
// server asked for a method not allowed, and returns it as an
// *AuthMethodError wrapping err. An *AuthMethodError already in err is
// returned as it is.
//
// pgconn's refusal carries no type, so it is found by its text, but only in
// an error pgconn made itself: a leaf of err's tree that is not a server's
// ErrorResponse, whose text the server chooses.
func AuthMethodRefused(err error) (*AuthMethodError, bool) {
	if ae, ok := errors.AsType[*AuthMethodError](err); ok {
		return ae, true
	}
	var method string
	walkLeaves(err, func(leaf error) bool {
		m := requireAuthRefusal.FindStringSubmatch(leaf.Error())
		if m != nil {
			method = m[1]
		}
		return m != nil
	})
	if method == "" {
		return nil, false
	}
	return &AuthMethodError{Method: method, Err: err}, true
}

// walkLeaves calls visit on each error of err's tree that wraps nothing, in
// depth-first order, until visit returns true. It does not descend into a
// server's ErrorResponse.
func walkLeaves(err error, visit func(error) bool) bool {
	switch e := err.(type) {
	case nil:
		return false
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if walkLeaves(inner, visit) {
				return true
			}
		}
		return false
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return walkLeaves(inner, visit)
		}
	}
	if _, fromServer := err.(*pgconn.PgError); fromServer {
		return false
	}
	return visit(err)
}
