package server

import (
	"crypto/tls"
	"net/url"

	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// backendSecurity is how every login to l's backend is secured, the admin
// pool's and each role's: l's backend_tls, backend_ca_file and backend_auth
// through pgwire.NewBackendSecurity.
func backendSecurity(l *config.Listener) (pgwire.BackendSecurity, error) {
	pg := l.Postgres
	return pgwire.NewBackendSecurity(string(pg.BackendTLS), pg.BackendCAFile, pg.BackendAuth)
}

// backend is how the proxy reaches l's backend and secures role logins:
// with sec, as the admin login (adminOptions).
func backend(l *config.Listener, sec pgwire.BackendSecurity) proxy.Backend {
	return proxy.Backend{Addr: l.Backend, Security: sec}
}

// AdminOptions returns the login fields of provision.Options
// (AdminConnString and Secure) for the admin of listener l (a postgres
// listener), exactly as serve's provisioner gets them: see adminOptions.
func AdminOptions(l *config.Listener) (provision.Options, error) {
	sec, err := backendSecurity(l)
	if err != nil {
		return provision.Options{}, err
	}
	return adminOptions(l, sec), nil
}

// adminOptions returns the login fields of provision.Options for l's admin.
// AdminConnString is a libpq URL, built with net/url so that passwords and
// names with special characters survive, that says only where and as whom
// to log in: host, database, user, password and application_name, plus
// sslmode=disable so that pgconn builds no TLS settings of its own from it
// or from PG* environment variables (it would read PGSSLCERT's files).
// Secure is sec.Apply, the function role logins are secured with: it sets
// TLS, fallbacks, require_auth and channel binding on the parsed URL.
func adminOptions(l *config.Listener, sec pgwire.BackendSecurity) provision.Options {
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
	q := url.Values{}
	q.Set("application_name", "waypoint-admin")
	q.Set("sslmode", "disable") // replaced by Secure
	u.RawQuery = q.Encode()
	return provision.Options{AdminConnString: u.String(), Secure: sec.Apply}
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
