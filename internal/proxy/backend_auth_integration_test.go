package proxy_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// TestFault_BackendAsksForCleartext puts a fake server that asks for the
// password in cleartext where the role logins go (provisioning still uses
// the real PostgreSQL). With the default backend_auth the fake receives no
// password, the client is told 28000 and whom to tell, and the log says
// which method was refused and what to change. With "password" listed in
// Backend.Security.Auth the fake does receive the role's password: the knob reaches
// the role logins.
func TestFault_BackendAsksForCleartext(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	tests := []struct {
		name      string
		auth      []string
		wantWords []string // in the client's message or hint
		wantLog   []string
		wantReply bool
	}{
		{name: "default refuses", wantWords: []string{"authentication method", "operator", "backend_auth"},
			wantLog: []string{"outcome=backend_auth", "cleartext password authentication", "backend_auth does not allow"}},
		{name: "listed answers", auth: []string{"scram-sha-256", "password"}, wantWords: []string{"refused Waypoint's login"},
			wantLog: []string{"outcome=backend_auth", "password authentication failed"}, wantReply: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := pgwiretest.StartAuthProbe(t, "password", false)
			r := newRig(t, pg, func(o *proxy.Options) {
				o.Backend.Addr = probe.Addr()
				o.Backend.Security.Auth = tt.auth
			})
			alice := r.client("alice@example.com", "laptop", readwriteAppdb)

			_, err := r.connect(alice, "appdb", nil)
			wantFatal(t, err, "28000", tt.wantWords...)
			waitFor(t, "the log line of the refused connection", func() bool {
				return strings.Contains(r.logs.String(), "alice@example.com")
			})
			logs := r.logs.String()
			for _, w := range tt.wantLog {
				if !strings.Contains(logs, w) {
					t.Errorf("the proxy log does not say %q:\n%s", w, logs)
				}
			}
			logins := probe.Logins()
			if len(logins) == 0 {
				t.Fatal("the fake backend saw no login")
			}
			for i, l := range logins {
				pw, isPassword := l.Reply.(*pgproto3.PasswordMessage)
				switch {
				case !tt.wantReply && l.Reply != nil:
					t.Errorf("login %d as %s: the fake received a %T, want nothing", i, l.Params["user"], l.Reply)
				case tt.wantReply && (!isPassword || len(pw.Password) < 32):
					t.Errorf("login %d as %s: the fake received %v, want the role's password", i, l.Params["user"], l.Reply)
				}
			}
		})
	}
}
