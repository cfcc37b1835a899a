package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/server"
)

// adminPassword is the admin password of the configurations below: the fake
// backends must never see it unless backend_auth lists "password".
const adminPassword = "admin-s3cret-Ünïcode $x"

// backendConfig writes a configuration with one listener in front of
// backend, with the given backend_tls and extra [listeners.postgres] lines,
// and returns its path.
func backendConfig(t *testing.T, backend, backendTLS, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`[tailscale]
hostname = "waypoint-test"

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = %q
tls_mode = "off"

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = %q
backend_tls = %q
%s
`, backend, adminPassword, backendTLS, extra)
	path := filepath.Join(t.TempDir(), "waypoint.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAdminOptions_BackendAuth builds the admin login's configuration the
// way provision.New does (provision.AdminConfig of server.AdminOptions):
// backend_auth arrives as require_auth (plus "none", trust), channel
// binding is "prefer", and PG* environment variables cannot loosen either.
func TestAdminOptions_BackendAuth(t *testing.T) {
	t.Setenv("PGREQUIREAUTH", "password")
	t.Setenv("PGCHANNELBINDING", "disable")
	tests := []struct {
		name            string
		extra           string
		wantRequireAuth string
	}{
		{"default", "", "scram-sha-256,md5,none"},
		{"scram only", `backend_auth = ["scram-sha-256"]`, "scram-sha-256,none"},
		{"cleartext listed", `backend_auth = ["SCRAM-SHA-256", "password"]`, "scram-sha-256,password,none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(backendConfig(t, "db.internal:5432", "prefer", tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			login, err := server.AdminOptions(&cfg.Listeners[0])
			if err != nil {
				t.Fatal(err)
			}
			pc, err := provision.AdminConfig(login)
			if err != nil {
				t.Fatalf("provision.AdminConfig: %v", err)
			}
			cc := pc.ConnConfig
			if cc.RequireAuth != tt.wantRequireAuth || cc.ChannelBinding != "prefer" {
				t.Errorf("got require_auth %q, channel_binding %q; want %q, prefer", cc.RequireAuth, cc.ChannelBinding, tt.wantRequireAuth)
			}
			if cc.Password != adminPassword || cc.User != "waypoint_admin" {
				t.Errorf("got user %q password %q, want the configured ones", cc.User, cc.Password)
			}
		})
	}
}

// TestCheckConnect_BackendAuth runs `waypoint check -connect`, whose admin
// login is serve's (provision.New with server.AdminOptions), against a fake
// backend that asks for one authentication method and records the answer.
// A method backend_auth does not list (by default: cleartext) receives
// nothing and the check says what to change; a listed one is answered; and
// over TLS SCRAM is channel-bound.
func TestCheckConnect_BackendAuth(t *testing.T) {
	tests := []struct {
		name       string
		method     string // what the fake asks for
		probeTLS   bool
		backendTLS string
		extra      string
		wantOut    []string
		wantReply  string // "" = nothing may reach the fake
	}{
		{name: "cleartext refused by default", method: "password", backendTLS: "prefer",
			wantOut: []string{"failed: the backend asked for cleartext password authentication, which backend_auth does not allow, so Waypoint sent it nothing",
				`add "password" to backend_auth only if`}},
		{name: "cleartext refused by default over TLS", method: "password", probeTLS: true, backendTLS: "require",
			wantOut: []string{"cleartext password authentication, which backend_auth does not allow"}},
		{name: "md5 refused when only scram is listed", method: "md5", backendTLS: "disable", extra: `backend_auth = ["scram-sha-256"]`,
			wantOut: []string{"md5 password authentication, which backend_auth does not allow", `add "md5" to backend_auth`}},
		{name: "cleartext sent when listed", method: "password", backendTLS: "disable", extra: `backend_auth = ["password"]`,
			wantOut: []string{"password authentication failed — check admin_password"}, wantReply: "password " + adminPassword},
		{name: "channel binding over TLS", method: "scram-sha-256", probeTLS: true, backendTLS: "require",
			wantReply: "sasl SCRAM-SHA-256-PLUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := pgwiretest.StartAuthProbe(t, tt.method, tt.probeTLS)
			code, out, errOut := runCmd(t, "check", "-connect", "-config", backendConfig(t, probe.Addr(), tt.backendTLS, tt.extra))
			if code != 1 {
				t.Errorf("exit %d, want 1 (the fake lets nobody in); stdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+errOut, adminPassword) {
				t.Errorf("output contains the admin password")
			}
			logins := probe.Logins()
			if len(logins) == 0 {
				t.Fatal("the fake backend saw no login")
			}
			for i, l := range logins {
				got := reply(l.Reply)
				if tt.wantReply == "" && l.Reply != nil {
					t.Errorf("login %d (TLS %v): the fake received %s, want nothing", i, l.TLS, got)
				}
				if tt.wantReply != "" && got != tt.wantReply {
					t.Errorf("login %d (TLS %v): the fake received %s, want %s", i, l.TLS, got, tt.wantReply)
				}
			}
		})
	}
}

// reply renders a client's answer to an authentication request.
func reply(msg pgproto3.FrontendMessage) string {
	switch m := msg.(type) {
	case nil:
		return "nothing"
	case *pgproto3.PasswordMessage:
		return "password " + m.Password
	case *pgproto3.SASLInitialResponse:
		return "sasl " + m.AuthMechanism
	}
	return fmt.Sprintf("%T", msg)
}
