package server

import (
	"crypto/tls"
	"net/url"

	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// backendSecurity is how every login to l's backend is secured, the admin
// pool's and each role's: l's backend_tls, backend_ca_file and backend_auth
// through pgwire.NewBackendSecurity.
func backendSecurity(l *config.Listener) (pgwire.BackendSecurity, error) {
	pg := l.Postgres
	return pgwire.NewBackendSecurity(string(pg.BackendTLS), pg.BackendCAFile, pg.BackendAuth)
}

// AdminConnString is the libpq URL of the admin login of listener l (a
// postgres listener), as serve's provisioner uses it: see adminConnString.
func AdminConnString(l *config.Listener) (string, error) {
	sec, err := backendSecurity(l)
	if err != nil {
		return "", err
	}
	return adminConnString(l, sec), nil
}

// adminConnString is the libpq URL of the listener's admin login. It is built
// with net/url so that passwords and names with special characters survive.
// It carries sec, the settings role logins get through proxy.Backend, as
// sslmode, sslrootcert, require_auth and channel_binding=prefer
// (BackendSecurity.ConnParams). Parameters in the URL win over PG*
// environment variables, so PGREQUIREAUTH cannot loosen them.
func adminConnString(l *config.Listener, sec pgwire.BackendSecurity) string {
	pg := l.Postgres
	u := url.URL{
		Scheme: "postgres",
		Host:   l.Backend,
		Path:   "/" + pg.AdminDatabase,
	}
	if pg.AdminPassword != "" {
		u.User = url.UserPassword(pg.AdminUser, pg.AdminPassword)
	} else {
		u.User = url.User(pg.AdminUser)
	}
	q := sec.ConnParams()
	q.Set("application_name", "waypoint-admin")
	u.RawQuery = q.Encode()
	return u.String()
}

// ExplainLoginError returns, for an admin login abandoned because the
// backend asked for a method backend_auth does not allow, the
// *pgwire.AuthMethodError that says so and what to change; err otherwise.
func ExplainLoginError(err error) error {
	if ae, ok := pgwire.AuthMethodRefused(err); ok {
		return ae
	}
	return err
}

// clientTLS builds the TLS configuration clients see, or nil when the
// listener serves no TLS.
func clientTLS(l *config.Listener, node *tailnet.Node) (*tls.Config, error) {
	if l.TLSMode == config.TLSOff {
		return nil, nil
	}
	sel := &certs.Selector{}
	if l.CertFile != "" {
		cert, err := certs.LoadFile(l.CertFile, l.KeyFile)
		if err != nil {
			return nil, err
		}
		sel.File = cert
	}
	if l.UseTailscaleTLS {
		sel.Tailscale = func(domain string) (*tls.Certificate, error) {
			return node.GetCertificate(&tls.ClientHelloInfo{ServerName: domain})
		}
		sel.TailscaleDomains = node.CertDomains
	}
	if sel.File == nil && sel.Tailscale == nil {
		return nil, nil
	}
	return sel.TLSConfig(), nil
}
