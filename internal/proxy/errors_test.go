package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
)

// pgconnRefusal is the error pgconn returns when require_auth refuses the
// method the server asked for (see pgwire.AuthMethodRefused).
var pgconnRefusal = fmt.Errorf("failed to connect to `user=waypoint_admin database=postgres`: 10.0.1.10:5432 (10.0.1.10): require_auth check failed: %w",
	errors.New(`authentication method requirement "scram-sha-256,md5,none" failed: server requested password authentication`))

// TestClassify_RefusedAuthMethod: a login abandoned because the backend
// asked for a method backend_auth does not allow, the admin's (through
// provisioning) or a role's, reaches the client as 28000 saying whom to
// tell, and the log as the method and what to change.
func TestClassify_RefusedAuthMethod(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantLog []string
	}{
		{"role login", classifyUpstream(&pgwire.UpstreamError{Kind: pgwire.AuthFailed, Err: &pgwire.AuthMethodError{Method: "password", Err: pgconnRefusal}}),
			[]string{"backend_auth", "cleartext password authentication", `add "password" to backend_auth only if`}},
		{"admin login while provisioning", classifyProvision(&provision.Error{Kind: provision.Backend, Msg: "connect to database appdb", Err: pgconnRefusal}),
			[]string{"admin login", "cleartext password authentication", `add "password" to backend_auth only if`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k := kindOf(tt.err); k != KindBackendAuth {
				t.Errorf("got kind %v, want %v", k, KindBackendAuth)
			}
			told := clientError(tt.err, "c1")
			code, msg, hint := told.Code, told.Message, told.Hint
			if code != "28000" || !strings.Contains(msg, "authentication method") || !strings.Contains(hint, "operator") || !strings.Contains(hint, "backend_auth") {
				t.Errorf("client gets %s %q (hint %q), want 28000 naming the authentication method and whom to tell", code, msg, hint)
			}
			if strings.Contains(msg+hint, "10.0.1.10") || strings.Contains(msg+hint, "cleartext") {
				t.Errorf("client message %q (hint %q) carries internal detail", msg, hint)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("log text %q does not contain %q", tt.err.Error(), w)
				}
			}
		})
	}
	// A wrong password is still the ordinary backend_auth failure.
	plain := classifyUpstream(&pgwire.UpstreamError{Kind: pgwire.AuthFailed, Code: "28P01", Err: errors.New("password authentication failed")})
	if msg := clientError(plain, "").Message; msg != "the database server refused Waypoint's login" {
		t.Errorf("wrong password: client gets %q, want the default message", msg)
	}
}

// TestTable_ClientErrorPerKind is the whole mapping of failure kinds to
// what the client is told (severity, SQLSTATE, message, hint) and how the
// failure is named and logged, one row per Kind. A Kind added without a row
// fails it, as does a row whose Kind has no name. Every row is checked with
// an error carrying internal detail, which must not reach the client.
func TestTable_ClientErrorPerKind(t *testing.T) {
	type want struct {
		name, code, msg, hint string
		level                 slog.Level
	}
	table := map[Kind]want{
		KindInternal: {"internal", "XX000", "internal error in Waypoint",
			"Tell the Waypoint operator.", slog.LevelError},
		KindProtocol: {"protocol", "08P01", "invalid startup from client",
			"Use a PostgreSQL client speaking protocol 3.0 or newer.", slog.LevelInfo},
		KindTLSRequired: {"tls_required", "28000", "this Waypoint listener requires TLS",
			"Connect with sslmode=require.", slog.LevelInfo},
		KindUnidentified: {"unidentified", "28000", "Waypoint could not identify your tailnet node, so it cannot look up your grant",
			"Connect from a Tailscale node that is logged in as a user or carries ACL tags; if the node just joined the tailnet, try again in a few seconds.", slog.LevelInfo},
		KindDenied: {"denied", "28000", "access denied by the tailnet policy",
			"Ask your tailnet administrator for a grant.", slog.LevelInfo},
		KindLimit: {"limit", "53300", "too many connections for this user",
			"Close other sessions or ask for a higher max_conns.", slog.LevelInfo},
		KindProvision: {"provision", "58000", "Waypoint could not prepare a database role for you",
			"Try again; if it persists, tell the Waypoint operator.", slog.LevelWarn},
		KindCannotGrant: {"cannot_grant", "42501", "Waypoint's admin role may not grant what your grant asks",
			"Tell the Waypoint operator; `waypoint check -connect` lists the missing privileges.", slog.LevelWarn},
		KindBackendUnreachable: {"backend_unreachable", "08006", "the database server is unreachable",
			"Try again shortly; if it persists, tell the Waypoint operator.", slog.LevelWarn},
		KindBackendAuth: {"backend_auth", "28000", "the database server refused Waypoint's login",
			"Tell the Waypoint operator: the backend's pg_hba.conf must allow password logins for provisioned roles.", slog.LevelWarn},
		KindBackendError: {"backend_error", "08006", "the database server refused the connection",
			"", slog.LevelWarn},
		KindShutdown: {"shutdown", "57P01", "Waypoint is shutting down",
			"Reconnect; another Waypoint instance or the restarted one will serve you.", slog.LevelInfo},
		KindRevoked: {"revoked", "57P01", "your access was revoked by the tailnet policy",
			"Ask your tailnet administrator for a grant.", slog.LevelInfo},
		KindStateUnavailable: {"state_unavailable", "58000", "Waypoint cannot reach its shared state (Redis) to enforce connection limits",
			"Try again shortly; if it persists, tell the Waypoint operator.", slog.LevelWarn},
		KindTerminated: {"terminated", "57P01", "your session was terminated by a Waypoint operator",
			"Reconnect if you still need a session; ask your Waypoint operator why if it happens again.", slog.LevelInfo},
	}
	const detail = "dial tcp 10.0.1.10:5432: secret internal detail"
	for k := range numKinds {
		t.Run(k.String(), func(t *testing.T) {
			w, ok := table[k]
			if !ok {
				t.Fatalf("Kind %d (%s) has no row in this table: add what its client is told", int(k), k)
			}
			if got := k.String(); got != w.name {
				t.Errorf("name: got %q, want %q", got, w.name)
			}
			if got := logLevel(k); got != w.level {
				t.Errorf("log level: got %v, want %v", got, w.level)
			}
			told := clientError(fail(k, errors.New(detail)), "")
			if told.Severity != "FATAL" || told.Code != w.code || told.Message != w.msg || told.Hint != w.hint {
				t.Errorf("got %s %s %q (hint %q), want FATAL %s %q (hint %q)",
					told.Severity, told.Code, told.Message, told.Hint, w.code, w.msg, w.hint)
			}
			if strings.Contains(told.Message+told.Hint, "10.0.1.10") || strings.Contains(told.Message+told.Hint, "secret") {
				t.Errorf("client is told %q (hint %q): internal detail", told.Message, told.Hint)
			}
			withID := clientError(fail(k, errors.New(detail)), "c1")
			if want := strings.TrimSpace(w.hint + " Waypoint connection id: c1."); withID.Hint != want {
				t.Errorf("hint with a connection id: got %q, want %q", withID.Hint, want)
			}
		})
	}
	if len(table) != int(numKinds) {
		t.Errorf("table has %d rows for %d kinds: a row names no Kind", len(table), numKinds)
	}
	t.Run("unclassified error", func(t *testing.T) {
		told := clientError(errors.New(detail), "")
		if w := table[KindInternal]; told.Code != w.code || told.Message != w.msg {
			t.Errorf("got %s %q, want the internal row: %s %q", told.Code, told.Message, w.code, w.msg)
		}
	})
	t.Run("stage overrides", func(t *testing.T) {
		err := &stageError{kind: KindLimit, code: "53400", msg: "session ended", hint: "reconnect", err: errors.New(detail)}
		told := clientError(fmt.Errorf("relay: %w", err), "")
		if told.Severity != "FATAL" || told.Code != "53400" || told.Message != "session ended" || told.Hint != "reconnect" {
			t.Errorf("got %s %s %q (hint %q), want FATAL 53400 with the stage's own message and hint", told.Severity, told.Code, told.Message, told.Hint)
		}
	})
}
