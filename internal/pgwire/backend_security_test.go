package pgwire

import (
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/pgwire/pgwiretest"
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

// securityModes are the backend_tls settings every test of Apply covers.
// caFile "ca" stands for the test certificate's root file.
var securityModes = []struct {
	name, mode, caFile string
	auth               []string
}{
	{"disable", BackendTLSDisable, "", nil},
	{"empty mode is prefer", "", "", nil},
	{"prefer", BackendTLSPrefer, "", []string{AuthSCRAM}},
	{"require", BackendTLSRequire, "", []string{AuthSCRAM, AuthPassword}},
	{"require with a CA is verify-ca", BackendTLSRequire, "ca", nil},
	{"verify-full with the system pool", BackendTLSVerifyFull, "", nil},
	{"verify-full with a CA", BackendTLSVerifyFull, "ca", []string{AuthMD5}},
}

// TestBackendSecurity_ApplyFollowsLibpq checks that a role login secured
// by Apply (UpstreamConfig.PgconnConfig) behaves as libpq's sslmode,
// sslrootcert and require_auth say, read by pgconn from a connection
// string: TLS or not, a plaintext fallback or not, the same certificate
// checks, the same require_auth, channel binding "prefer" and no client
// certificate.
func TestBackendSecurity_ApplyFollowsLibpq(t *testing.T) {
	cert := newTestCert(t)
	certs := []*x509.Certificate{cert.leaf, newTestCert(t).leaf} // the CA file's, and another
	for _, tt := range securityModes {
		t.Run(tt.name, func(t *testing.T) {
			caFile := strings.ReplaceAll(tt.caFile, "ca", cert.rootFile)
			sec, err := NewBackendSecurity(tt.mode, caFile, tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			if (sec.RootCAs == nil) != (caFile == "") {
				t.Errorf("RootCAs = %v for backend_ca_file %q", sec.RootCAs, caFile)
			}
			requireAuth, err := RequireAuthParam(tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"sslmode": {sec.TLS}, "require_auth": {requireAuth}, "channel_binding": {"prefer"}, "sslcertmode": {"disable"}}
			if caFile != "" {
				q.Set("sslrootcert", caFile)
			}
			libpq, err := pgconn.ParseConfig("postgres://waypoint_admin@db.internal:5432/postgres?" + q.Encode())
			if err != nil {
				t.Fatalf("pgconn.ParseConfig: %v", err)
			}
			role, err := UpstreamConfig{Addr: "db.internal:5432", Security: sec}.PgconnConfig()
			if err != nil {
				t.Fatalf("PgconnConfig: %v", err)
			}
			if got, want := pgwiretest.DescribeLogin(role, certs), pgwiretest.DescribeLogin(libpq, certs); got != want {
				t.Errorf("role login: %s\nlibpq:      %s", got, want)
			}
		})
	}
}

// TestBackendSecurity_ApplyOverridesEnvironment checks that nothing
// pgconn.ParseConfig takes from PG* environment variables (sslmode, client
// certificate, root certificate, negotiation, require_auth, channel
// binding) survives Apply: a config parsed with them set and then secured
// behaves as one parsed without them.
func TestBackendSecurity_ApplyOverridesEnvironment(t *testing.T) {
	cert := newTestCert(t)
	certs := []*x509.Certificate{cert.leaf, newTestCert(t).leaf}
	secured := func(t *testing.T, sec BackendSecurity) string {
		t.Helper()
		pc, err := pgconn.ParseConfig("host=db.internal port=5432 user=u")
		if err != nil {
			t.Fatalf("pgconn.ParseConfig: %v", err)
		}
		if err := sec.Apply(pc); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return pgwiretest.DescribeLogin(pc, certs)
	}
	for _, envMode := range []string{BackendTLSDisable, BackendTLSRequire} {
		for _, tt := range securityModes {
			t.Run("PGSSLMODE="+envMode+"/"+tt.name, func(t *testing.T) {
				sec, err := NewBackendSecurity(tt.mode, strings.ReplaceAll(tt.caFile, "ca", cert.rootFile), tt.auth)
				if err != nil {
					t.Fatal(err)
				}
				want := secured(t, sec)
				pgwiretest.SetHostileEnv(t, envMode)
				if got := secured(t, sec); got != want {
					t.Errorf("with PG* set:    %s\nwithout PG* set: %s", got, want)
				}
			})
		}
	}
}

// TestBackendSecurity_ApplyRefusesInvalid checks that Apply and Validate
// refuse what NewBackendSecurity would not build, and that a refused Apply
// leaves the config as it was.
func TestBackendSecurity_ApplyRefusesInvalid(t *testing.T) {
	for _, sec := range []BackendSecurity{
		{TLS: "verify-ca"},
		{Auth: []string{"gss"}},
		{Auth: []string{}},
	} {
		pc, err := pgconn.ParseConfig("host=db.internal port=5432 user=u sslmode=require require_auth=scram-sha-256 channel_binding=disable")
		if err != nil {
			t.Fatal(err)
		}
		before := pgwiretest.DescribeLogin(pc, nil)
		if err := sec.Validate(); err == nil {
			t.Errorf("%+v: Validate: got nil error, want one", sec)
		}
		if err := sec.Apply(pc); err == nil {
			t.Errorf("%+v: Apply: got nil error, want one", sec)
		}
		if after := pgwiretest.DescribeLogin(pc, nil); after != before {
			t.Errorf("%+v: a refused Apply changed the config:\n got %s\nwant %s", sec, after, before)
		}
	}
	if err := (BackendSecurity{}).Validate(); err != nil {
		t.Errorf("zero BackendSecurity: Validate: %v, want nil (prefer, default methods)", err)
	}
}
