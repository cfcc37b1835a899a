package proxy

import (
	"errors"
	"fmt"
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
			code, msg, hint := clientError(tt.err, "c1")
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
	if _, msg, _ := clientError(plain, ""); msg != "the database server refused Waypoint's login" {
		t.Errorf("wrong password: client gets %q, want the default message", msg)
	}
}
