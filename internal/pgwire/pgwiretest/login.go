package pgwiretest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// DescribeLogin summarizes how c secures its login, so that tests can
// compare two configs by what they do rather than field by field: TLS or
// not on the first attempt and on each fallback, the name checked, whether
// the host name is verified, which of certs the certificate check accepts,
// whether a client certificate is offered, and sslnegotiation,
// sslcertmode, require_auth and channel_binding.
func DescribeLogin(c *pgconn.Config, certs []*x509.Certificate) string {
	var b strings.Builder
	b.WriteString("tls=" + describeTLS(c.TLSConfig, certs))
	for _, f := range c.Fallbacks {
		b.WriteString(" fallback=" + f.Host + ":" + strconv.Itoa(int(f.Port)) + "/" + describeTLS(f.TLSConfig, certs))
	}
	b.WriteString(" sslnegotiation=" + c.SSLNegotiation + " sslcertmode=" + c.SSLCertMode)
	b.WriteString(" require_auth=" + c.RequireAuth + " channel_binding=" + c.ChannelBinding)
	return b.String()
}

// describeTLS says whether cfg encrypts, the name it sends and checks,
// whether it checks that name, which of certs it accepts as the backend's
// chain and whether it offers a client certificate.
func describeTLS(cfg *tls.Config, certs []*x509.Certificate) string {
	if cfg == nil {
		return "off"
	}
	accepts := ""
	for _, c := range certs {
		accepts += " " + yesNo(trusts(cfg, c) == nil)
	}
	clientCert := len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil
	return "on(server_name=" + cfg.ServerName + " host=" + yesNo(!cfg.InsecureSkipVerify) +
		" accepts=" + strings.TrimSpace(accepts) + " client_cert=" + yesNo(clientCert) + ")"
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

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// SetHostileEnv sets, for the rest of t, the PG* environment variables that
// pgconn.ParseConfig reads and that would weaken or alter a backend login
// that trusted them: sslmode (the given one; "disable" downgrades,
// "require" makes ParseConfig read the client certificate files), a client
// certificate and key (PGSSLCERT, PGSSLKEY, PGSSLCERTMODE=require), a root
// certificate of its own (PGSSLROOTCERT), direct TLS negotiation,
// require_auth=password (cleartext) and channel_binding=disable. The
// certificate files are real, so ParseConfig succeeds and loads them.
func SetHostileEnv(t *testing.T, sslmode string) {
	t.Helper()
	cert := testkit.SelfSigned(t, time.Now().Add(time.Hour), "intruder.example")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	writePEM(t, certFile, "CERTIFICATE", cert.Certificate[0])
	writePEM(t, keyFile, "PRIVATE KEY", key)
	for k, v := range map[string]string{
		"PGSSLMODE":        sslmode,
		"PGSSLCERT":        certFile,
		"PGSSLKEY":         keyFile,
		"PGSSLCERTMODE":    "require",
		"PGSSLROOTCERT":    certFile,
		"PGSSLNEGOTIATION": "direct",
		"PGREQUIREAUTH":    "password",
		"PGCHANNELBINDING": "disable",
	} {
		t.Setenv(k, v)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
