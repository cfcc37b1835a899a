package server

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// TestBackendLogins_SecuredAlike builds, for every backend_tls mode, the
// admin pool's configuration exactly as provision.New does
// (provision.AdminConfig of adminOptions) and a role login's as the proxy
// does (pgwire.UpstreamConfig.PgconnConfig with backend's Security), and
// checks that they secure the backend alike: TLS or not, the same
// plaintext fallback, the same certificate checks, no client certificate,
// the same require_auth and channel binding. It checks the same with PG*
// environment variables set that would weaken or alter a login that read
// them: neither login changes.
func TestBackendLogins_SecuredAlike(t *testing.T) {
	ca := testkit.SelfSigned(t, time.Now().Add(time.Hour), "db.internal")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	other := testkit.SelfSigned(t, time.Now().Add(time.Hour), "db.internal")
	certs := []*x509.Certificate{ca.Leaf, other.Leaf}
	tests := []struct {
		name    string
		tls     config.BackendTLS
		caFile  string
		auth    []string
		wantTLS string // the first attempt's TLS, as pgwiretest.DescribeLogin shows it
		wantFB  int    // fallbacks
	}{
		{name: "disable", tls: config.BackendTLSDisable, wantTLS: "off"},
		{name: "prefer", tls: config.BackendTLSPrefer, auth: []string{pgwire.AuthSCRAM},
			wantTLS: "on(server_name=db.internal host=no accepts=yes yes client_cert=no)", wantFB: 1},
		{name: "require", tls: config.BackendTLSRequire, auth: []string{pgwire.AuthSCRAM, pgwire.AuthPassword},
			wantTLS: "on(server_name=db.internal host=no accepts=yes yes client_cert=no)"},
		{name: "require with a CA", tls: config.BackendTLSRequire, caFile: caFile,
			wantTLS: "on(server_name=db.internal host=no accepts=yes no client_cert=no)"},
		{name: "verify-full", tls: config.BackendTLSVerifyFull,
			wantTLS: "on(server_name=db.internal host=yes accepts=no no client_cert=no)"},
		{name: "verify-full with a CA", tls: config.BackendTLSVerifyFull, caFile: caFile, auth: []string{pgwire.AuthMD5},
			wantTLS: "on(server_name=db.internal host=yes accepts=yes no client_cert=no)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &config.Listener{Name: "pg-main", Backend: "db.internal:5432", Postgres: &config.Postgres{
				AdminUser: "waypoint_admin", AdminPassword: "s3cret", AdminDatabase: "postgres",
				BackendTLS: tt.tls, BackendCAFile: tt.caFile, BackendAuth: tt.auth,
			}}
			admin, role := securedLogins(t, l, certs)
			if admin != role {
				t.Errorf("admin login: %s\nrole login:  %s", admin, role)
			}
			wantAuth, err := pgwire.RequireAuthParam(tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			want := "tls=" + tt.wantTLS
			for range tt.wantFB {
				want += " fallback=db.internal:5432/off"
			}
			want += " sslnegotiation= sslcertmode=disable require_auth=" + wantAuth + " channel_binding=prefer"
			if admin != want {
				t.Errorf("admin login: %s\nwant:        %s", admin, want)
			}
			for _, envMode := range []string{"disable", "require"} {
				t.Run("PGSSLMODE="+envMode, func(t *testing.T) {
					pgwiretest.SetHostileEnv(t, envMode)
					envAdmin, envRole := securedLogins(t, l, certs)
					if envAdmin != admin || envRole != role {
						t.Errorf("with PG* set:\nadmin login: %s\nrole login:  %s\nwithout:\nadmin login: %s\nrole login:  %s",
							envAdmin, envRole, admin, role)
					}
				})
			}
		})
	}
}

// securedLogins describes how l's admin pool and a role login secure the
// backend, each built as serve builds it.
func securedLogins(t *testing.T, l *config.Listener, certs []*x509.Certificate) (admin, role string) {
	t.Helper()
	sec, err := backendSecurity(l)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := provision.AdminConfig(adminOptions(l, sec))
	if err != nil {
		t.Fatalf("provision.AdminConfig: %v", err)
	}
	b := backend(l, sec)
	up, err := pgwire.UpstreamConfig{Addr: b.Addr, User: "wp_alice", Database: "appdb", Security: b.Security}.PgconnConfig()
	if err != nil {
		t.Fatalf("PgconnConfig: %v", err)
	}
	return pgwiretest.DescribeLogin(&pool.ConnConfig.Config, certs), pgwiretest.DescribeLogin(up, certs)
}

// TestAdminOptions_URL checks that the admin URL says where and as whom
// to log in, with special characters intact, and leaves how the login is
// secured to Secure.
func TestAdminOptions_URL(t *testing.T) {
	l := &config.Listener{Name: "pg-main", Backend: "db.internal:6432", Postgres: &config.Postgres{
		AdminUser: "wp admin", AdminPassword: "p@ss:w/rd?&", AdminDatabase: "ops db",
		BackendTLS: config.BackendTLSVerifyFull,
	}}
	opts, err := AdminOptions(l)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Secure == nil {
		t.Fatal("Secure is nil: the admin login would be secured by the URL alone")
	}
	cfg, err := provision.AdminConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.ConnConfig
	if cc.Host != "db.internal" || cc.Port != 6432 || cc.User != "wp admin" || cc.Password != "p@ss:w/rd?&" || cc.Database != "ops db" {
		t.Errorf("got %s@%s:%d/%s password %q, want the configured login", cc.User, cc.Host, cc.Port, cc.Database, cc.Password)
	}
	if got := cc.RuntimeParams["application_name"]; got != "waypoint-admin" {
		t.Errorf("application_name = %q, want waypoint-admin", got)
	}
	if cc.TLSConfig == nil || cc.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS = %+v, want verify-full", cc.TLSConfig)
	}
}
