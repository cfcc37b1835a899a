package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// UpstreamConfig says how to log in to the backend.
type UpstreamConfig struct {
	// Addr is the backend's host:port.
	Addr string
	// Database, User and Password are the login. Password never enters a
	// connection string.
	Database, User, Password string
	// Security is how the login is secured: TLS, the backend's certificate
	// checks and the authentication methods it answers (see
	// BackendSecurity.Apply). The zero value is prefer with
	// DefaultRequireAuth.
	Security BackendSecurity
	// Params are runtime parameters for the backend (application_name,
	// options, client_encoding, DateStyle, …). user and database are ignored
	// here; filtering anything else is the caller's job.
	Params map[string]string
	// DialFunc opens the TCP connection; nil means a net.Dialer. It is also
	// used by CancelBackend.
	DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Upstream is a backend connection that has logged in and is idle, ready to
// be relayed. The caller owns Conn and closes it.
type Upstream struct {
	// Conn is the raw backend connection (a *tls.Conn when TLS is on).
	Conn net.Conn
	// ParameterStatus holds every ParameterStatus the backend reported.
	ParameterStatus map[string]string
	// Key is the backend's own cancel key (protocol 3.0). Its process ID is
	// shown to the client (ClientKey); its secret never leaves Waypoint.
	Key CancelKey
	// Addr and TLS are what CancelBackend needs to reach the same server the
	// same way; TLS is nil when Conn is plaintext.
	Addr string
	TLS  *tls.Config

	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ConnectUpstream logs in to the backend with pgconn (SCRAM-SHA-256, MD5 or
// cleartext password, whichever the server asks for among
// cfg.Security.Auth) and hijacks the connection once it is idle. ctx bounds
// the whole login, TLS included.
//
// Failures are returned as *UpstreamError (see IsAuthFailed, IsUnreachable
// and BackendErrorInfo); the backend's *pgconn.PgError, if any, stays
// reachable with errors.As.
func ConnectUpstream(ctx context.Context, cfg UpstreamConfig) (*Upstream, error) {
	pc, err := cfg.PgconnConfig()
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, classifyConnectError(err)
	}
	up, err := hijack(ctx, conn)
	if err != nil {
		return nil, err
	}
	up.dial = pc.DialFunc
	if up.Addr == "" {
		up.Addr = cfg.Addr
	}
	return up, nil
}

// baseConfig is pgconn's defaults, parsed once: ParseConfig reads the
// environment and the password and service files, work that is wasted on
// every connection since each field that matters is set explicitly below.
var baseConfig = sync.OnceValues(func() (*pgconn.Config, error) {
	return pgconn.ParseConfig("host=localhost port=5432 user=waypoint sslmode=disable")
})

// PgconnConfig returns the pgconn.Config ConnectUpstream logs in with, a
// new one on every call. pgconn insists on configs
// made by ParseConfig, so each is a copy of baseConfig; every field that
// matters is then set directly, so that neither the password nor
// client-supplied parameters are ever quoted into a connection string, and
// PG* environment variables cannot change where or how Waypoint logs in.
// cfg.Security.Apply sets how the login is secured, as it does for the
// admin pool.
func (cfg UpstreamConfig) PgconnConfig() (*pgconn.Config, error) {
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	base, err := baseConfig()
	if err != nil {
		return nil, fmt.Errorf("pgwire: base pgconn config: %w", err)
	}
	pc := base.Copy()
	pc.Host, pc.Port = host, port
	if err := cfg.Security.Apply(pc); err != nil {
		return nil, err
	}
	pc.Database, pc.User, pc.Password = cfg.Database, cfg.User, cfg.Password
	pc.RuntimeParams = runtimeParams(cfg.Params)
	pc.ConnectTimeout = 0 // ctx bounds the login
	pc.DialFunc = dialFunc(cfg.DialFunc)
	// Hand the name to the dialer unresolved: it resolves (and may be a
	// tailnet dialer that knows names the system resolver does not).
	pc.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	// Protocol 3.0: the backend's cancel key is then 4 bytes, like CancelKey.
	pc.MinProtocolVersion, pc.MaxProtocolVersion = "3.0", "3.0"
	pc.KerberosSrvName, pc.KerberosSpn = "", ""
	pc.AfterNetConnect, pc.ValidateConnect, pc.AfterConnect = nil, nil, nil
	pc.OAuthTokenProvider = nil
	return pc, nil
}

// splitAddr splits a host:port backend address.
func splitAddr(addr string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("pgwire: backend address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("pgwire: backend address %q: want host:port", addr)
	}
	return host, uint16(port), nil
}

// runtimeParams copies params without user and database, which are set from
// the login itself.
func runtimeParams(params map[string]string) map[string]string {
	out := make(map[string]string, len(params))
	for k, v := range params {
		if k == "user" || k == "database" {
			continue
		}
		out[k] = v
	}
	return out
}

func dialFunc(dial func(ctx context.Context, network, addr string) (net.Conn, error)) pgconn.DialFunc {
	if dial != nil {
		return dial
	}
	d := &net.Dialer{KeepAlive: 5 * time.Minute}
	return d.DialContext
}

// hijack takes the raw connection from an idle, logged-in pgconn. SyncConn
// first makes sure no backend bytes sit in pgconn's buffers (it only pings
// when something does), so nothing is lost when the relay takes over.
func hijack(ctx context.Context, conn *pgconn.PgConn) (*Upstream, error) {
	if err := conn.SyncConn(ctx); err != nil {
		_ = conn.Close(ctx)
		return nil, &UpstreamError{Kind: Unreachable, Err: fmt.Errorf("sync backend connection: %w", err)}
	}
	hc, err := conn.Hijack()
	if err != nil {
		_ = conn.Close(ctx)
		return nil, &UpstreamError{Kind: Unreachable, Err: fmt.Errorf("hijack backend connection: %w", err)}
	}
	if err := checkHijacked(hc); err != nil {
		_ = hc.Conn.Close()
		return nil, &UpstreamError{Kind: Unreachable, Err: err}
	}
	_ = hc.Conn.SetDeadline(time.Time{})
	up := &Upstream{
		Conn:            hc.Conn,
		ParameterStatus: hc.ParameterStatuses,
		Key:             CancelKey{ProcessID: hc.PID, SecretKey: beUint32(hc.SecretKey)},
		TLS:             hc.TLSConfig,
	}
	if addr := hc.Conn.RemoteAddr(); addr != nil && addr.Network() == "tcp" {
		up.Addr = addr.String() // the server actually reached, as pgconn's own cancel does
	}
	return up, nil
}

// checkHijacked asserts what the relay relies on: an idle session at protocol
// 3.0 with nothing left unread inside pgproto3.
func checkHijacked(hc *pgconn.HijackedConn) error {
	if n := hc.Frontend.ReadBufferLen(); n != 0 {
		return fmt.Errorf("backend connection has %d unread bytes buffered after login", n)
	}
	if hc.TxStatus != 'I' {
		return fmt.Errorf("backend connection not idle after login (status %q)", hc.TxStatus)
	}
	if len(hc.SecretKey) != 4 {
		return fmt.Errorf("backend sent a %d-byte cancel key; protocol 3.0 uses 4", len(hc.SecretKey))
	}
	return nil
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
