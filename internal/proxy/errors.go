package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
)

// Kind classifies why a connection failed. Every stage classifies its own
// failures once, where they happen; clientError turns a Kind into what the
// client sees, and the metrics and logs use Kind's name.
type Kind int

const (
	KindInternal           Kind = iota // a bug or an unexpected condition
	KindProtocol                       // the client broke the startup protocol
	KindTLSRequired                    // plaintext client on a tls_mode=require listener
	KindUnidentified                   // WhoIs failed or the peer has no user and no tags
	KindDenied                         // the grant does not allow this connection
	KindLimit                          // a connection limit was reached
	KindProvision                      // the role could not be provisioned
	KindCannotGrant                    // the admin lacks the right to grant what the grant asks
	KindBackendUnreachable             // the backend could not be reached
	KindBackendAuth                    // the backend refused the provisioned credentials
	KindBackendError                   // the backend answered with an error of its own
	KindShutdown                       // Waypoint is shutting down
	KindRevoked                        // access was revoked during the session
	KindStateUnavailable               // shared state (Redis) unreachable: limits fail closed
	KindTerminated                     // an operator ended the session (console)

	numKinds // how many Kinds there are; keep it last
)

var kindNames = [numKinds]string{
	KindInternal:           "internal",
	KindProtocol:           "protocol",
	KindTLSRequired:        "tls_required",
	KindUnidentified:       "unidentified",
	KindDenied:             "denied",
	KindLimit:              "limit",
	KindProvision:          "provision",
	KindCannotGrant:        "cannot_grant",
	KindBackendUnreachable: "backend_unreachable",
	KindBackendAuth:        "backend_auth",
	KindBackendError:       "backend_error",
	KindShutdown:           "shutdown",
	KindRevoked:            "revoked",
	KindStateUnavailable:   "state_unavailable",
	KindTerminated:         "terminated",
}

// String returns the stable name used in metrics and logs.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// stageError is a classified failure. msg, when set, is safe to show the
// client; err carries the detail that goes only to the log.
type stageError struct {
	kind Kind
	code string // SQLSTATE override; "" = the Kind's default
	msg  string // client-safe message; "" = the Kind's default
	hint string
	err  error
}

func (e *stageError) Error() string {
	switch {
	case e.err != nil:
		return e.kind.String() + ": " + e.err.Error()
	case e.msg != "":
		return e.kind.String() + ": " + e.msg
	}
	return e.kind.String()
}

func (e *stageError) Unwrap() error { return e.err }

// fail classifies err as kind with the default client message.
func fail(kind Kind, err error) error { return &stageError{kind: kind, err: err} }

// failMsg classifies err as kind with a client-safe message.
func failMsg(kind Kind, msg string, err error) error {
	return &stageError{kind: kind, msg: msg, err: err}
}

// presetRequestHint is what a client whose waypoint_presets request cannot
// be read should do: the fault is in its connection settings, not its grant.
const presetRequestHint = "Fix waypoint_presets in this connection's settings: the startup parameter waypoint_presets, " +
	"or -c waypoint_presets=... inside options (psql, JDBC); leave it out to use your full grant."

// durationLimitError ends a session that reached its max_conn_duration d.
func durationLimitError(d time.Duration) error {
	return &stageError{kind: KindLimit, code: "57P01",
		msg: fmt.Sprintf("session ended: it reached the maximum duration of %v (max_conn_duration); reconnect to continue", d)}
}

// byteLimitError ends a session that relayed its max_bytes_per_conn n.
func byteLimitError(n int64) error {
	return &stageError{kind: KindLimit, code: "53400",
		msg: fmt.Sprintf("session ended: it relayed the maximum of %d bytes (max_bytes_per_conn); reconnect to continue", n)}
}

// kindOf returns the classification of err (KindInternal if unclassified).
func kindOf(err error) Kind {
	var se *stageError
	if errors.As(err, &se) {
		return se.kind
	}
	return KindInternal
}

// clientError is the one place that decides what a client is told about a
// failure: always a FATAL ErrorResponse (the connection ends), with the
// SQLSTATE, a message that says what to do, and nothing internal. connID
// lets an operator find the detailed log line; "" leaves it out.
func clientError(err error, connID string) pgwire.ClientError {
	var se *stageError
	if !errors.As(err, &se) {
		se = &stageError{kind: KindInternal}
	}
	code, msg, hint := defaults(se.kind)
	if se.code != "" {
		code = se.code
	}
	if se.msg != "" {
		msg = se.msg
	}
	if se.hint != "" {
		hint = se.hint
	}
	if connID != "" {
		if hint != "" {
			hint += " "
		}
		hint += "Waypoint connection id: " + connID + "."
	}
	return pgwire.ClientError{Severity: "FATAL", Code: code, Message: msg, Hint: hint}
}

// defaults are the SQLSTATE and message for each Kind when the stage gave no
// more specific ones.
func defaults(k Kind) (code, msg, hint string) {
	switch k {
	case KindProtocol:
		return "08P01", "invalid startup from client", "Use a PostgreSQL client speaking protocol 3.0 or newer."
	case KindTLSRequired:
		return "28000", "this Waypoint listener requires TLS", "Connect with sslmode=require."
	case KindUnidentified:
		return "28000", "Waypoint could not identify your tailnet node, so it cannot look up your grant", "Connect from a Tailscale node that is logged in as a user or carries ACL tags; if the node just joined the tailnet, try again in a few seconds."
	case KindDenied:
		return "28000", "access denied by the tailnet policy", "Ask your tailnet administrator for a grant."
	case KindLimit:
		return "53300", "too many connections for this user", "Close other sessions or ask for a higher max_conns."
	case KindProvision:
		return "58000", "Waypoint could not prepare a database role for you", "Try again; if it persists, tell the Waypoint operator."
	case KindCannotGrant:
		return "42501", "Waypoint's admin role may not grant what your grant asks", "Tell the Waypoint operator; `waypoint check -connect` lists the missing privileges."
	case KindBackendUnreachable:
		return "08006", "the database server is unreachable", "Try again shortly; if it persists, tell the Waypoint operator."
	case KindBackendAuth:
		return "28000", "the database server refused Waypoint's login", "Tell the Waypoint operator: the backend's pg_hba.conf must allow password logins for provisioned roles."
	case KindBackendError:
		return "08006", "the database server refused the connection", ""
	case KindShutdown:
		return "57P01", "Waypoint is shutting down", "Reconnect; another Waypoint instance or the restarted one will serve you."
	case KindStateUnavailable:
		return "58000", "Waypoint cannot reach its shared state (Redis) to enforce connection limits", "Try again shortly; if it persists, tell the Waypoint operator."
	case KindRevoked:
		return "57P01", "your access was revoked by the tailnet policy", "Ask your tailnet administrator for a grant."
	case KindTerminated:
		return "57P01", "your session was terminated by a Waypoint operator", "Reconnect if you still need a session; ask your Waypoint operator why if it happens again."
	default:
		return "XX000", "internal error in Waypoint", "Tell the Waypoint operator."
	}
}

// logLevel is how loudly a failure of kind k is logged: a caller's mistake is
// routine, an operator's problem is a warning, a bug is an error.
func logLevel(k Kind) slog.Level {
	switch k {
	case KindProtocol, KindTLSRequired, KindDenied, KindLimit, KindUnidentified, KindShutdown, KindRevoked, KindTerminated:
		return slog.LevelInfo
	case KindInternal:
		return slog.LevelError
	default:
		return slog.LevelWarn
	}
}

// reject tells the client why its connection failed, within a short deadline.
func (s *Server) reject(sess *session, err error) {
	e := clientError(err, sess.id)
	if sess.client != nil {
		_ = sess.client.SendError(e)
		return
	}
	_ = sess.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = pgwire.WriteError(sess.conn, e)
}

// classifyProvision maps a provisioning failure to a Kind with a safe message.
func classifyProvision(err error) error {
	if ae, ok := pgwire.AuthMethodRefused(err); ok {
		return refusedAuthMethod(fmt.Errorf("admin login: %w", ae))
	}
	var pe *provision.Error
	if errors.As(err, &pe) {
		switch pe.Kind {
		case provision.CannotGrant:
			return failMsg(KindCannotGrant, pe.ClientMessage(), err)
		case provision.Unreachable:
			return fail(KindBackendUnreachable, err)
		case provision.MissingObject:
			// The SQLSTATE PostgreSQL itself would give, so clients that
			// check for a missing database recognise it.
			code := "3F000" // invalid_schema_name
			if strings.HasPrefix(pe.Object, "database") {
				code = "3D000" // invalid_catalog_name
			}
			return &stageError{kind: KindProvision, code: code, msg: pe.ClientMessage(), err: err}
		}
		return failMsg(KindProvision, pe.ClientMessage(), err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failMsg(KindProvision, "timed out preparing your database role", err)
	}
	return fail(KindProvision, err)
}

// classifyUpstream maps an upstream login failure to a Kind. A backend error
// keeps the backend's SQLSTATE and message (e.g. 3D000 database does not
// exist): those are the server's words for the client, not Waypoint internals.
func classifyUpstream(err error) error {
	if _, ok := pgwire.AuthMethodRefused(err); ok {
		return refusedAuthMethod(err)
	}
	switch {
	case pgwire.IsAuthFailed(err):
		return fail(KindBackendAuth, err)
	case pgwire.IsUnreachable(err):
		return fail(KindBackendUnreachable, err)
	}
	if code, msg, ok := pgwire.BackendErrorInfo(err); ok {
		return &stageError{kind: KindBackendError, code: code, msg: msg, err: err}
	}
	return fail(KindBackendUnreachable, err)
}

// refusedAuthMethod classifies a login, the admin's or a role's, that
// Waypoint abandoned because the backend asked for an authentication method
// backend_auth does not allow (err holds a *pgwire.AuthMethodError, whose
// text, for the log, names the method and what to change). The client is
// told only who can fix it.
func refusedAuthMethod(err error) error {
	return &stageError{
		kind: KindBackendAuth,
		msg:  "Waypoint refused the authentication method the database server asked for",
		hint: "Tell the Waypoint operator: the server asked for a method that backend_auth does not allow; Waypoint's log says which, and what to change.",
		err:  err,
	}
}
