package pgwire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgconn"
)

// Backend TLS modes, with libpq's sslmode semantics.
const (
	BackendTLSDisable    = "disable"
	BackendTLSPrefer     = "prefer"
	BackendTLSRequire    = "require"
	BackendTLSVerifyFull = "verify-full"
)

// BackendSecurity is how Waypoint secures every login to one backend: the
// TLS mode, the CAs and name that verify the backend and the
// authentication methods the login may answer. NewBackendSecurity is the
// one place that turns a listener's backend_tls, backend_ca_file and
// backend_auth into it, and Apply is the one place that turns it into a
// pgconn.Config's settings, for the admin pool and for role logins alike,
// so the two logins cannot drift apart. The zero value is prefer with
// DefaultRequireAuth.
type BackendSecurity struct {
	// TLS is the sslmode: BackendTLSDisable, BackendTLSPrefer,
	// BackendTLSRequire or BackendTLSVerifyFull. "" means prefer, libpq's
	// default.
	TLS string
	// RootCAs verifies the backend's certificate chain for verify-full (nil
	// means the system pool) and, when set, for require (like libpq's
	// sslrootcert, which turns require into verify-ca).
	RootCAs *x509.CertPool
	// ServerName is the name verify-full checks the certificate against and
	// the SNI sent; "" means the host the login dials (pgconn.Config.Host).
	ServerName string
	// Auth lists the authentication methods the login answers (AuthSCRAM,
	// AuthMD5, AuthPassword), like libpq's require_auth: a backend that asks
	// for any other gets nothing and the login fails with an error that
	// AuthMethodRefused recognises. Nil means DefaultRequireAuth:
	// scram-sha-256 and md5, never cleartext. A backend that asks for no
	// password (trust) is accepted; see RequireAuthParam. With TLS, SCRAM is
	// channel-bound (SCRAM-SHA-256-PLUS) whenever the server offers it.
	Auth []string
}

// NewBackendSecurity checks tlsMode (libpq's sslmode; "" means prefer) and
// auth (see RequireAuthParam), reads caFile ("" for none) and returns the
// settings every login to the backend uses. Its errors name the
// configuration key at fault (backend_tls, backend_ca_file, backend_auth).
func NewBackendSecurity(tlsMode, caFile string, auth []string) (BackendSecurity, error) {
	if tlsMode == "" {
		tlsMode = BackendTLSPrefer
	}
	sec := BackendSecurity{TLS: tlsMode, Auth: auth}
	if _, _, err := sec.tlsConfig(""); err != nil {
		return BackendSecurity{}, fmt.Errorf("backend_tls: invalid mode %q (want disable, prefer, require or verify-full)", tlsMode)
	}
	if _, err := RequireAuthParam(auth); err != nil {
		return BackendSecurity{}, fmt.Errorf("backend_auth: %w", err)
	}
	roots, err := loadRootCAs(caFile)
	if err != nil {
		return BackendSecurity{}, err
	}
	sec.RootCAs = roots
	return sec, nil
}

// Validate reports whether Apply can use b: a known TLS mode and
// authentication methods RequireAuthParam accepts.
func (b BackendSecurity) Validate() error {
	if _, _, err := b.tlsConfig(""); err != nil {
		return err
	}
	_, err := RequireAuthParam(b.Auth)
	return err
}

// Apply sets everything about how pc's login is secured from b, replacing
// whatever pc held before, whether it came from a connection string or
// from PG* environment variables (PGSSLMODE, PGSSLROOTCERT, PGSSLCERT,
// PGREQUIREAUTH, PGCHANNELBINDING…):
//
//   - TLSConfig and Fallbacks, following libpq's sslmode (see tlsConfig):
//     prefer tries TLS first, then plaintext to the same Host and Port;
//     every other mode makes exactly one attempt;
//   - SSLNegotiation: "", an SSLRequest first, which every server version
//     understands;
//   - SSLCertMode: "disable", Waypoint never presents a client certificate;
//   - ChannelBinding: "prefer", SCRAM-SHA-256-PLUS whenever TLS is on and
//     the server offers it;
//   - RequireAuth: RequireAuthParam(b.Auth).
//
// pc.Host and pc.Port must already be the backend's: the fallback and the
// default server name are taken from them. On error (b fails Validate) pc
// is left unchanged. Apply has the signature of provision.Options.Secure.
func (b BackendSecurity) Apply(pc *pgconn.Config) error {
	requireAuth, err := RequireAuthParam(b.Auth)
	if err != nil {
		return err
	}
	primary, fallback, err := b.tlsConfig(pc.Host)
	if err != nil {
		return err
	}
	pc.TLSConfig, pc.Fallbacks = primary, nil
	if fallback {
		pc.Fallbacks = []*pgconn.FallbackConfig{{Host: pc.Host, Port: pc.Port}}
	}
	pc.SSLNegotiation = ""
	pc.SSLCertMode = "disable"
	pc.ChannelBinding = "prefer"
	pc.RequireAuth = requireAuth
	return nil
}

// tlsConfig returns the TLS config for the first attempt to reach host and
// whether a plaintext attempt follows if it fails (prefer), following
// libpq's sslmode.
func (b BackendSecurity) tlsConfig(host string) (*tls.Config, bool, error) {
	serverName := b.ServerName
	if serverName == "" {
		serverName = host
	}
	base := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	switch b.TLS {
	case BackendTLSDisable:
		return nil, false, nil
	case "", BackendTLSPrefer:
		// libpq's prefer encrypts opportunistically without verifying the
		// certificate (it protects against passive eavesdropping only), then
		// falls back to plaintext. Use verify-full for real verification.
		base.InsecureSkipVerify = true
		return base, true, nil
	case BackendTLSRequire:
		if b.RootCAs == nil {
			// libpq's require without a root certificate: TLS is mandatory but
			// the certificate is not verified.
			base.InsecureSkipVerify = true
			return base, false, nil
		}
		// libpq's require with sslrootcert behaves as verify-ca: the chain is
		// verified against RootCAs, the host name is not.
		base.InsecureSkipVerify = true // replaced by verifyChain below
		base.VerifyConnection = verifyChain(b.RootCAs)
		return base, false, nil
	case BackendTLSVerifyFull:
		base.RootCAs = b.RootCAs
		return base, false, nil
	}
	return nil, false, fmt.Errorf("pgwire: invalid backend TLS mode %q (want disable, prefer, require or verify-full)", b.TLS)
}

// verifyChain returns a VerifyConnection callback that checks the peer's
// chain against roots without checking the host name (libpq's verify-ca).
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pgwire: backend sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("pgwire: verify backend certificate: %w", err)
		}
		return nil
	}
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
