package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	listenerNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	userPrefixRE   = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	dnsLabelRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// maxUserPrefix leaves room in PostgreSQL's 63-byte identifiers for the
// user, machine and database parts of a role name.
const maxUserPrefix = 20

// Validate checks c and returns an *Errors listing every problem, or nil.
// It applies no defaults: a Config built in code must set every value that
// Parse would default. Parse and Load call it; messages carry lines only for
// a Config that came from a file.
func (c *Config) Validate() error {
	v := &validator{errs: &errorList{}}
	v.config(c)
	return v.errs.err(c.lines)
}

// validator checks a decoded Config. Problems on keys that already failed to
// decode are not reported twice.
type validator struct {
	errs *errorList
}

func (v *validator) fail(key, format string, args ...any) {
	if v.errs.has(key) {
		return
	}
	v.errs.addf(key, format, args...)
}

func (v *validator) config(c *Config) {
	v.tailscale(&c.Tailscale)
	v.nonNegative("revalidation.interval", c.Revalidation.Interval)
	v.limits(&c.Defaults.Limits)
	if c.Redis != nil {
		v.hostPort("redis.address", c.Redis.Address, false)
		if c.Redis.DB < 0 {
			v.fail("redis.db", "must not be negative")
		}
	}
	if c.Metrics != nil {
		v.hostPort("metrics.listen", c.Metrics.Listen, true)
	}
	v.nonNegative("shutdown.drain_timeout", c.Shutdown.DrainTimeout)
	v.listeners(c)
	if c.Console != nil {
		v.console(c.Console, c.Listeners)
	}
}

// console checks [console]: at least one face; the tailnet face on a port
// no listener uses; the loopback face on loopback, with a token file.
func (v *validator) console(c *Console, listeners []Listener) {
	if c.Listen == "" && c.Local == "" {
		v.fail("console", "set listen (the tailnet port) or local (a loopback address), or remove [console]")
		return
	}
	if c.Listen != "" {
		v.hostPort("console.listen", c.Listen, true)
		for i := range listeners {
			if p := listenPort(c.Listen); p != "" && p == listenPort(listeners[i].Listen) {
				v.fail("console.listen", "port %s is already used by listeners[%d]", p, i)
			}
		}
	}
	switch {
	case c.Local != "":
		v.hostPort("console.local", c.Local, false)
		if host, _, err := net.SplitHostPort(c.Local); err == nil && !isLoopback(host) {
			v.fail("console.local", "%q must be a loopback address (127.0.0.1, [::1] or localhost): the tailnet face is listen", c.Local)
		}
		if c.LocalTokenFile == "" {
			v.fail("console.local_token_file", "required with console.local: the file holding the token local tools present")
		}
	case c.LocalTokenFile != "":
		v.fail("console.local_token_file", "needs console.local")
	}
}

// isLoopback reports whether host is a loopback IP or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) tailscale(ts *Tailscale) {
	if ts.Hostname == "" {
		v.fail("tailscale.hostname", "required: the node's name in the tailnet")
	}
	if ts.StateDir == "" {
		v.fail("tailscale.state_dir", "must not be empty")
	}
	if ts.Capability == "" {
		v.fail("tailscale.capability", "must not be empty")
	}
	if ts.ControlURL != "" {
		u, err := url.Parse(ts.ControlURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("tailscale.control_url", "must be an http:// or https:// URL")
		}
	}
	for i, tag := range ts.AdvertiseTags {
		if !strings.HasPrefix(tag, "tag:") || len(tag) == len("tag:") {
			v.fail(indexKey("tailscale.advertise_tags", i), "%q is not an ACL tag (\"tag:name\")", tag)
		}
	}
}

func (v *validator) limits(l *Limits) {
	if l.MaxConnsPerUser < 0 {
		v.fail("defaults.limits.max_conns_per_user", "must not be negative (0 means unlimited)")
	}
	v.nonNegative("defaults.limits.max_conn_duration", l.MaxConnDuration)
	if l.MaxBytesPerConn < 0 {
		v.fail("defaults.limits.max_bytes_per_conn", "must not be negative (0 means unlimited)")
	}
}

func (v *validator) nonNegative(key string, d time.Duration) {
	if d < 0 {
		v.fail(key, "must not be negative")
	}
}

// listeners checks each listener and the ones that must be unique.
func (v *validator) listeners(c *Config) {
	if len(c.Listeners) == 0 {
		v.fail("listeners", "at least one [[listeners]] table is required")
		return
	}
	names := make(map[string]int)
	listens := make(map[string]int)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		path := indexKey("listeners", i)
		v.listener(path, l, &c.Tailscale)
		if first, dup := names[l.Name]; dup && l.Name != "" {
			v.fail(path+".name", "duplicate listener name %q (also listeners[%d])", l.Name, first)
		} else if !dup {
			names[l.Name] = i
		}
		if first, dup := listens[listenPort(l.Listen)]; dup && listenPort(l.Listen) != "" {
			v.fail(path+".listen", "listen address %q is already used by listeners[%d]", l.Listen, first)
		} else if !dup {
			listens[listenPort(l.Listen)] = i
		}
	}
}

// listenPort is the port of a valid, non-zero listen address, the key under
// which listeners clash: every listener is on the one tailnet node, so
// ":5432" and "100.64.0.1:5432" collide. It is "" for anything else.
func listenPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	return port
}

func (v *validator) listener(path string, l *Listener, ts *Tailscale) {
	switch {
	case l.Name == "":
		v.fail(path+".name", "required: the listener's name in grants")
	case !listenerNameRE.MatchString(l.Name):
		v.fail(path+".name", "%q must match [A-Za-z0-9_.-]+", l.Name)
	}
	v.hostPort(path+".listen", l.Listen, true)
	v.hostPort(path+".backend", l.Backend, false)
	v.service(path, l, ts)
	v.tls(path, l)
	if l.HandshakeTimeout <= 0 {
		v.fail(path+".handshake_timeout", "must be positive")
	}
	switch l.Mode {
	case "":
		v.fail(path+".mode", "required: one of postgres")
	case ModePostgres:
		if l.Postgres == nil {
			v.fail(path, "mode postgres needs a [listeners.postgres] table")
		} else {
			v.postgres(path+".postgres", l.Postgres)
		}
	default:
		v.fail(path+".mode", "must be one of postgres, not %q", l.Mode)
	}
}

// hostPort checks a "host:port" address; listen addresses may leave the host
// out (":5432") and use port 0, backends may not.
func (v *validator) hostPort(key, addr string, listen bool) {
	if addr == "" {
		v.fail(key, "required: a \"host:port\" address")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(key, "%q is not a \"host:port\" address", addr)
		return
	}
	n, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil:
		v.fail(key, "%q: port must be a number from 1 to 65535", addr)
	case n == 0 && !listen:
		v.fail(key, "%q: port must not be 0", addr)
	case host == "" && !listen:
		v.fail(key, "%q: host is missing", addr)
	}
}

func (v *validator) service(path string, l *Listener, ts *Tailscale) {
	if l.Service == "" {
		return
	}
	key := path + ".service"
	name, ok := strings.CutPrefix(l.Service, "svc:")
	switch {
	case !ok:
		v.fail(key, "%q must start with \"svc:\"", l.Service)
	case !dnsLabelRE.MatchString(name):
		v.fail(key, "%q: the name after \"svc:\" must be a DNS label (lower-case letters, digits, '-')", l.Service)
	case strings.EqualFold(name, ts.Hostname):
		v.fail(key, "service name %q must differ from tailscale.hostname", name)
	case len(ts.AdvertiseTags) == 0:
		v.fail(key, "a Tailscale Service host must be a tagged node: set tailscale.advertise_tags")
	}
}

func (v *validator) tls(path string, l *Listener) {
	switch {
	case l.CertFile != "" && l.KeyFile == "":
		v.fail(path+".cert_file", "needs key_file too")
	case l.KeyFile != "" && l.CertFile == "":
		v.fail(path+".key_file", "needs cert_file too")
	}
	switch l.TLSMode {
	case TLSOff:
	case TLSOptional, TLSRequire:
		if l.CertFile == "" && l.KeyFile == "" && !l.UseTailscaleTLS {
			v.fail(path+".tls_mode", "%q needs a certificate: set use_tailscale_tls = true, or cert_file and key_file (or tls_mode = \"off\")", l.TLSMode)
		}
	default:
		v.fail(path+".tls_mode", "must be one of off, optional, require, not %q", l.TLSMode)
	}
}

func (v *validator) postgres(path string, p *Postgres) {
	if p.AdminUser == "" {
		v.fail(path+".admin_user", "required: the backend role that creates roles")
	}
	if p.AdminDatabase == "" {
		v.fail(path+".admin_database", "must not be empty")
	}
	switch {
	case !userPrefixRE.MatchString(p.UserPrefix):
		v.fail(path+".user_prefix", "%q must match ^[a-z_][a-z0-9_]*$", p.UserPrefix)
	case len(p.UserPrefix) > maxUserPrefix:
		v.fail(path+".user_prefix", "%q is longer than %d bytes", p.UserPrefix, maxUserPrefix)
	}
	if p.UserTTL <= 0 {
		v.fail(path+".user_ttl", "must be positive")
	}
	v.nonNegative(path+".cleanup_interval", p.CleanupInterval)
	if p.SpareBackends < 0 {
		v.fail(path+".spare_backends", "must not be negative")
	}
	if p.SpareBackends > 0 && p.MaxSpareBackends < 1 {
		v.fail(path+".max_spare_backends", "must be at least 1 when spare_backends is on")
	}
	if p.SpareBackends > 0 && p.SpareIdleTimeout <= 0 {
		v.fail(path+".spare_idle_timeout", "must be positive when spare_backends is on")
	}
	// A spare is a session of its role, and cleanup keeps roles with a
	// session: a spare must be gone before its role can expire.
	if p.SpareBackends > 0 && p.UserTTL > 0 && p.SpareIdleTimeout >= p.UserTTL {
		v.fail(path+".spare_idle_timeout", "%v must be shorter than user_ttl (%v): an idle spare would keep its role from cleanup",
			p.SpareIdleTimeout, p.UserTTL)
	}
	switch p.BackendTLS {
	case BackendTLSDisable, BackendTLSPrefer:
		if p.BackendCAFile != "" {
			v.fail(path+".backend_ca_file", "needs backend_tls = \"verify-full\" or \"require\", not %q", p.BackendTLS)
		}
	case BackendTLSRequire, BackendTLSVerifyFull:
	default:
		v.fail(path+".backend_tls", "must be one of disable, prefer, require, verify-full, not %q", p.BackendTLS)
	}
	v.backendAuth(path+".backend_auth", p.BackendAuth)
}

// backendAuth checks a backend_auth list: at least one method, each known
// and listed once.
func (v *validator) backendAuth(key string, methods []string) {
	if len(methods) == 0 {
		v.fail(key, "must list at least one of scram-sha-256, md5, password")
		return
	}
	for i, m := range methods {
		switch {
		case m != BackendAuthSCRAM && m != BackendAuthMD5 && m != BackendAuthPassword:
			v.fail(key, "each method must be one of scram-sha-256, md5, password, not %q", m)
		case slices.Contains(methods[:i], m):
			v.fail(key, "lists %q twice", m)
		}
	}
}
