// Package config reads Waypoint's TOML configuration file: the schema as Go
// types, defaults, "${VAR}" expansion from the environment, and validation
// that reports every problem at once, each with its key path and line, so
// that nothing starts from a file that is wrong.
//
// Parse and Load return a *Config that has passed Validate; the values in it
// are normalised (enums lower case, defaults filled in) and need no further
// checks by their users.
package config

import "time"

// Config is a whole configuration file. Build one with Parse or Load; a
// Config built in code gets no defaults, only Validate.
type Config struct {
	// Tailscale configures the tsnet node. The [tailscale] table.
	Tailscale Tailscale
	// Provisioning holds global provisioning switches. [provisioning].
	Provisioning Provisioning
	// Revalidation controls live re-authorization. [revalidation].
	Revalidation Revalidation
	// Defaults holds values used where a grant sets none. [defaults].
	Defaults Defaults
	// Redis, when non-nil, shares limit state between Waypoint instances.
	// Nil when the [redis] table is absent: limits are per instance.
	Redis *Redis
	// Metrics, when non-nil, serves Prometheus metrics and health endpoints.
	// Nil when the [metrics] table is absent: no metrics listener.
	Metrics *Metrics
	// Console, when non-nil, serves the operator console. Nil when the
	// [console] table is absent: no console.
	Console *Console
	// Shutdown bounds graceful shutdown. [shutdown].
	Shutdown Shutdown
	// Listeners are the [[listeners]] tables, in file order; at least one.
	Listeners []Listener

	// lines locates key paths in the source file for Validate's messages;
	// nil for a Config built in code.
	lines keyLines
}

// Tailscale configures the embedded tsnet node.
type Tailscale struct {
	// Hostname is the node's name in the tailnet (key hostname). Required.
	Hostname string
	// StateDir holds the node's keys and state (key state_dir). Default
	// "/var/lib/waypoint/tsnet".
	StateDir string
	// AuthKey logs the node in when it has no state yet (key auth_key).
	// Default: the TS_AUTHKEY environment variable; empty means interactive
	// login (or existing state).
	AuthKey string
	// ControlURL is the coordination server (key control_url): Tailscale,
	// Headscale or a test server. Default "" (Tailscale's own).
	ControlURL string
	// Ephemeral registers the node as ephemeral (key ephemeral). Default false.
	Ephemeral bool
	// AdvertiseTags are the ACL tags the node requests, each "tag:…"
	// (key advertise_tags). Default none; required when a listener has a
	// Service.
	AdvertiseTags []string
	// Capability is the app-capability name read from grants (key
	// capability). Default DefaultCapability.
	Capability string
}

// DefaultCapability is the default Tailscale.Capability; it keeps existing
// Waypoint policies working.
const DefaultCapability = "redo.com/cap/waypoint"

// Provisioning holds global provisioning switches.
type Provisioning struct {
	// AllowRawSQL permits grants with raw "sql" statements on listeners that
	// do not override it (key allow_raw_sql). Default false.
	AllowRawSQL bool
}

// Revalidation controls periodic re-authorization of open sessions.
type Revalidation struct {
	// Interval between re-checks of each session's caller (key interval).
	// Default 1m; 0 disables revalidation.
	Interval time.Duration
}

// Defaults holds values used where a grant sets none.
type Defaults struct {
	// Limits apply where a grant sets no limit ([defaults.limits]).
	Limits Limits
}

// Limits bounds each caller; a zero field means unlimited.
type Limits struct {
	// MaxConnsPerUser is the most concurrent connections per user (key
	// max_conns_per_user). Default 0, unlimited.
	MaxConnsPerUser int
	// MaxConnDuration is the longest a session may last (key
	// max_conn_duration). Default 0, unlimited.
	MaxConnDuration time.Duration
	// MaxBytesPerConn is the most bytes a session may relay, both directions
	// together (key max_bytes_per_conn, bytes or a size like "10GB").
	// Default 0, unlimited.
	MaxBytesPerConn int64
}

// Redis locates the shared state of several Waypoint instances.
type Redis struct {
	// Address is the server's "host:port" (key address). Required.
	Address string
	// Password authenticates to Redis (key password). Default "", none.
	Password string
	// DB is the Redis database number (key db). Default 0.
	DB int
	// KeyPrefix starts every Redis key Waypoint writes (key key_prefix).
	// Default "waypoint:".
	KeyPrefix string
}

// Metrics configures the Prometheus and health endpoint listener.
type Metrics struct {
	// Listen is the local "host:port" serving /metrics, /healthz and
	// /readyz (key listen). Required. It is not on the tailnet.
	Listen string
}

// Console configures the operator console: the JSON API, the page and
// what `waypoint sessions` and `waypoint terminate` talk to.
type Console struct {
	// Listen is the tailnet "host:port" or ":port" the console is served
	// on by Waypoint's own node (key listen), authorized per request by
	// WhoIs and the "console" field of the caller's grant. Default "",
	// none; Listen or Local is required, and its port must differ from
	// every listener's.
	Listen string
	// Local is a loopback "host:port" also serving the console, for tools
	// on the Waypoint host (key local). Default "", none. Its host must be
	// a loopback address or "localhost"; it needs LocalTokenFile.
	Local string
	// LocalTokenFile holds the token the loopback face requires (key
	// local_token_file); Waypoint creates it with a random token, mode
	// 0600, when it is missing, and refuses to start when it is readable by
	// group or others. Required with Local, meaningless without.
	LocalTokenFile string
}

// Shutdown bounds graceful shutdown.
type Shutdown struct {
	// DrainTimeout is how long open sessions may continue after
	// SIGINT/SIGTERM before they are closed (key drain_timeout). Default 30s;
	// 0 closes them at once.
	DrainTimeout time.Duration
}

// Mode is the protocol a listener speaks.
type Mode string

// The listener modes.
const (
	// ModePostgres proxies the PostgreSQL wire protocol.
	ModePostgres Mode = "postgres"
)

// TLSMode is how a listener treats client TLS (SSLRequest or direct TLS).
type TLSMode string

// The client TLS modes.
const (
	// TLSOff refuses TLS: SSLRequest is answered 'N'.
	TLSOff TLSMode = "off"
	// TLSOptional serves TLS to clients that ask and plaintext to others.
	TLSOptional TLSMode = "optional"
	// TLSRequire refuses plaintext clients with an ErrorResponse.
	TLSRequire TLSMode = "require"
)

// BackendTLS is how Waypoint connects to the real PostgreSQL, like libpq's
// sslmode.
type BackendTLS string

// The backend TLS modes.
const (
	// BackendTLSDisable never uses TLS.
	BackendTLSDisable BackendTLS = "disable"
	// BackendTLSPrefer uses TLS when the server offers it, unverified.
	BackendTLSPrefer BackendTLS = "prefer"
	// BackendTLSRequire insists on TLS; verifies the chain only when a CA
	// file is configured (like libpq's require with a root certificate).
	BackendTLSRequire BackendTLS = "require"
	// BackendTLSVerifyFull insists on TLS and verifies chain and host name.
	BackendTLSVerifyFull BackendTLS = "verify-full"
)

// The backend authentication methods (key backend_auth), with libpq's
// require_auth names.
const (
	// BackendAuthSCRAM is SCRAM-SHA-256; with TLS, channel-bound
	// (SCRAM-SHA-256-PLUS) whenever the server offers it.
	BackendAuthSCRAM = "scram-sha-256"
	// BackendAuthMD5 is md5: a salted hash of the password, replayable by
	// whoever learns the stored hash.
	BackendAuthMD5 = "md5"
	// BackendAuthPassword is the password in cleartext, to whoever asks.
	BackendAuthPassword = "password"
)

// DefaultBackendAuth returns the default Postgres.BackendAuth, a new slice
// on every call: scram-sha-256 and md5, never cleartext.
func DefaultBackendAuth() []string { return []string{BackendAuthSCRAM, BackendAuthMD5} }

// Listener is one [[listeners]] table: a port on the tailnet and the backend
// it fronts.
type Listener struct {
	// Name identifies the listener in grants (key name). Required, unique,
	// matching [A-Za-z0-9_.-]+.
	Name string
	// Listen is the tailnet "host:port" or ":port" to listen on (key
	// listen). Required, unique.
	Listen string
	// Mode is the protocol (key mode). Required; only "postgres".
	Mode Mode
	// Backend is the real server's "host:port" (key backend). Required.
	Backend string
	// Service, when set, also publishes the listener as the Tailscale
	// Service "svc:<name>" (key service). Default "", none. Needs
	// Tailscale.AdvertiseTags, and the name must differ from the hostname.
	Service string
	// TLSMode is the client TLS policy (key tls_mode). Default "optional".
	// "optional" and "require" need UseTailscaleTLS or CertFile.
	TLSMode TLSMode
	// UseTailscaleTLS serves the node's *.ts.net certificate (key
	// use_tailscale_tls). Default false.
	UseTailscaleTLS bool
	// CertFile is a PEM certificate chain served to clients (key
	// cert_file). Default "", none; needs KeyFile.
	CertFile string
	// KeyFile is the PEM private key of CertFile (key key_file). Default
	// "", none; needs CertFile.
	KeyFile string
	// HandshakeTimeout is the deadline for a client's handshake (startup
	// packet, TLS negotiation); slower clients are closed (key
	// handshake_timeout). Default 10s; must be positive.
	HandshakeTimeout time.Duration
	// AuditLog is where per-connection audit lines go (key audit_log): ""
	// for nowhere, "stdout", or a file path to append to. Default "".
	AuditLog string
	// Postgres configures ModePostgres ([listeners.postgres]); non-nil on
	// every postgres listener of a validated Config.
	Postgres *Postgres
}

// Postgres configures how a postgres listener manages backend roles.
type Postgres struct {
	// AdminUser is the backend role that creates and grants roles (key
	// admin_user). Required. Needs CREATEROLE, CONNECT on target databases
	// and the right to grant on the objects it hands out.
	AdminUser string
	// AdminPassword is AdminUser's password (key admin_password). Default
	// "", for peer or trust authentication.
	AdminPassword string
	// AdminDatabase is the database for admin connections (key
	// admin_database). Default "postgres"; must not be empty.
	AdminDatabase string
	// UserPrefix starts every provisioned role name (key user_prefix).
	// Default "wp_"; matches ^[a-z_][a-z0-9_]*$, at most 20 bytes.
	UserPrefix string
	// UserTTL is how long a role may stay unused before cleanup removes or
	// deactivates it (key user_ttl). Default 24h; must be positive.
	// Passwords have their own, short lifetime (provision.Options).
	UserTTL time.Duration
	// CleanupInterval is the period of the expired-role sweep (key
	// cleanup_interval). Default 5m; 0 disables the sweep (idle roles then
	// stay, but cannot log in: their passwords have expired).
	CleanupInterval time.Duration
	// SpareBackends is how many spare backend sessions are kept, logged in,
	// per identity, database and grant, for that identity's next
	// connection (key spare_backends). Default 0: off.
	SpareBackends int
	// MaxSpareBackends bounds the spare sessions of this listener (key
	// max_spare_backends). Default 32; keep it well under the backend's
	// max_connections.
	MaxSpareBackends int
	// SpareIdleTimeout closes a spare not handed out in time (key
	// spare_idle_timeout). Default 60s; must be positive and shorter than
	// UserTTL, so that an idle spare never keeps its role from cleanup.
	SpareIdleTimeout time.Duration
	// AllowRawSQL overrides Provisioning.AllowRawSQL for this listener (key
	// allow_raw_sql). Nil, the default, inherits it; see
	// Listener.EffectiveAllowRawSQL.
	AllowRawSQL *bool
	// BackendTLS is the TLS policy towards the backend (key backend_tls).
	// Default "prefer".
	BackendTLS BackendTLS
	// BackendCAFile is a PEM file of CAs that verify the backend (key
	// backend_ca_file). Default "", the system roots; only with backend_tls
	// "require" or "verify-full".
	BackendCAFile string
	// BackendAuth lists the authentication methods Waypoint answers when the
	// backend asks, for the admin login and every role login (key
	// backend_auth): BackendAuthSCRAM, BackendAuthMD5, BackendAuthPassword.
	// A backend that asks for any other method gets no answer and the login
	// fails; one that asks for none (trust) is accepted, since nothing
	// secret is sent. Default DefaultBackendAuth(); lower case, without duplicates,
	// at least one.
	BackendAuth []string
}

// EffectiveAllowRawSQL reports whether grants with raw "sql" may run on this
// listener: its own allow_raw_sql when set, else global (the value of
// Provisioning.AllowRawSQL).
func (l *Listener) EffectiveAllowRawSQL(global bool) bool {
	if l.Postgres != nil && l.Postgres.AllowRawSQL != nil {
		return *l.Postgres.AllowRawSQL
	}
	return global
}
