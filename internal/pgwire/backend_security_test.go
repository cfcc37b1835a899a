package pgwire

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestNewBackendSecurity_Errors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, mode, caFile string
		auth               []string
		want               string
	}{
		{"unknown mode", "verify-ca", "", nil, `backend_tls: invalid mode "verify-ca"`},
		{"unknown method", "prefer", "", []string{"gss"}, `backend_auth: pgwire: unknown backend authentication method "gss"`},
		{"no method", "prefer", "", []string{}, "backend_auth: pgwire: no backend authentication method allowed"},
		{"missing CA file", "verify-full", filepath.Join(t.TempDir(), "missing.pem"), nil, "backend_ca_file: open "},
		{"CA file without certificates", "verify-full", notPEM, nil, "backend_ca_file " + notPEM + ": no PEM certificates found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewBackendSecurity(tt.mode, tt.caFile, tt.auth)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestBackendSecurity_BothLoginsAgree builds, from one BackendSecurity, the
// admin pool's login (its ConnParams parsed by pgconn, as pgxpool does) and
// a role login (pgconnConfig of the UpstreamConfig the proxy fills from
// the same value), and checks that they secure the backend alike: TLS or
// not, a plaintext fallback or not, the same certificate checks, the same
// require_auth and channel binding.
func TestBackendSecurity_BothLoginsAgree(t *testing.T) {
	cert := newTestCert(t)
	certs := []*x509.Certificate{cert.leaf, newTestCert(t).leaf} // the CA file's, and another
	tests := []struct {
		name, mode, caFile string
		auth               []string
	}{
		{"disable", BackendTLSDisable, "", nil},
		{"empty mode is prefer", "", "", nil},
		{"prefer", BackendTLSPrefer, "", []string{AuthSCRAM}},
		{"require", BackendTLSRequire, "", []string{AuthSCRAM, AuthPassword}},
		{"require with a CA is verify-ca", BackendTLSRequire, cert.rootFile, nil},
		{"verify-full with the system pool", BackendTLSVerifyFull, "", nil},
		{"verify-full with a CA", BackendTLSVerifyFull, cert.rootFile, []string{AuthMD5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, err := NewBackendSecurity(tt.mode, tt.caFile, tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			admin, err := pgconn.ParseConfig("postgres://waypoint_admin@db.internal:5432/postgres?" + sec.ConnParams().Encode())
			if err != nil {
				t.Fatalf("pgconn.ParseConfig: %v", err)
			}
			role, err := pgconnConfig(UpstreamConfig{Addr: "db.internal:5432", TLS: sec.TLS, RootCAs: sec.RootCAs, RequireAuth: sec.Auth})
			if err != nil {
				t.Fatalf("pgconnConfig: %v", err)
			}
			if got, want := describeLogin(role, certs), describeLogin(admin, certs); got != want {
				t.Errorf("role login:  %s\nadmin login: %s", got, want)
			}
			if (sec.RootCAs == nil) != (tt.caFile == "") {
				t.Errorf("RootCAs = %v for backend_ca_file %q", sec.RootCAs, tt.caFile)
			}
		})
	}
}

// describeLogin summarizes how c secures its login, and which of certs
// its certificate check accepts.
func describeLogin(c *pgconn.Config, certs []*x509.Certificate) string {
	var b strings.Builder
	b.WriteString("tls=" + describeTLS(c.TLSConfig, certs))
	for _, f := range c.Fallbacks {
		b.WriteString(" fallback=" + describeTLS(f.TLSConfig, certs))
	}
	b.WriteString(" require_auth=" + c.RequireAuth + " channel_binding=" + c.ChannelBinding)
	return b.String()
}

// describeTLS says whether cfg encrypts, checks the host name, and which
// of certs it accepts as the backend's chain.
func describeTLS(cfg *tls.Config, certs []*x509.Certificate) string {
	if cfg == nil {
		return "off"
	}
	accepts := ""
	for _, c := range certs {
		accepts += " " + boolText(trusts(cfg, c) == nil)
	}
	return "on(server_name=" + cfg.ServerName + " host=" + boolText(!cfg.InsecureSkipVerify) + " accepts=" + strings.TrimSpace(accepts) + ")"
}

// trusts runs the chain check cfg makes on a backend that presents leaf:
// its own callback when it has one, else crypto/tls's against RootCAs
// (unless verification is off).
func trusts(cfg *tls.Config, leaf *x509.Certificate) error {
	switch {
	case cfg.VerifyConnection != nil:
		return cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}})
	case cfg.VerifyPeerCertificate != nil:
		return cfg.VerifyPeerCertificate([][]byte{leaf.Raw}, nil)
	case cfg.InsecureSkipVerify:
		return nil
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs})
	return err
}

func boolText(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
