// Package certs chooses the certificate Waypoint presents to a client by the
// server name it asked for (SNI): an operator-supplied certificate file for
// the names it covers, otherwise the node's Tailscale-issued *.ts.net
// certificate. It imports only the standard library; the Tailscale source is
// passed in as a function.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// FetchFunc returns a certificate for domain, e.g. from the tailnet node.
type FetchFunc func(domain string) (*tls.Certificate, error)

// Selector implements tls.Config.GetCertificate. The zero value has no
// certificates and refuses every handshake. A Selector is safe for
// concurrent use once built.
type Selector struct {
	// File is the operator's certificate (cert_file/key_file), with Leaf
	// parsed. Nil means none.
	File *tls.Certificate
	// Tailscale fetches the node's certificate for one of its *.ts.net
	// names. Nil means use_tailscale_tls is off.
	Tailscale FetchFunc
	// TailscaleDomains are the names Tailscale can issue certificates for;
	// the first is used when a client sends no SNI and there is no File.
	TailscaleDomains func() []string
	// RefreshBefore is how long before expiry a cached Tailscale certificate
	// is fetched again. Zero means 7 days.
	RefreshBefore time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]*tls.Certificate
}

// ErrNoCertificate is returned when no certificate matches the request.
var ErrNoCertificate = errors.New("no certificate for this server name")

// LoadFile reads a PEM certificate and key pair and parses its leaf.
func LoadFile(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", certFile, err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse certificate %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	return &cert, nil
}

// TLSConfig returns a server configuration with TLS 1.2 as the minimum that
// selects certificates with s.
func (s *Selector) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
	}
}

// GetCertificate picks the certificate for hello.ServerName:
//   - the file certificate when it covers the name, or when no name was sent;
//   - otherwise the Tailscale certificate when the name is one of the node's
//     Tailscale names (or, with no name sent and no file, its first name);
//   - otherwise the file certificate if there is one (the client decides
//     whether a name mismatch matters, as with any server);
//   - otherwise ErrNoCertificate.
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if s.File != nil && (name == "" || s.File.Leaf.VerifyHostname(name) == nil) {
		return s.File, nil
	}
	if domain := s.tailscaleDomain(name); domain != "" {
		return s.tailscaleCert(domain)
	}
	if s.File != nil {
		return s.File, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCertificate, name)
}

// tailscaleDomain returns the Tailscale name to fetch for the requested name,
// or "" when Tailscale cannot serve it.
func (s *Selector) tailscaleDomain(name string) string {
	if s.Tailscale == nil || s.TailscaleDomains == nil {
		return ""
	}
	domains := s.TailscaleDomains()
	if len(domains) == 0 {
		return ""
	}
	if name == "" {
		return domains[0]
	}
	for _, d := range domains {
		if strings.EqualFold(strings.TrimSuffix(d, "."), name) {
			return d
		}
	}
	return ""
}

// tailscaleCert returns a cached certificate for domain, fetching a new one
// when there is none or it expires within RefreshBefore. If a refresh fails
// while the cached certificate is still valid, the cached one is served.
func (s *Selector) tailscaleCert(domain string) (*tls.Certificate, error) {
	now := s.now()
	s.mu.Lock()
	cached := s.cache[domain]
	s.mu.Unlock()
	if cached != nil && now.Add(s.refreshBefore()).Before(cached.Leaf.NotAfter) {
		return cached, nil
	}
	fresh, err := s.fetch(domain)
	if err != nil {
		if cached != nil && now.Before(cached.Leaf.NotAfter) {
			return cached, nil
		}
		return nil, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]*tls.Certificate{}
	}
	s.cache[domain] = fresh
	s.mu.Unlock()
	return fresh, nil
}

func (s *Selector) fetch(domain string) (*tls.Certificate, error) {
	cert, err := s.Tailscale(domain)
	if err != nil {
		return nil, fmt.Errorf("tailscale certificate for %s: %w", domain, err)
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("tailscale certificate for %s: empty", domain)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("tailscale certificate for %s: %w", domain, err)
		}
		cert.Leaf = leaf
	}
	return cert, nil
}

func (s *Selector) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Selector) refreshBefore() time.Duration {
	if s.RefreshBefore > 0 {
		return s.RefreshBefore
	}
	return 7 * 24 * time.Hour
}
