// Package certs chooses the certificate Waypoint presents to a client by the
// server name it asked for (SNI): an operator-supplied certificate file for
// the names it covers, otherwise the node's Tailscale-issued *.ts.net
// certificate. It imports only the standard library; the Tailscale source is
// passed in as a function.
//
// It keeps no certificates of its own: the Tailscale source is tsnet's local
// client, which caches each certificate in the node's state directory and
// renews it before it expires, serving the cached one while a renewal runs
// or fails.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// FetchFunc returns a certificate for domain, e.g. from the tailnet node. It
// is called on every handshake that needs a Tailscale certificate, so it
// caches and renews itself, as tsnet's local client does.
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

// tailscaleCert returns the Tailscale certificate for domain.
func (s *Selector) tailscaleCert(domain string) (*tls.Certificate, error) {
	cert, err := s.Tailscale(domain)
	if err != nil {
		return nil, fmt.Errorf("tailscale certificate for %s: %w", domain, err)
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("tailscale certificate for %s: empty", domain)
	}
	return cert, nil
}
