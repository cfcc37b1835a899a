package pgwire

import (
	"crypto/tls"
	"net"
)

// serverTLSConfig returns a copy of base with TLS 1.2 as the minimum and the
// PostgreSQL ALPN protocol, also applied to configs from GetConfigForClient.
func serverTLSConfig(base *tls.Config) *tls.Config {
	cfg := harden(base.Clone())
	if get := cfg.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if err != nil || c == nil {
				return c, err
			}
			return harden(c.Clone()), nil
		}
	}
	return cfg
}

func harden(cfg *tls.Config) *tls.Config {
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.NextProtos = []string{alpnPostgres}
	return cfg
}

// prefixConn is a net.Conn whose first reads return prefix, then read from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
