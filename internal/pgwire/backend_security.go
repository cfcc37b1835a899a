package pgwire

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
)

// BackendSecurity is how Waypoint secures every login to one backend: the
// TLS mode, the CAs that verify the backend and the authentication methods
// the login may answer. NewBackendSecurity is the one place that turns a
// listener's backend_tls, backend_ca_file and backend_auth into it; the
// admin pool reads it as libpq connection parameters (ConnParams) and role
// logins as UpstreamConfig's TLS, RootCAs and RequireAuth, so the two
// logins cannot drift apart.
type BackendSecurity struct {
	// TLS is the sslmode: BackendTLSDisable, BackendTLSPrefer,
	// BackendTLSRequire or BackendTLSVerifyFull.
	TLS string
	// RootCAFile is the PEM file RootCAs was read from, "" when none.
	RootCAFile string
	// RootCAs verifies the backend (UpstreamConfig.RootCAs); nil when
	// RootCAFile is "".
	RootCAs *x509.CertPool
	// Auth is the methods the login may answer, as configured (nil means
	// DefaultRequireAuth); it is UpstreamConfig.RequireAuth.
	Auth []string
	// RequireAuth is Auth as libpq's require_auth value (RequireAuthParam).
	RequireAuth string
}

// NewBackendSecurity checks tlsMode (libpq's sslmode; "" means prefer) and
// auth (see RequireAuthParam), reads caFile ("" for none) and returns the
// settings every login to the backend uses. Its errors name the
// configuration key at fault (backend_tls, backend_ca_file, backend_auth).
func NewBackendSecurity(tlsMode, caFile string, auth []string) (BackendSecurity, error) {
	switch tlsMode {
	case "":
		tlsMode = BackendTLSPrefer
	case BackendTLSDisable, BackendTLSPrefer, BackendTLSRequire, BackendTLSVerifyFull:
	default:
		return BackendSecurity{}, fmt.Errorf("backend_tls: invalid mode %q (want disable, prefer, require or verify-full)", tlsMode)
	}
	requireAuth, err := RequireAuthParam(auth)
	if err != nil {
		return BackendSecurity{}, fmt.Errorf("backend_auth: %w", err)
	}
	roots, err := loadRootCAs(caFile)
	if err != nil {
		return BackendSecurity{}, err
	}
	return BackendSecurity{TLS: tlsMode, RootCAFile: caFile, RootCAs: roots, Auth: auth, RequireAuth: requireAuth}, nil
}

// ConnParams returns the settings as the parameters of a libpq connection
// string: sslmode, sslrootcert (when RootCAFile is set), require_auth and
// channel_binding=prefer (SCRAM-SHA-256-PLUS whenever TLS is on and the
// server offers it, as role logins do). pgconn reads them with libpq's
// semantics, which upstreamTLS follows for role logins; a test parses both
// and compares them. Parameters in a URL win over PG* environment
// variables, so PGREQUIREAUTH cannot loosen them.
func (b BackendSecurity) ConnParams() url.Values {
	q := url.Values{}
	q.Set("sslmode", b.TLS)
	if b.RootCAFile != "" {
		q.Set("sslrootcert", b.RootCAFile)
	}
	q.Set("require_auth", b.RequireAuth)
	q.Set("channel_binding", "prefer")
	return q
}

// loadRootCAs reads a PEM file of CA certificates; "" gives nil.
func loadRootCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backend_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("backend_ca_file %s: no PEM certificates found", path)
	}
	return pool, nil
}
